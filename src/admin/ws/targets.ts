/**
 * Validation of a command's target in ThingsBoard's order and wording (spec §2.5), the permission check ThingsBoard
 * skips for attributes (spec §6.7: fleetgate enforces it), and the snapshot and history reads (spec §3.2).
 */
import type { Core } from '../../core/core-types.ts';
import { FleetgateError } from '../../core/errors.ts';
import type { Aggregation } from '../../core/timeseries-aggregate.ts';
import { ATTRIBUTE_SCOPES, type AttributeScope } from '../../core/model.ts';
import type { AdminPrincipal } from '../context.ts';
import type { HistoryCmd, SubscriptionCmd } from './commands.ts';
import { ReplyData, WS_ERROR } from './render.ts';

/** A command refused with an error reply on its cmdId. */
export class WsCommandError extends Error {
  constructor(
    readonly errorCode: number,
    message: string,
  ) {
    super(message);
  }
}

/** TB EntityType values (a subset is enough to tell a valid name from an invalid one). */
const ENTITY_TYPES = new Set([
  'TENANT', 'CUSTOMER', 'USER', 'DASHBOARD', 'ASSET', 'DEVICE', 'ALARM', 'RULE_CHAIN', 'RULE_NODE', 'ENTITY_VIEW',
  'WIDGETS_BUNDLE', 'WIDGET_TYPE', 'TENANT_PROFILE', 'DEVICE_PROFILE', 'ASSET_PROFILE', 'API_USAGE_STATE', 'TB_RESOURCE',
  'OTA_PACKAGE', 'EDGE', 'RPC', 'QUEUE', 'NOTIFICATION_TARGET', 'NOTIFICATION_TEMPLATE', 'NOTIFICATION_REQUEST',
  'NOTIFICATION', 'NOTIFICATION_RULE', 'QUEUE_STATS', 'OAUTH2_CLIENT', 'DOMAIN', 'MOBILE_APP', 'CALCULATED_FIELD', 'JOB',
]);
const AGGREGATIONS = new Set(['MIN', 'MAX', 'AVG', 'SUM', 'COUNT', 'NONE']);
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

export const FETCH_DATA_FAILED = 'Failed to fetch data!';
export const FETCH_ATTRIBUTES_FAILED = 'Failed to fetch attributes!';

/** What a validated command reads and watches. */
export interface Target {
  deviceId: string;
  /** Requested keys; undefined = all keys. */
  keys: Set<string> | undefined;
}

/** TB: comma-separated, not trimmed, duplicates collapse; empty = all. An empty key is refused (TB sends nothing, spec §6.8). */
function parseKeys(keys: string | null): Set<string> | undefined {
  if (keys === null || keys === '') return undefined;
  const list = keys.split(',');
  if (list.some((k) => k === '')) throw new WsCommandError(WS_ERROR.BAD_REQUEST, `Keys must not be empty: "${keys}"`);
  return new Set(list);
}

/** Steps 3-6 of spec §2.5 for a subscription or history command; resolves to the device it reads. */
export async function resolveTarget(core: Core, principal: AdminPrincipal, cmd: SubscriptionCmd | HistoryCmd): Promise<Target> {
  if (cmd.cmdId < 0) throw new WsCommandError(WS_ERROR.BAD_REQUEST, 'Cmd id is negative value!');
  if (!cmd.entityId || (cmd.type === 'TIMESERIES_HISTORY' && !cmd.entityType)) throw new WsCommandError(WS_ERROR.BAD_REQUEST, 'Device id is empty!');
  if (cmd.type === 'TIMESERIES_HISTORY' && !cmd.keys) throw new WsCommandError(WS_ERROR.BAD_REQUEST, 'Keys are empty!');
  if (cmd.entityType === null) throw new WsCommandError(WS_ERROR.INTERNAL_ERROR, 'Name is null');
  if (!ENTITY_TYPES.has(cmd.entityType)) throw new WsCommandError(WS_ERROR.INTERNAL_ERROR, `No enum constant org.thingsboard.server.common.data.EntityType.${cmd.entityType}`);
  if (!UUID.test(cmd.entityId)) throw new WsCommandError(WS_ERROR.INTERNAL_ERROR, `Invalid UUID string: ${cmd.entityId}`);
  if (cmd.agg !== null && !AGGREGATIONS.has(cmd.agg)) throw new WsCommandError(WS_ERROR.INTERNAL_ERROR, `No enum constant org.thingsboard.server.common.data.kv.Aggregation.${cmd.agg}`);
  const keys = parseKeys(cmd.keys);
  if (cmd.type === 'ATTRIBUTES') attributeScopes(cmd.scope);
  const denied = cmd.type === 'ATTRIBUTES' ? FETCH_ATTRIBUTES_FAILED : FETCH_DATA_FAILED;
  // Only devices carry telemetry in fleetgate; a tenant admin reads its own tenant's devices only.
  if (cmd.entityType !== 'DEVICE' || principal.authority === 'SYS_ADMIN') throw new WsCommandError(WS_ERROR.INTERNAL_ERROR, denied);
  let deviceId: string;
  try {
    deviceId = (await core.devices.get(principal.tenantId, cmd.entityId)).id;
  } catch {
    throw new WsCommandError(WS_ERROR.INTERNAL_ERROR, denied); // TB: unknown or foreign entity is code 1 (spec §6.9)
  }
  return { deviceId, keys };
}

/** The scopes an ATTRIBUTES command covers: one, or all three in TB's order (CLIENT, SERVER, SHARED). */
export function attributeScopes(scope: string | null): AttributeScope[] {
  if (scope === null || scope === '') return ['CLIENT_SCOPE', 'SERVER_SCOPE', 'SHARED_SCOPE'];
  if (!(ATTRIBUTE_SCOPES as readonly string[]).includes(scope)) throw new WsCommandError(WS_ERROR.BAD_REQUEST, `Invalid attribute scope: ${scope}`);
  return [scope as AttributeScope];
}

/** Raw history per key, newest first, in [startTs, endTs) (TB: endTs is exclusive; limit 0 -> 100). */
async function history(core: Core, target: Target, startTs: number, endTs: number, limit: number, data: ReplyData): Promise<void> {
  if (!target.keys || endTs <= startTs) return;
  const series = await core.timeseries.get(target.deviceId, { keys: [...target.keys], startTs, endTs: endTs - 1, limit: limit > 0 ? limit : 100, orderBy: 'DESC' });
  for (const [key, points] of Object.entries(series)) for (const p of points) data.add(key, p.ts, p.value);
}

/** The first message of a TIMESERIES subscription (spec §3.2). */
export async function timeseriesSnapshot(core: Core, target: Target, cmd: SubscriptionCmd): Promise<ReplyData> {
  const data = new ReplyData();
  if (target.keys && cmd.timeWindow > 0) {
    // spec §3.2: the window's history, aggregated as TIMESERIES_HISTORY is; the updates that follow stay raw (§3.3).
    const windowEnd = cmd.startTs + cmd.timeWindow;
    if (cmd.agg === null || cmd.agg === 'NONE') await history(core, target, cmd.startTs, windowEnd, cmd.limit, data);
    else await aggregatedHistory(core, target, cmd.startTs, windowEnd, cmd.agg, cmd.interval, cmd.limit, data);
    return data;
  }
  const latest = await core.timeseries.latest(target.deviceId, target.keys ? [...target.keys] : undefined);
  const now = Date.now();
  for (const [key, points] of Object.entries(latest)) for (const p of points) data.add(key, p.ts, p.value);
  // TB: a requested key never written reads [now, null] (spec §6.6).
  if (target.keys) for (const key of target.keys) if (!(key in latest)) data.add(key, now, null);
  return data;
}

/** The one reply of TIMESERIES_HISTORY (spec §3.2). */
export async function historyReply(core: Core, target: Target, cmd: HistoryCmd): Promise<ReplyData> {
  const data = new ReplyData();
  if (cmd.agg === null || cmd.agg === 'NONE') await history(core, target, cmd.startTs, cmd.endTs, cmd.limit, data);
  else await aggregatedHistory(core, target, cmd.startTs, cmd.endTs, cmd.agg, cmd.interval, cmd.limit, data);
  return data;
}

/** Aggregated history per key in [startTs, endTs): buckets of `interval` ms from startTs, oldest first (spec §3.2). */
async function aggregatedHistory(core: Core, target: Target, startTs: number, endTs: number, agg: string, interval: number, limit: number, data: ReplyData): Promise<void> {
  if (!target.keys || endTs <= startTs) return;
  // TB sends nothing for a bad interval (§6.8); we say why.
  if (interval < 1) throw new WsCommandError(WS_ERROR.BAD_REQUEST, `Aggregation ${agg} needs an interval of at least 1 ms`);
  let series: Awaited<ReturnType<Core['timeseriesAdmin']['history']>>;
  try {
    series = await core.timeseriesAdmin.history(target.deviceId, {
      keys: [...target.keys],
      startTs,
      endTs,
      agg: agg as Aggregation,
      intervalType: 'MILLISECONDS',
      interval,
      timeZone: 'UTC',
      limit: limit > 0 ? limit : 100,
      orderBy: 'ASC',
    });
  } catch (err) {
    if (err instanceof FleetgateError && err.code === 'INVALID_ARGUMENT') throw new WsCommandError(WS_ERROR.BAD_REQUEST, err.message);
    throw err;
  }
  for (const [key, points] of Object.entries(series)) for (const p of points) data.add(key, p.ts, p.value);
}

/** The first message of an ATTRIBUTES subscription: existing attributes of the scope(s), missing keys omitted. */
export async function attributesSnapshot(core: Core, target: Target, scopes: AttributeScope[]): Promise<ReplyData> {
  const data = new ReplyData();
  for (const scope of scopes) {
    const entries = await core.attributes.get(target.deviceId, scope, target.keys ? [...target.keys] : undefined);
    for (const e of entries) data.add(e.key, e.lastUpdateTs, e.value);
  }
  return data;
}
