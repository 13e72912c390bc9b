/**
 * Reads TelemetryController's query parameters as ThingsBoard binds them (spec §4.1-4.3): repeated `key` wins over
 * comma-separated `keys`; enums `agg` and `intervalType` are case-sensitive, `orderBy` is not; booleans follow
 * Spring (`True` from Python works). Bad values are 400/31.
 */
import { badRequest } from '../core/errors.ts';
import { AGGREGATIONS, INTERVAL_TYPES, resolveZone, type Aggregation, type IntervalType } from '../core/timeseries-aggregate.ts';
import type { HistoryQuery } from '../core/timeseries-admin.ts';
import { booleanParam } from './page-link.ts';

/** The raw query string of the telemetry routes (every value a string, `key` possibly repeated). */
export interface TelemetryQueryString {
  keys?: string;
  key?: string | string[];
  startTs?: string;
  endTs?: string;
  limit?: string;
  orderBy?: string;
  useStrictDataTypes?: string;
  interval?: string;
  intervalType?: string;
  timeZone?: string;
  agg?: string;
  deleteAllDataForKeys?: string;
  deleteLatest?: string;
  rewriteLatestIfDeleted?: string;
}

/** Schema properties for the telemetry query strings (documentation; values are checked here). */
export const TELEMETRY_QUERY_PROPERTIES = {
  keys: { type: 'string', description: 'Comma-separated keys' },
  key: { anyOf: [{ type: 'string' }, { type: 'array', items: { type: 'string' } }], description: 'One key per parameter (repeatable); wins over keys' },
  startTs: { type: 'string', description: 'Range start, ms (inclusive); with endTs selects a history read' },
  endTs: { type: 'string', description: 'Range end, ms (exclusive)' },
  limit: { type: 'string', description: 'Most points per key of a raw read (default 100)' },
  orderBy: { type: 'string', description: 'ASC or DESC (default DESC), raw reads' },
  useStrictDataTypes: { type: 'string', description: 'Typed values instead of strings (default false)' },
  interval: { type: 'string', description: 'Bucket length in ms for agg other than NONE (default 0 = raw)' },
  intervalType: { type: 'string', description: 'MILLISECONDS (default), WEEK, WEEK_ISO, MONTH, QUARTER' },
  timeZone: { type: 'string', description: 'IANA zone of calendar buckets (default: the server zone)' },
  agg: { type: 'string', description: 'NONE (default), AVG, MIN, MAX, SUM, COUNT' },
} as const;

/** The keys asked for; undefined when none was given. */
export function requestedKeys(q: TelemetryQueryString): string[] | undefined {
  if (q.key !== undefined) {
    const keys = (Array.isArray(q.key) ? q.key : [q.key]).filter((k) => k !== '');
    return keys.length > 0 ? keys : undefined;
  }
  if (q.keys === undefined || q.keys === '') return undefined;
  const keys = q.keys.split(',').filter((k) => k !== '');
  return keys.length > 0 ? keys : undefined;
}

/** A long query parameter; undefined when absent. */
export function longParam(value: string | undefined, name: string): number | undefined {
  if (value === undefined || value === '') return undefined;
  if (!/^-?\d+$/.test(value.trim())) throw badRequest(`Failed to convert value of type 'java.lang.String' to required type 'long'; For input string: "${value}" (parameter '${name}')`);
  return Number(value.trim());
}

function enumParam<T extends string>(value: string | undefined, allowed: readonly T[], fqcn: string, fallback: T): T {
  if (value === undefined || value === '') return fallback;
  if (!(allowed as readonly string[]).includes(value)) throw badRequest(`No enum constant ${fqcn}.${value}`);
  return value as T;
}

/** Whether the values are rendered typed (useStrictDataTypes). */
export function strictTypes(q: TelemetryQueryString): boolean {
  return booleanParam(q.useStrictDataTypes, 'useStrictDataTypes') ?? false;
}

/** A history read, or undefined when startTs or endTs is missing (then it is a latest-values read). */
export function historyQuery(q: TelemetryQueryString): HistoryQuery | undefined {
  const startTs = longParam(q.startTs, 'startTs');
  const endTs = longParam(q.endTs, 'endTs');
  if (startTs === undefined || endTs === undefined) return undefined;
  const agg = enumParam<Aggregation>(q.agg, AGGREGATIONS, 'org.thingsboard.server.common.data.kv.Aggregation', 'NONE');
  const intervalType = enumParam<IntervalType>(q.intervalType, INTERVAL_TYPES, 'org.thingsboard.server.common.data.kv.IntervalType', 'MILLISECONDS');
  const limit = longParam(q.limit, 'limit') ?? 100;
  if (limit < 1) throw badRequest(`Incorrect limit '${limit}'. Limit must be greater than zero.`);
  const order = (q.orderBy || 'DESC').toUpperCase();
  if (order !== 'ASC' && order !== 'DESC') throw badRequest(`No enum constant org.thingsboard.server.common.data.kv.SortOrder.${q.orderBy}`);
  return {
    keys: requestedKeys(q) ?? [],
    startTs,
    endTs,
    agg,
    intervalType,
    interval: longParam(q.interval, 'interval') ?? 0,
    timeZone: resolveZone(q.timeZone),
    limit: Math.min(limit, 100_000),
    orderBy: order,
  };
}
