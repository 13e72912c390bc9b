/**
 * Server-side RPC routes, ThingsBoard's RpcV1Controller (`/api/plugins/rpc/{oneway|twoway}/{deviceId}`):
 * two-way answers 200 with the device's reply, one-way answers 200 with an empty body once the request
 * reached the device, and a timeout is 408 (FleetgateError TIMEOUT from core).
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { FleetgateError } from '../core/errors.ts';
import type { Device, RpcRequest } from '../core/model.ts';
import { recordAudit } from './audit.ts';
import type { AdminDeps } from './context.ts';
import { SECURED, uuidParams } from './schemas.ts';
import { deviceOf } from './telemetry.ts';

export interface RpcBody {
  method: string;
  params?: unknown;
  timeout?: number;
  persistent?: boolean;
}

export const RPC_BODY = {
  type: 'object',
  required: ['method'],
  properties: {
    method: { type: 'string', minLength: 1, description: 'Method name the device sees' },
    params: { description: 'Any JSON; sent to the device as is (null when absent)' },
    timeout: { type: 'integer', minimum: 1, description: 'Milliseconds to wait (default: rpcDefaultTimeout)' },
    persistent: { type: 'boolean', description: 'Accepted for ThingsBoard clients; every RPC is stored' },
  },
} as const;

export type RpcRoute = { Params: { deviceId: string }; Body: RpcBody };

/** The device's reply text: the stored JSON text when core kept it, else what `send` returned. */
function replyText(rpc: RpcRequest | undefined, response: unknown): string | undefined {
  if (typeof rpc?.response === 'string') return rpc.response;
  if (response === undefined || response === null) return undefined;
  return typeof response === 'string' ? response : JSON.stringify(response);
}

function isJson(text: string): boolean {
  try {
    JSON.parse(text);
    return true;
  } catch {
    return false;
  }
}

/** Sends the reply as JSON when it is JSON, else as text; an empty reply is 200 with no body (TB). */
function sendDeviceReply(reply: FastifyReply, text: string | undefined): FastifyReply {
  if (text === undefined || text.trim() === '') return reply.status(200).send();
  if (isJson(text)) return reply.type('application/json; charset=utf-8').send(text);
  return reply.type('text/plain; charset=utf-8').send(text);
}

/** Runs an RPC call for `device` and records it as RPC_CALL in the audit log, with the error code if it failed. */
export async function auditedRpcCall<T>(deps: AdminDeps, req: FastifyRequest, device: Device, call: { method: string; oneway: boolean }, work: () => Promise<T>): Promise<T> {
  const audit = (failure: string | null) =>
    recordAudit(deps, req, {
      entityType: 'DEVICE',
      entityId: device.id,
      entityName: device.name,
      actionType: 'RPC_CALL',
      actionData: { oneWay: call.oneway, method: call.method },
      failure,
    });
  try {
    const result = await work();
    await audit(null);
    return result;
  } catch (err) {
    await audit(err instanceof FleetgateError ? `RPC Error: ${err.code}` : 'RPC Error');
    throw err;
  }
}

/** Sends the RPC and waits (v1, and v2 without `persistent`). */
export async function handleRpc(deps: AdminDeps, req: FastifyRequest<RpcRoute>, reply: FastifyReply, oneway: boolean): Promise<FastifyReply> {
  const device = await deviceOf(deps, req);
  const { method, params, timeout } = req.body;
  const result = await auditedRpcCall(deps, req, device, { method, oneway }, () => deps.core.rpc.send(device, { method, params: params ?? null, timeout, oneway }));
  return oneway ? reply.status(200).send() : sendDeviceReply(reply, replyText(result.rpc, result.response));
}

/** Registers the RPC routes. */
export function registerRpcRoutes(app: FastifyInstance, deps: AdminDeps): void {
  for (const kind of ['twoway', 'oneway'] as const) {
    app.post<RpcRoute>(
      `/api/plugins/rpc/${kind}/:deviceId`,
      {
        schema: {
          tags: ['rpc'],
          summary:
            kind === 'twoway'
              ? 'Two-way RPC: waits for the device reply and returns it (handleTwoWayDeviceRPCRequestV1); 408 on timeout'
              : 'One-way RPC: returns once delivered (handleOneWayDeviceRPCRequestV1); 408 on timeout',
          security: SECURED,
          params: uuidParams('deviceId'),
          body: RPC_BODY,
        },
      },
      (req, reply) => handleRpc(deps, req, reply, kind === 'oneway'),
    );
  }
}
