/**
 * `POST /api/v1/provision` (spec §5.3): the JSON provisioning request of §2.1 in, the §5.1 body out.
 */
import type { FastifyInstance } from 'fastify';
import type { ProvisionResult } from '../../core/api.ts';
import { parseProvisionJson } from '../../core/provisioning/request.ts';
import { renderProvisionJson } from '../../core/provisioning/render.ts';
import type { DeviceRouteDeps } from './device-api.ts';
import { requiredBody } from './device-request.ts';

/** Retry-After seconds when core says how long a throttled source must wait. */
function retryAfterSeconds(result: ProvisionResult): number | undefined {
  const value = (result as { retryAfterSeconds?: unknown }).retryAfterSeconds;
  return typeof value === 'number' && value > 0 ? Math.ceil(value) : undefined;
}

/**
 * Registers the provisioning route. Unauthenticated (the profile key and secret are the credentials).
 * - SUCCESS, NOT_FOUND, FAILURE -> 200 with the §5.1 body (spec §5.3, §11.2).
 * - Throttled (reason RATE_LIMITED) -> 429 with the same body and Retry-After when known (DESIGN 6).
 * - Empty, malformed, non-object JSON, missing key/secret, bad credentialsType -> 400 JSON error, where
 *   ThingsBoard answers 500 (DESIGN 5); JSON null counts as absent (DESIGN 1, decided by core's parser).
 */
export function registerProvisionRoute(api: FastifyInstance, { core }: DeviceRouteDeps): void {
  api.post('/provision', async (request, reply) => {
    const provisionRequest = parseProvisionJson(requiredBody(request).toString('utf8'));
    const result = await core.provisioning.provision(provisionRequest, { transport: 'http', address: request.ip });
    if (result.status !== 'SUCCESS' && result.reason === 'RATE_LIMITED') {
      reply.code(429);
      const seconds = retryAfterSeconds(result);
      if (seconds !== undefined) reply.header('retry-after', String(seconds));
    } else {
      reply.code(200); // spec §5.3: 200 for NOT_FOUND and FAILURE too
    }
    // spec §11.16 leaves the content type open; application/json tells clients what the body is.
    return reply.header('content-type', 'application/json').send(renderProvisionJson(result));
  });
}
