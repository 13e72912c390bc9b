/**
 * Parsing of WebSocket telemetry frames, as strictly as ThingsBoard's Jackson defaults (spec §2.3): an unknown
 * member, a missing or unknown `type`, or a member of the wrong JSON type fails the whole frame.
 */

/** v1 subscription (`TIMESERIES`, `ATTRIBUTES`) and one-shot history (`TIMESERIES_HISTORY`) commands (spec §2.4). */
export interface SubscriptionCmd {
  type: 'TIMESERIES' | 'ATTRIBUTES';
  cmdId: number;
  entityType: string | null;
  entityId: string | null;
  keys: string | null;
  scope: string | null;
  unsubscribe: boolean;
  /** TIMESERIES only; 0 when absent. */
  startTs: number;
  timeWindow: number;
  interval: number;
  limit: number;
  agg: string | null;
}

export interface HistoryCmd {
  type: 'TIMESERIES_HISTORY';
  cmdId: number;
  entityType: string | null;
  entityId: string | null;
  keys: string | null;
  startTs: number;
  endTs: number;
  interval: number;
  limit: number;
  agg: string | null;
}

/** A command ThingsBoard knows that fleetgate does not serve (v2 queries, notifications): answered with an error. */
export interface UnsupportedCmd {
  type: 'UNSUPPORTED';
  name: string;
  cmdId: number;
}

export type WsCommand = SubscriptionCmd | HistoryCmd | UnsupportedCmd;

export interface AuthCmd {
  token: string | null;
  apiKey: string | null;
}

/** A parsed frame: its `authCmd` (new endpoint only) and its commands in execution order. */
export interface WsFrame {
  authCmd: AuthCmd | undefined;
  cmds: WsCommand[];
}

/** Why a frame could not be parsed (for logs; the client gets ThingsBoard's fixed text). */
export class FrameParseError extends Error {}

const COMMON = ['type', 'cmdId', 'entityType', 'entityId', 'keys'];
const FIELDS: Record<string, Set<string>> = {
  // TB: SubscriptionCmd + TimeseriesSubscriptionCmd / AttributesSubscriptionCmd / GetHistoryCmd members
  TIMESERIES: new Set([...COMMON, 'scope', 'unsubscribe', 'startTs', 'timeWindow', 'interval', 'limit', 'agg']),
  ATTRIBUTES: new Set([...COMMON, 'scope', 'unsubscribe']),
  TIMESERIES_HISTORY: new Set([...COMMON, 'startTs', 'endTs', 'interval', 'limit', 'agg']),
};

/** v2 and notification command types of ThingsBoard's WsCmdType (spec §2.1): valid, not served. */
const UNSUPPORTED_TYPES = new Set([
  'ENTITY_DATA', 'ENTITY_COUNT', 'ALARM_DATA', 'ALARM_COUNT', 'ALARM_STATUS',
  'ENTITY_DATA_UNSUBSCRIBE', 'ENTITY_COUNT_UNSUBSCRIBE', 'ALARM_DATA_UNSUBSCRIBE', 'ALARM_COUNT_UNSUBSCRIBE', 'ALARM_STATUS_UNSUBSCRIBE',
  'NOTIFICATIONS', 'NOTIFICATIONS_COUNT', 'MARK_NOTIFICATIONS_AS_READ', 'MARK_ALL_NOTIFICATIONS_AS_READ', 'NOTIFICATIONS_UNSUBSCRIBE',
]);

/** Legacy wrapper members in ThingsBoard's execution order, with the command type each holds (spec §2.2). */
const LEGACY_MEMBERS: [string, string][] = [
  ['attrSubCmds', 'ATTRIBUTES'],
  ['tsSubCmds', 'TIMESERIES'],
  ['historyCmds', 'TIMESERIES_HISTORY'],
  ['entityDataCmds', 'ENTITY_DATA'],
  ['entityDataUnsubscribeCmds', 'ENTITY_DATA_UNSUBSCRIBE'],
  ['alarmDataCmds', 'ALARM_DATA'],
  ['alarmDataUnsubscribeCmds', 'ALARM_DATA_UNSUBSCRIBE'],
  ['entityCountCmds', 'ENTITY_COUNT'],
  ['entityCountUnsubscribeCmds', 'ENTITY_COUNT_UNSUBSCRIBE'],
  ['alarmCountCmds', 'ALARM_COUNT'],
  ['alarmCountUnsubscribeCmds', 'ALARM_COUNT_UNSUBSCRIBE'],
];

function isObject(value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === 'object' && !Array.isArray(value);
}

function fail(message: string): never {
  throw new FrameParseError(message);
}

function str(obj: Record<string, unknown>, name: string): string | null {
  const v = obj[name];
  if (v === undefined || v === null) return null;
  if (typeof v !== 'string') fail(`${name} must be a string`);
  return v;
}

/** An integral number (Java int/long); absent or null = 0. */
function num(obj: Record<string, unknown>, name: string, max = Number.MAX_SAFE_INTEGER): number {
  const v = obj[name];
  if (v === undefined || v === null) return 0;
  if (typeof v !== 'number' || !Number.isInteger(v) || Math.abs(v) > max) fail(`${name} must be an integer`);
  return v;
}

function bool(obj: Record<string, unknown>, name: string): boolean {
  const v = obj[name];
  if (v === undefined || v === null) return false;
  if (typeof v !== 'boolean') fail(`${name} must be a boolean`);
  return v;
}

const INT_MAX = 2 ** 31 - 1;

/** One command of a known `type`; `legacy` tolerates a `type` member whatever its value (spec §2.3, derived). */
function parseCommand(raw: unknown, type: string): WsCommand {
  if (!isObject(raw)) fail('a command must be an object');
  if (UNSUPPORTED_TYPES.has(type)) return { type: 'UNSUPPORTED', name: type, cmdId: typeof raw.cmdId === 'number' && Number.isInteger(raw.cmdId) ? raw.cmdId : 0 };
  const allowed = FIELDS[type];
  if (!allowed) fail(`unknown command type`);
  for (const name of Object.keys(raw)) if (!allowed.has(name)) fail(`unknown member ${name} in ${type}`);
  const base = { cmdId: num(raw, 'cmdId', INT_MAX), entityType: str(raw, 'entityType'), entityId: str(raw, 'entityId'), keys: str(raw, 'keys') };
  const window = { startTs: num(raw, 'startTs'), interval: num(raw, 'interval'), limit: num(raw, 'limit', INT_MAX), agg: str(raw, 'agg') };
  if (type === 'TIMESERIES_HISTORY') return { type, ...base, ...window, endTs: num(raw, 'endTs') };
  const sub = { ...base, scope: str(raw, 'scope'), unsubscribe: bool(raw, 'unsubscribe') };
  if (type === 'TIMESERIES') return { type, ...sub, ...window, timeWindow: num(raw, 'timeWindow') };
  return { type: 'ATTRIBUTES', ...sub, startTs: 0, timeWindow: 0, interval: 0, limit: 0, agg: null };
}

function parseAuthCmd(raw: unknown): AuthCmd {
  if (!isObject(raw)) fail('authCmd must be an object');
  for (const name of Object.keys(raw)) if (!['cmdId', 'token', 'apiKey'].includes(name)) fail(`unknown member ${name} in authCmd`);
  num(raw, 'cmdId', INT_MAX);
  return { token: str(raw, 'token'), apiKey: str(raw, 'apiKey') };
}

function array(value: unknown, name: string): unknown[] {
  if (value === undefined || value === null) return [];
  if (!Array.isArray(value)) fail(`${name} must be an array`);
  return value;
}

/** Parses a frame of the new endpoint (`/api/ws`): `{"authCmd":{…},"cmds":[{"type":…}]}` (spec §2.1). */
export function parseGeneralFrame(json: unknown): WsFrame {
  if (!isObject(json)) fail('a frame must be a JSON object');
  for (const name of Object.keys(json)) if (name !== 'authCmd' && name !== 'cmds') fail(`unknown member ${name}`);
  const authCmd = json.authCmd === undefined || json.authCmd === null ? undefined : parseAuthCmd(json.authCmd);
  const cmds = array(json.cmds, 'cmds').map((raw) => {
    if (!isObject(raw) || typeof raw.type !== 'string') fail('a command needs a string type');
    return parseCommand(raw, raw.type);
  });
  return { authCmd, cmds };
}

/** Parses a frame of the legacy endpoint (`/api/ws/plugins/telemetry`): typed arrays, run in TB's member order (spec §2.2). */
export function parseLegacyFrame(json: unknown): WsFrame {
  if (!isObject(json)) fail('a frame must be a JSON object');
  const known = new Set(LEGACY_MEMBERS.map(([name]) => name));
  for (const name of Object.keys(json)) if (!known.has(name)) fail(`unknown member ${name}`);
  const cmds: WsCommand[] = [];
  for (const [name, type] of LEGACY_MEMBERS) {
    for (const raw of array(json[name], name)) {
      if (isObject(raw) && 'type' in raw) {
        const { type: _ignored, ...rest } = raw; // TB: a `type` member inside a legacy command is ignored
        cmds.push(parseCommand(rest, type));
      } else cmds.push(parseCommand(raw, type));
    }
  }
  return { authCmd: undefined, cmds };
}
