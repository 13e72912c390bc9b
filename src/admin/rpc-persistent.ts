/**
 * Server-side RPC v2 routes, ThingsBoard's RpcV2Controller (`/api/rpc/...`). Without `persistent: true` the POST
 * routes behave as v1 (rpc.ts). With it they answer `{"rpcId":"<uuid>"}` once the request is stored (QUEUED) and its
 * delivery started; `/api/rpc/persistent/...` then reads, lists and deletes stored requests as ThingsBoard `Rpc` JSON.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { RpcRequest, RpcStatus } from '../core/model.ts';
import { principalOf, type AdminDeps } from './context.ts';
import { entityId, pageJson } from './json-shapes.ts';
import { pageQuery, type PageParams } from './request-input.ts';
import { auditedRpcCall, handleRpc, RPC_BODY, type RpcBody } from './rpc.ts';
import { PAGE_QUERY_PROPERTIES, SECURED, uuidParams } from './schemas.ts';
import { deviceOf } from './telemetry.ts';

const RPC_STATUSES = ['QUEUED', 'SENT', 'DELIVERED', 'SUCCESSFUL', 'TIMEOUT', 'EXPIRED', 'FAILED'] as const;

const RPC_V2_BODY = {
  ...RPC_BODY,
  properties: {
    ...RPC_BODY.properties,
    expirationTime: { type: 'integer', minimum: 0, description: 'Epoch ms after which the request is dropped; overrides timeout' },
    persistent: { type: 'boolean', description: 'true: answer {"rpcId"} at once and deliver in the background' },
    retries: { type: 'integer', description: 'Accepted for ThingsBoard clients; not used' },
    additionalInfo: { description: 'Accepted for ThingsBoard clients; not stored' },
  },
} as const;

const LIST_QUERY = {
  type: 'object',
  required: ['pageSize', 'page'],
  properties: {
    ...PAGE_QUERY_PROPERTIES,
    rpcStatus: { type: 'string', enum: RPC_STATUSES, description: 'Only requests with this status' },
    sortProperty: { type: 'string', enum: ['createdTime', 'expirationTime', 'status'], description: 'Default createdTime' },
  },
} as const;

type V2Body = RpcBody & { expirationTime?: number; retries?: number; additionalInfo?: unknown };
type V2Route = { Params: { deviceId: string }; Body: V2Body };

function parseJsonOrText(text: string | null): unknown {
  if (text === null) return null;
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}

/** ThingsBoard `Rpc` JSON; `request` is its `ToDeviceRpcRequest` (body.params as JSON text, as TB keeps it). */
export function rpcJson(rpc: RpcRequest): Record<string, unknown> {
  const tenantId = entityId('TENANT', rpc.tenantId);
  const deviceId = entityId('DEVICE', rpc.deviceId);
  return {
    id: entityId('RPC', rpc.id),
    createdTime: rpc.createdTime,
    tenantId,
    deviceId,
    expirationTime: rpc.expirationTime,
    request: {
      id: rpc.id,
      tenantId,
      deviceId,
      oneway: rpc.oneway,
      expirationTime: rpc.expirationTime,
      body: { method: rpc.method, params: rpc.params },
      persisted: true,
      retries: null,
      additionalInfo: null,
    },
    response: parseJsonOrText(rpc.response),
    status: rpc.status,
    additionalInfo: null,
  };
}

async function handlePersistent(deps: AdminDeps, req: FastifyRequest<V2Route>, reply: FastifyReply, oneway: boolean): Promise<FastifyReply> {
  const device = await deviceOf(deps, req);
  const { method, params, timeout, expirationTime } = req.body;
  const rpc = await auditedRpcCall(deps, req, device, { method, oneway }, () => deps.core.rpc.submit(device, { method, params: params ?? null, timeout, expirationTime, oneway }));
  return reply.status(200).send({ rpcId: rpc.id });
}

/** Registers the v2 RPC routes. */
export function registerPersistentRpcRoutes(app: FastifyInstance, deps: AdminDeps): void {
  for (const kind of ['twoway', 'oneway'] as const) {
    app.post<V2Route>(
      `/api/rpc/${kind}/:deviceId`,
      {
        schema: {
          tags: ['rpc'],
          summary:
            `${kind === 'twoway' ? 'Two-way' : 'One-way'} RPC v2 (handle${kind === 'twoway' ? 'TwoWay' : 'OneWay'}DeviceRPCRequest): ` +
            'persistent answers {"rpcId"} once stored; otherwise as /api/plugins/rpc (408 on timeout)',
          security: SECURED,
          params: uuidParams('deviceId'),
          body: RPC_V2_BODY,
        },
      },
      (req, reply) => (req.body.persistent === true ? handlePersistent(deps, req, reply, kind === 'oneway') : handleRpc(deps, req, reply, kind === 'oneway')),
    );
  }

  app.get<{ Params: { rpcId: string } }>(
    '/api/rpc/persistent/:rpcId',
    { schema: { tags: ['rpc'], summary: 'Get persistent RPC request (getPersistedRpc)', security: SECURED, params: uuidParams('rpcId') } },
    async (req) => rpcJson(await deps.core.rpc.get(principalOf(req).tenantId, req.params.rpcId)),
  );

  app.get<{ Params: { deviceId: string }; Querystring: PageParams & { rpcStatus?: RpcStatus } }>(
    '/api/rpc/persistent/device/:deviceId',
    {
      schema: {
        tags: ['rpc'],
        summary: 'Get persistent RPC requests of a device, newest first (getPersistedRpcByDevice)',
        security: SECURED,
        params: uuidParams('deviceId'),
        querystring: LIST_QUERY,
      },
    },
    async (req) => {
      const device = await deviceOf(deps, req);
      const query = { ...pageQuery(req.query), ...(req.query.rpcStatus ? { status: req.query.rpcStatus } : {}) };
      return pageJson(await deps.core.rpc.listForDevice(device, query), rpcJson);
    },
  );

  app.delete<{ Params: { rpcId: string } }>(
    '/api/rpc/persistent/:rpcId',
    { schema: { tags: ['rpc'], summary: 'Delete persistent RPC; a pending one is not delivered (deleteRpc)', security: SECURED, params: uuidParams('rpcId') } },
    async (req, reply) => {
      await deps.core.rpc.delete(principalOf(req).tenantId, req.params.rpcId);
      return reply.status(200).send();
    },
  );
}
