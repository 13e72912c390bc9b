/**
 * `POST /api/v1/provision/x509` over HTTPS: X.509 certificate-chain provisioning (spec §7, which ThingsBoard offers
 * on MQTT over TLS only) for a device that presents its chain as the TLS client certificate. The body is ignored.
 * The same core call as MQTT decides (core.x509Provisioning.provisionByChain); the answer is the §5.1 JSON shape:
 * - created, rotated, or already registered -> 200 `{"credentialsType":"X509_CERTIFICATE","status":"SUCCESS",
 *   "deviceId":..,"deviceName":..}`; the device then calls `/api/v1/x509/...` with the same certificate;
 * - no chain profile knows the chain -> 200 NOT_FOUND; a chain profile refused -> 200 FAILURE with its reason;
 * - no client certificate, an expired one, or a chain whose certificates are not each signed by the next -> 400
 *   FAILURE (`NO_CLIENT_CERTIFICATE`, `INVALID_CREDENTIALS`, `INVALID_CHAIN`); throttled -> 429 + Retry-After.
 */
import type { FastifyInstance, FastifyReply } from 'fastify';
import { PROVISION_ERROR_MESSAGES } from '../../core/provisioning/render.ts';
import { clientCertificateOf } from '../tls-client-certificate.ts';
import type { DeviceRouteDeps } from './device-api.ts';

function answer(reply: FastifyReply, code: number, body: Record<string, unknown>): FastifyReply {
  return reply.code(code).header('content-type', 'application/json').send(JSON.stringify(body));
}

const failure = (reason: string) => ({ errorMsg: PROVISION_ERROR_MESSAGES.FAILURE, status: 'FAILURE', reason });

export function registerX509ProvisionRoute(api: FastifyInstance, { core }: DeviceRouteDeps): void {
  api.post('/provision/x509', async (request, reply) => {
    const certificate = clientCertificateOf(request.raw.socket);
    if (certificate.kind === 'none') return answer(reply, 400, failure('NO_CLIENT_CERTIFICATE'));
    if (certificate.kind === 'expired') return answer(reply, 400, failure('INVALID_CREDENTIALS'));
    const source = { transport: 'http' as const, address: request.ip };
    const result = await core.x509Provisioning.provisionByChain(certificate.chain, source);
    switch (result.status) {
      case 'CREATED':
      case 'ROTATED':
        return answer(reply, 200, { credentialsType: 'X509_CERTIFICATE', status: 'SUCCESS', deviceId: result.deviceId, deviceName: result.deviceName });
      case 'REGISTERED': {
        const device = await core.auth.byX509Hash(certificate.hash, 'HTTP', source);
        if (!device) return answer(reply, 200, failure('CREDENTIALS_IN_USE')); // a chain certificate, not the leaf, is registered
        return answer(reply, 200, { credentialsType: 'X509_CERTIFICATE', status: 'SUCCESS', deviceId: device.deviceId, deviceName: device.deviceName });
      }
      case 'NO_PROFILE':
        return answer(reply, 200, { errorMsg: PROVISION_ERROR_MESSAGES.NOT_FOUND, status: 'NOT_FOUND', reason: 'BAD_KEY_OR_SECRET' });
      case 'FAILURE':
        return answer(reply, 200, failure(result.reason));
      case 'INVALID_CHAIN':
        return answer(reply, 400, failure('INVALID_CHAIN'));
      case 'RATE_LIMITED':
        reply.header('retry-after', String(result.retryAfterSeconds));
        return answer(reply, 429, failure('RATE_LIMITED'));
    }
  });
}
