/**
 * `POST /api/v1/provision` (spec §5.3): the JSON provisioning request of §2.1 in, the §5.1 body out. The plain case is
 * served by the lean path (fast-provision-path.ts) with the same answer, built by `provisionAnswer` below.
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

/** The HTTP answer to a provisioning result: status, Retry-After (a 429 only, when known) and the §5.1 body. */
export interface ProvisionAnswer {
  status: number;
  retryAfter: string | undefined;
  body: string;
}

/**
 * - SUCCESS, NOT_FOUND, FAILURE -> 200 with the §5.1 body (spec §5.3, §11.2).
 * - Throttled (reason RATE_LIMITED) -> 429 with the same body and Retry-After when known (DESIGN 6).
 */
export function provisionAnswer(result: ProvisionResult): ProvisionAnswer {
  const throttled = result.status !== 'SUCCESS' && result.reason === 'RATE_LIMITED';
  const seconds = throttled ? retryAfterSeconds(result) : undefined;
  // spec §5.3: 200 for NOT_FOUND and FAILURE too
  return { status: throttled ? 429 : 200, retryAfter: seconds === undefined ? undefined : String(seconds), body: renderProvisionJson(result) };
}

/** spec §11.16 leaves the content type open; application/json tells clients what the body is. */
export const PROVISION_CONTENT_TYPE = 'application/json';
/** The Content-Type on the wire: fastify adds the charset to a JSON string payload's type. */
export const PROVISION_WIRE_CONTENT_TYPE = `${PROVISION_CONTENT_TYPE}; charset=utf-8`;

/**
 * Registers the provisioning route. Unauthenticated (the profile key and secret are the credentials). Answers as
 * `provisionAnswer` says; empty, malformed, non-object JSON, missing key/secret, bad credentialsType -> 400 JSON
 * error, where ThingsBoard answers 500 (DESIGN 5); JSON null counts as absent (DESIGN 1, decided by core's parser).
 */
export function registerProvisionRoute(api: FastifyInstance, { core }: DeviceRouteDeps): void {
  api.post('/provision', async (request, reply) => {
    const provisionRequest = parseProvisionJson(requiredBody(request).toString('utf8'));
    const answer = provisionAnswer(await core.provisioning.provision(provisionRequest, { transport: 'http', address: request.ip }));
    reply.code(answer.status);
    if (answer.retryAfter !== undefined) reply.header('retry-after', answer.retryAfter);
    return reply.header('content-type', PROVISION_CONTENT_TYPE).send(answer.body);
  });
}
