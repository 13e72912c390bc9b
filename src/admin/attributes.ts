/**
 * Attribute routes, ThingsBoard's TelemetryController shapes for entity type DEVICE:
 * read `[{"lastUpdateTs","key","value"}]` per scope or across all scopes, list keys, write a JSON
 * object to SERVER_SCOPE or SHARED_SCOPE (core pushes shared writes to the device), delete keys.
 * Both ThingsBoard write paths are served: `.../DEVICE/{id}/attributes/{scope}`, `.../DEVICE/{id}/{scope}`
 * and the legacy `/api/plugins/telemetry/{deviceId}/{scope}`.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { badRequest } from '../core/errors.ts';
import type { AttributeEntry, AttributeScope } from '../core/model.ts';
import { recordAudit } from './audit.ts';
import type { AdminDeps } from './context.ts';
import { attributeJson } from './kv-values.ts';
import { isJsonObject, useLosslessJsonBodies } from './lossless-body.ts';
import { attributeScope, keysList } from './request-input.ts';
import { OBJECT_BODY, SECURED, paramsWith, uuidParams } from './schemas.ts';
import { DEVICE_TELEMETRY, deviceOf, sendJson } from './telemetry.ts';

/** TB's DataConstants.allScopes() order. */
const ALL_SCOPES: AttributeScope[] = ['CLIENT_SCOPE', 'SHARED_SCOPE', 'SERVER_SCOPE'];

type ScopeRoute = { Params: { deviceId: string; scope: string } };
type KeysQuery = { Querystring: { keys?: string } };
type WriteRoute = ScopeRoute & { Body: unknown };

const KEYS_QUERY = { type: 'object', properties: { keys: { type: 'string', description: 'Comma-separated keys; all when absent' } } };
const TAGS = ['attributes'];

/** Values to write: TB skips JSON nulls, rejects an empty set and blank keys. */
function attributeValues(body: unknown): Record<string, unknown> {
  if (!isJsonObject(body)) throw badRequest('Request is not a JSON object');
  const values = Object.fromEntries(Object.entries(body).filter(([, value]) => value !== null && value !== undefined));
  if (Object.keys(values).length === 0) throw badRequest('No attributes data found in request body!');
  if (Object.keys(values).some((key) => key.trim() === '')) throw badRequest('Key cannot be empty or contains only spaces');
  return values;
}

/**
 * TB keeps a device's state as SERVER_SCOPE attributes (`active`, `lastActivityTime`, `lastConnectTime`,
 * `lastDisconnectTime`); fleetgate derives them from device activity (src/core/device-activity.ts) when read. A stored
 * attribute of the same key wins.
 */
async function activityAttributes(deps: AdminDeps, tenantId: string, deviceId: string, stored: AttributeEntry[], keys: string[] | undefined): Promise<AttributeEntry[]> {
  const info = await deps.core.deviceInfos.get(tenantId, deviceId);
  const { lastActivityTime, lastConnectTime, lastDisconnectTime } = info.activity;
  const at = lastActivityTime ?? info.createdTime;
  const derived: AttributeEntry[] = [{ key: 'active', value: { type: 'BOOLEAN', value: info.active }, lastUpdateTs: at }];
  for (const [key, value] of Object.entries({ lastActivityTime, lastConnectTime, lastDisconnectTime })) {
    if (value !== null) derived.push({ key, value: { type: 'LONG', value }, lastUpdateTs: value });
  }
  const taken = new Set(stored.map((entry) => entry.key));
  return derived.filter((entry) => !taken.has(entry.key) && (!keys || keys.includes(entry.key)));
}

async function readAttributes(deps: AdminDeps, req: FastifyRequest, scopes: AttributeScope[], keys: string[] | undefined): Promise<AttributeEntry[]> {
  const device = await deviceOf(deps, req);
  const entries: AttributeEntry[] = [];
  for (const scope of scopes) {
    const stored = await deps.core.attributes.get(device.id, scope, keys);
    entries.push(...stored);
    if (scope === 'SERVER_SCOPE') entries.push(...(await activityAttributes(deps, device.tenantId, device.id, stored, keys)));
  }
  return entries;
}

async function saveAttributes(deps: AdminDeps, req: FastifyRequest<WriteRoute>): Promise<void> {
  const { scope } = req.params;
  // TB: only SERVER_SCOPE and SHARED_SCOPE are writable over REST (client attributes come from the device).
  if (scope !== 'SERVER_SCOPE' && scope !== 'SHARED_SCOPE') throw badRequest(`Invalid scope: ${scope}`);
  const values = attributeValues(req.body);
  const device = await deviceOf(deps, req);
  await deps.core.attributes.save(device, scope, values);
  await recordAudit(deps, req, {
    entityType: 'DEVICE',
    entityId: device.id,
    entityName: device.name,
    actionType: 'ATTRIBUTES_UPDATED',
    actionData: { scope, keys: Object.keys(values) },
  });
}

async function deleteAttributes(deps: AdminDeps, req: FastifyRequest<ScopeRoute & KeysQuery>): Promise<void> {
  const scope = attributeScope(req.params.scope);
  const keys = keysList(req.query.keys);
  if (!keys) throw badRequest(`Empty keys: ${req.query.keys ?? ''}`);
  const device = await deviceOf(deps, req);
  await deps.core.attributes.delete(device, scope, keys);
  await recordAudit(deps, req, {
    entityType: 'DEVICE',
    entityId: device.id,
    entityName: device.name,
    actionType: 'ATTRIBUTES_DELETED',
    actionData: { scope, keys },
  });
}

/** Registers the attribute routes. */
export function registerAttributeRoutes(app: FastifyInstance, deps: AdminDeps): void {
  app.get<{ Params: { deviceId: string } } & KeysQuery>(
    `${DEVICE_TELEMETRY}/:deviceId/values/attributes`,
    { schema: { tags: TAGS, summary: 'Attributes of all scopes (getAttributes)', security: SECURED, params: uuidParams('deviceId'), querystring: KEYS_QUERY } },
    async (req, reply) => sendJson(reply, (await readAttributes(deps, req, ALL_SCOPES, keysList(req.query.keys))).map(attributeJson)),
  );

  app.get<ScopeRoute & KeysQuery>(
    `${DEVICE_TELEMETRY}/:deviceId/values/attributes/:scope`,
    { schema: { tags: TAGS, summary: 'Attributes of one scope (getAttributesByScope)', security: SECURED, params: paramsWith('deviceId', 'scope'), querystring: KEYS_QUERY } },
    async (req, reply) => {
      const scope = attributeScope(req.params.scope);
      return sendJson(reply, (await readAttributes(deps, req, [scope], keysList(req.query.keys))).map(attributeJson));
    },
  );

  app.get<{ Params: { deviceId: string } }>(
    `${DEVICE_TELEMETRY}/:deviceId/keys/attributes`,
    { schema: { tags: TAGS, summary: 'Attribute keys of all scopes (getAttributeKeys)', security: SECURED, params: uuidParams('deviceId') } },
    async (req) => (await readAttributes(deps, req, ALL_SCOPES, undefined)).map((entry) => entry.key),
  );

  app.get<ScopeRoute>(
    `${DEVICE_TELEMETRY}/:deviceId/keys/attributes/:scope`,
    { schema: { tags: TAGS, summary: 'Attribute keys of one scope (getAttributeKeysByScope)', security: SECURED, params: paramsWith('deviceId', 'scope') } },
    async (req) => (await readAttributes(deps, req, [attributeScope(req.params.scope)], undefined)).map((entry) => entry.key),
  );

  // Writes parse their body losslessly, so `1.0` is saved as a double and longs keep every digit.
  void app.register(async (writes: FastifyInstance) => {
    useLosslessJsonBodies(writes);
    const writeSchema = (summary: string) => ({
      schema: { tags: TAGS, summary, security: SECURED, params: paramsWith('deviceId', 'scope'), body: OBJECT_BODY },
    });
    const write = async (req: FastifyRequest<WriteRoute>, reply: FastifyReply) => {
      await saveAttributes(deps, req);
      return reply.status(200).send();
    };
    writes.post<WriteRoute>(`${DEVICE_TELEMETRY}/:deviceId/attributes/:scope`, writeSchema('Save attributes, SERVER_SCOPE or SHARED_SCOPE (saveEntityAttributesV2)'), write);
    writes.post<WriteRoute>(`${DEVICE_TELEMETRY}/:deviceId/:scope`, writeSchema('Save attributes (saveEntityAttributesV1)'), write);
    writes.post<WriteRoute>('/api/plugins/telemetry/:deviceId/:scope', writeSchema('Save device attributes, legacy path (saveDeviceAttributes)'), write);
  });

  const deleteSchema = (summary: string) => ({
    schema: { tags: TAGS, summary, security: SECURED, params: paramsWith('deviceId', 'scope'), querystring: KEYS_QUERY },
  });
  const remove = async (req: FastifyRequest<ScopeRoute & KeysQuery>, reply: FastifyReply) => {
    await deleteAttributes(deps, req);
    return reply.status(200).send();
  };
  app.delete<ScopeRoute & KeysQuery>(`${DEVICE_TELEMETRY}/:deviceId/:scope`, deleteSchema('Delete attributes (deleteEntityAttributes)'), remove);
  app.delete<ScopeRoute & KeysQuery>('/api/plugins/telemetry/:deviceId/:scope', deleteSchema('Delete device attributes, legacy path'), remove);
}
