/**
 * `POST /api/v1/{token}/credentials/rotate` (README "Rotation and reprovisioning"): a device asks for new
 * credentials, authenticated by its current token. 200 with `{"status":"SUCCESS","credentialsType":"ACCESS_TOKEN",
 * "credentialsValue":..,"previousCredentialsValidUntil":..}` once the new token is committed; 400 with
 * `{"status":"FAILURE","reason":..,"errorMsg":..}` when core refuses. An X.509 device (token `x509` over HTTPS)
 * sends `{"csr":"<PEM>"}` and gets the new certificate chain; for access tokens the body is ignored.
 */
import type { FastifyInstance } from 'fastify';
import { renderRotationJson } from '../../core/provisioning/rotation.ts';
import type { DeviceRouteDeps } from './device-api.ts';
import { authenticate, bodyBytes, type TokenParams } from './device-request.ts';

export function registerRotationRoute(api: FastifyInstance, { core }: DeviceRouteDeps): void {
  api.post<{ Params: TokenParams }>('/:token/credentials/rotate', async (request, reply) => {
    const device = await authenticate(core, request.params.token, request.ip, request.raw.socket);
    const result = await core.rotation.rotate(device, { transport: 'http', address: request.ip }, bodyBytes(request));
    return reply.code(result.status === 'SUCCESS' ? 200 : 400).header('content-type', 'application/json').send(renderRotationJson(result));
  });
}
