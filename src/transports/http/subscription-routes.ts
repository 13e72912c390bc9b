/**
 * Server -> device over HTTP long polls (spec §8.3): shared attribute updates and server-side RPC.
 */
import type { FastifyInstance } from 'fastify';
import { FleetgateError } from '../../core/errors.ts';
import type { DeviceIdentity, DeviceSessionHandle, RpcDelivery } from '../../core/api.ts';
import type { DeviceRouteDeps } from './device-api.ts';
import { authenticate, jsonText, longPollTimeout, type TokenParams } from './device-request.ts';
import { longPoll, type Answer } from './long-poll.ts';

/** spec §8.3: a device deleted while its long poll waits gets 403 `Device was deleted!`. */
const deviceDeleted = () => new FleetgateError('PERMISSION_DENIED', 'Device was deleted!');
/** The token of a waiting long poll was replaced: 401, as a request with that token gets from now on. */
const credentialsRevoked = () => new FleetgateError('UNAUTHORIZED', 'Device credentials were replaced');

interface PollQuery {
  timeout?: string;
}

/** spec §8.3: the RPC as the device sees it, `{"id":<int>,"method":"..","params":..}`. */
function rpcJson(rpc: RpcDelivery): string {
  return jsonText({ id: rpc.requestId, method: rpc.method, params: rpc.params });
}

/**
 * Registers `GET /{token}/attributes/updates` and `GET /{token}/rpc`. Each opens a device session for as long as the
 * request waits. HEAD is not offered: a HEAD would take an RPC off the queue and drop its body.
 */
export function registerSubscriptionRoutes(api: FastifyInstance, { core, config, polls }: DeviceRouteDeps): void {
  /** One long-poll route: authenticate, then hold the request until the session opened by `open` answers it. */
  const pollRoute = (path: string, open: (device: DeviceIdentity, answer: Answer, abort: (error: FleetgateError) => void) => DeviceSessionHandle) =>
    api.get<{ Params: TokenParams; Querystring: PollQuery }>(path, { exposeHeadRoute: false }, async (request, reply) => {
      const device = await authenticate(core, request.params.token, request.ip);
      const timeoutMs = longPollTimeout(request.query.timeout, config.httpLongPollTimeout);
      await longPoll({ request, reply, timeoutMs, polls, open: (answer, abort) => open(device, answer, abort) });
      return reply;
    });

  // spec §8.2: {"k":v,...} on update, {"deleted":[..]} on deletion. An update that finds the poll already answered is
  // not queued (as in ThingsBoard: updates between two polls are not kept).
  pollRoute('/:token/attributes/updates', (device, answer, abort) =>
    core.sessions.open(device, { onAttributes: (update) => void answer(jsonText(update)).catch(() => {}), onDeviceDeleted: () => abort(deviceDeleted()), onCredentialsRevoked: () => abort(credentialsRevoked()) }),
  );

  // Resolves once the RPC was written to the device, rejects if it could not be (core keeps it pending).
  pollRoute('/:token/rpc', (device, answer, abort) => core.sessions.open(device, { onRpc: (rpc) => answer(rpcJson(rpc)), onDeviceDeleted: () => abort(deviceDeleted()), onCredentialsRevoked: () => abort(credentialsRevoked()) }),
  );
}
