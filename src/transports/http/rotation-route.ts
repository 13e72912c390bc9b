/**
 * `POST /api/v1/{token}/credentials/rotate` (README "Rotation and reprovisioning"): a device asks for new
 * credentials, authenticated by its current token. 200 with `{"status":"SUCCESS","credentialsType":"ACCESS_TOKEN",
 * "credentialsValue":..,"previousCredentialsValidUntil":..}` once the new token is committed; 400 with
 * `{"status":"FAILURE","reason":..,"errorMsg":..}` when core refuses. The body is ignored.
 */
import type { FastifyInstance } from 'fastify';
import { renderRotationJson } from '../../core/provisioning/rotation.ts';
import type { DeviceRouteDeps } from './device-api.ts';
import { authenticate, type TokenParams } from './device-request.ts';

export function registerRotationRoute(api: FastifyInstance, { core }: DeviceRouteDeps): void {
  api.post<{ Params: TokenParams }>('/:token/credentials/rotate', async (request, reply) => {
    const device = await authenticate(core, request.params.token, request.ip, request.raw.socket);
    const result = await core.rotation.rotate(device, { transport: 'http', address: request.ip });
    return reply.code(result.status === 'SUCCESS' ? 200 : 400).header('content-type', 'application/json').send(renderRotationJson(result));
  });
}
