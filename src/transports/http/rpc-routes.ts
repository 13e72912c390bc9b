/**
 * RPC requests from the device (spec §8.3): replies to server-side RPC and client-side RPC.
 */
import type { FastifyInstance } from 'fastify';
import { answerClientRpc, parseClientRpc } from '../../core/client-rpc.ts';
import type { DeviceRouteDeps } from './device-api.ts';
import { authenticate, jsonText, requiredBody, rpcRequestId, type TokenParams } from './device-request.ts';

/**
 * Registers `POST /{token}/rpc/{requestId}` and `POST /{token}/rpc`. Both take at most config.httpMaxRpcPayload
 * bytes: ThingsBoard's limit pattern `/api/v1/*\/rpc/**` (spec §10) matches both paths (`/**` also matches nothing).
 */
export function registerRpcRoutes(api: FastifyInstance, { core, config }: DeviceRouteDeps): void {
  const bodyLimit = config.httpMaxRpcPayload;

  // spec §8.3: the reply to a server-side RPC; any payload (core does not validate it either, spec §8.2).
  api.post<{ Params: TokenParams & { requestId: string } }>('/:token/rpc/:requestId', { bodyLimit }, async (request, reply) => {
    const requestId = rpcRequestId(request.params.requestId);
    const device = await authenticate(core, request.params.token, request.ip, request.raw.socket);
    await core.rpc.reply(device.deviceId, requestId, requiredBody(request).toString('utf8'));
    return reply.code(200).send();
  });

  /**
   * Client-side RPC. `getSessionLimits` is answered here (spec §8.2). ThingsBoard hands every other method to its
   * rule engine and, when nothing answers, replies 200 `{"error":"timeout"}` after 60 s. fleetgate has no rule
   * engine, so nothing could ever answer: it says so at once with 501 and ThingsBoard's error JSON rather than
   * holding the device for a minute to report a timeout that is not one.
   */
  api.post<{ Params: TokenParams }>('/:token/rpc', { bodyLimit }, async (request, reply) => {
    const device = await authenticate(core, request.params.token, request.ip, request.raw.socket);
    const rpc = parseClientRpc(requiredBody(request));
    request.log.debug({ deviceId: device.deviceId, method: rpc.method }, 'client-side RPC');
    // spec §8.2: maxInflightMessages keeps ThingsBoard's 100; an HTTP device has no in-flight window, but SDKs size queues from it.
    const answer = answerClientRpc(rpc, { maxPayloadSize: config.httpMaxPayload, maxInflightMessages: 100 });
    return reply.code(200).header('content-type', 'application/json').send(jsonText(answer));
  });
}
