/**
 * ThingsBoard's time-series aggregation (spec §4.1): buckets from startTs (fixed `interval`, or calendar weeks,
 * months and quarters in a time zone), each reported at its midpoint, with TB's value types per aggregation. The sums,
 * counts and extremes are computed by the database (Store.aggregateTimeseries); this module only picks from them.
 */
import { badRequest } from './errors.ts';
import type { KvValue } from './model.ts';
import type { AggregateBucket } from './ports/store.ts';

export const AGGREGATIONS = ['MIN', 'MAX', 'AVG', 'SUM', 'COUNT', 'NONE'] as const;
export type Aggregation = (typeof AGGREGATIONS)[number];
export const INTERVAL_TYPES = ['MILLISECONDS', 'WEEK', 'WEEK_ISO', 'MONTH', 'QUARTER'] as const;
export type IntervalType = (typeof INTERVAL_TYPES)[number];

/** TB `database.ts_max_intervals`. */
export const MAX_INTERVALS = 700;
const DAY = 86_400_000;
/** TB's interval estimate per calendar type, for the guard. */
const CALENDAR_ESTIMATE: Record<Exclude<IntervalType, 'MILLISECONDS'>, number> = { WEEK: 7 * DAY, WEEK_ISO: 7 * DAY, MONTH: 30 * DAY, QUARTER: 90 * DAY };

/** Offset of `zone` from UTC at instant `ms`, in ms. */
function zoneOffset(ms: number, zone: string): number {
  const parts = new Intl.DateTimeFormat('en-US', { timeZone: zone, hourCycle: 'h23', year: 'numeric', month: 'numeric', day: 'numeric', hour: 'numeric', minute: 'numeric', second: 'numeric' }).formatToParts(new Date(ms));
  const get = (type: string) => Number(parts.find((p) => p.type === type)?.value);
  const asUtc = Date.UTC(get('year'), get('month') - 1, get('day'), get('hour'), get('minute'), get('second'));
  return asUtc - Math.floor(ms / 1000) * 1000;
}

/** The instant of local midnight `y-m-d` in `zone` (m 0-based; overflowing days/months roll over like Date.UTC). */
function zonedMidnight(y: number, m: number, d: number, zone: string): number {
  const guess = Date.UTC(y, m, d);
  let at = guess - zoneOffset(guess, zone);
  at = guess - zoneOffset(at, zone); // once more, in case the offset changed between the two instants
  return at;
}

/** Local calendar date of `ms` in `zone`: year, month (0-based), day, weekday (0 = Sunday). */
function zonedDate(ms: number, zone: string): { y: number; m: number; d: number; weekday: number } {
  const local = new Date(ms + zoneOffset(ms, zone));
  return { y: local.getUTCFullYear(), m: local.getUTCMonth(), d: local.getUTCDate(), weekday: local.getUTCDay() };
}

/** The start of the calendar period after the one holding `ms`. */
function nextBoundary(ms: number, type: Exclude<IntervalType, 'MILLISECONDS'>, zone: string): number {
  const { y, m, d, weekday } = zonedDate(ms, zone);
  switch (type) {
    case 'WEEK': // Sunday-Saturday
      return zonedMidnight(y, m, d + (7 - weekday), zone);
    case 'WEEK_ISO': // Monday-Sunday
      return zonedMidnight(y, m, d + (7 - ((weekday + 6) % 7)), zone);
    case 'MONTH':
      return zonedMidnight(y, m + 1, 1, zone);
    case 'QUARTER':
      return zonedMidnight(y, m - (m % 3) + 3, 1, zone);
  }
}

/** A usable IANA zone, else the server's (TB: empty or invalid -> server zone, silently); TB's aliases are accepted. */
export function resolveZone(zone: string | undefined): string {
  const aliases: Record<string, string> = { EST: 'America/New_York', 'GMT+0': 'UTC', 'GMT-0': 'UTC', HST: 'Pacific/Honolulu', MST: 'America/Denver', ROC: 'Asia/Taipei' };
  const wanted = zone ? (aliases[zone] ?? zone) : undefined;
  if (wanted) {
    try {
      new Intl.DateTimeFormat('en-US', { timeZone: wanted });
      return wanted;
    } catch {
      // fall through to the server's zone
    }
  }
  return Intl.DateTimeFormat().resolvedOptions().timeZone;
}

/**
 * Buckets [start, end) covering [startTs, endTs): fixed steps of `interval` ms, or calendar periods. Throws TB's
 * 400 when there would be too many (spec §4.1 guard).
 */
export function buildBuckets(startTs: number, endTs: number, intervalType: IntervalType, interval: number, zone: string): [number, number][] {
  if (intervalType === 'MILLISECONDS' && interval < 0) {
    throw badRequest(`Invalid TsKvQuery: 'interval' must be greater than 0, but got ${interval}. Please check your query parameters and ensure 'endTs' is greater than 'startTs' or increase 'interval'.`);
  }
  const step = intervalType === 'MILLISECONDS' ? Math.max(interval, 1000) : CALENDAR_ESTIMATE[intervalType];
  const estimate = Math.trunc((endTs - startTs) / step);
  if (estimate > MAX_INTERVALS || estimate < 0) {
    throw badRequest(
      `Incorrect TsKvQuery. Number of intervals is to high - ${estimate}. Please increase 'interval' parameter for your query or reduce the time range of the query.`,
    );
  }
  const end = Math.max(startTs + 1, endTs);
  const buckets: [number, number][] = [];
  for (let s = startTs; s < end && buckets.length <= MAX_INTERVALS * 5; ) {
    const next = intervalType === 'MILLISECONDS' ? s + interval : nextBoundary(s, intervalType, zone);
    const e = Math.min(Math.max(next, s + 1), end);
    buckets.push([s, e]);
    s = e;
  }
  return buckets;
}

/** TB's value of one bucket (TsKvEntity aggregation constructors); undefined = the bucket is left out. */
export function bucketValue(agg: Exclude<Aggregation, 'NONE'>, b: AggregateBucket): KvValue | undefined {
  const numeric = b.countLong + b.countDouble;
  const total = (b.sumLong ?? 0) + (b.sumDouble ?? 0);
  switch (agg) {
    case 'AVG':
      return { type: 'DOUBLE', value: numeric > 0 ? total / numeric : 0 };
    case 'SUM':
      return b.countDouble > 0 ? { type: 'DOUBLE', value: total } : { type: 'LONG', value: b.sumLong ?? 0 };
    case 'COUNT': {
      // TB counts one type only: booleans if any, else strings, else JSON, else numbers.
      const count = b.countBool > 0 ? b.countBool : b.countString > 0 ? b.countString : b.countJson > 0 ? b.countJson : numeric;
      return { type: 'LONG', value: count };
    }
    case 'MIN':
    case 'MAX': {
      const pick = agg === 'MIN' ? Math.min : Math.max;
      if (b.countDouble > 0) {
        const parts = [agg === 'MIN' ? b.minDouble : b.maxDouble, agg === 'MIN' ? b.minLong : b.maxLong].filter((v): v is number => v !== null);
        return { type: 'DOUBLE', value: pick(...parts) };
      }
      if (b.countLong > 0) return { type: 'LONG', value: (agg === 'MIN' ? b.minLong : b.maxLong)! };
      const text = agg === 'MIN' ? b.minString : b.maxString;
      return text !== null ? { type: 'STRING', value: text } : undefined;
    }
  }
}

/** The point TB reports for a bucket: at its midpoint (integer division). */
export function bucketTs(b: { start: number; end: number }): number {
  return b.start + Math.floor((b.end - b.start) / 2);
}
