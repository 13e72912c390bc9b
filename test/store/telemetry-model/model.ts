/**
 * The Store's telemetry contract as a plain in-memory model (test/store/telemetry-model.test.ts): every (device, key,
 * ts) holds its last written value, the latest value of a (device, key) is that of the newest ts ever written (the
 * later write of a tie) until a delete removes or rewrites it, and reads, aggregates and deletes follow from those.
 * It knows nothing of how a store lays rows out, so the same expectations hold for every layout.
 */
import type { KvValue, TsPoint } from '../../../src/core/model.ts';
import type { AggregateBucket, TimeseriesAggregateQuery, TimeseriesDelete, TimeseriesQuery } from '../../../src/core/ports/store.ts';

/** A point as a read returns it. */
export interface Stored {
  ts: number;
  value: KvValue;
}

const MIN_SAFE = BigInt(Number.MIN_SAFE_INTEGER);
const MAX_SAFE = BigInt(Number.MAX_SAFE_INTEGER);

/**
 * A written value as every store reads it back: a LONG is a number within the safe integers and a bigint beyond
 * them (values.ts fromColumns); a DOUBLE -0 reads as 0 (measured on main: SQLite and PostgreSQL both give +0).
 */
export function asRead(value: KvValue): KvValue {
  if (value.type === 'LONG') {
    const big = BigInt(value.value);
    return { type: 'LONG', value: big >= MIN_SAFE && big <= MAX_SAFE ? Number(big) : big };
  }
  if (value.type === 'DOUBLE' && Object.is(value.value, -0)) return { type: 'DOUBLE', value: 0 };
  return value;
}

const seriesKey = (deviceId: string, key: string) => `${deviceId}\u0000${key}`;

/** The model of one store's telemetry (see the file's doc). */
export class TelemetryModel {
  /** Per series, ts -> value (as read). */
  private readonly rows = new Map<string, Map<number, KvValue>>();
  private readonly latest = new Map<string, Stored>();
  /** Devices that exist as device rows (deleteDevice deletes telemetry only of those). */
  readonly devices = new Set<string>();

  /** A writeBatch: each point in order, so a later point of a (device, key, ts) wins, in values and in latest. */
  write(points: readonly TsPoint[]): void {
    for (const p of points) {
      const id = seriesKey(p.deviceId, p.key);
      let series = this.rows.get(id);
      if (!series) this.rows.set(id, (series = new Map()));
      const value = asRead(p.value);
      series.set(p.ts, value);
      const l = this.latest.get(id);
      if (!l || p.ts >= l.ts) this.latest.set(id, { ts: p.ts, value });
    }
  }

  /** The points of a series sorted by ts. */
  series(deviceId: string, key: string): Stored[] {
    const series = this.rows.get(seriesKey(deviceId, key));
    if (!series) return [];
    return [...series].sort((a, b) => a[0] - b[0]).map(([ts, value]) => ({ ts, value }));
  }

  /** The timestamps of a series, sorted. */
  timestamps(deviceId: string, key: string): number[] {
    return [...(this.rows.get(seriesKey(deviceId, key))?.keys() ?? [])].sort((a, b) => a - b);
  }

  getTimeseries(q: TimeseriesQuery): Map<string, Stored[]> {
    const out = new Map<string, Stored[]>();
    for (const key of q.keys) {
      let points = this.series(q.deviceId, key).filter((p) => p.ts >= q.startTs && p.ts <= q.endTs);
      if (q.orderBy === 'DESC') points.reverse();
      points = points.slice(0, q.limit);
      if (points.length > 0) out.set(key, points);
    }
    return out;
  }

  getLatest(deviceId: string, keys?: readonly string[]): Map<string, Stored> {
    const out = new Map<string, Stored>();
    for (const [id, l] of this.latest) {
      const [d, key] = id.split('\u0000');
      if (d === deviceId && (!keys || keys.includes(key))) out.set(key, l);
    }
    return new Map([...out].sort((a, b) => (a[0] < b[0] ? -1 : 1)));
  }

  listKeys(deviceId: string): string[] {
    return [...this.getLatest(deviceId).keys()];
  }

  /**
   * Per key, the buckets with points, ordered by start (the query's buckets have distinct starts). Sums are exact
   * here: a LONG sum as a bigint, a DOUBLE sum as the float sum and the sum of magnitudes (for a relative tolerance).
   */
  aggregate(q: TimeseriesAggregateQuery, dialect: 'sqlite' | 'postgres'): Map<string, ExpectedBucket[]> {
    const out = new Map<string, ExpectedBucket[]>();
    const buckets = [...q.buckets].sort((a, b) => a[0] - b[0]);
    for (const key of [...new Set(q.keys)].sort()) {
      const points = this.series(q.deviceId, key);
      const list: ExpectedBucket[] = [];
      for (const [start, end] of buckets) {
        const inside = points.filter((p) => p.ts >= start && p.ts < end);
        if (inside.length > 0) list.push(expectedBucket(start, end, inside, dialect));
      }
      if (list.length > 0) out.set(key, list);
    }
    return out;
  }

  /** deleteTimeseries (kysely/timeseries-aggregation.ts): points in [startTs, endTs), then latest values as asked. */
  delete(del: TimeseriesDelete): void {
    for (const key of del.keys) {
      const id = seriesKey(del.deviceId, key);
      const series = this.rows.get(id);
      if (series) for (const ts of [...series.keys()]) if (ts >= del.startTs && ts < del.endTs) series.delete(ts);
      if (!del.deleteLatest) continue;
      const l = this.latest.get(id);
      if (!l || l.ts < del.startTs || l.ts >= del.endTs) continue;
      this.latest.delete(id);
      if (!del.rewriteLatest) continue;
      const before = this.series(del.deviceId, key).filter((p) => p.ts < del.startTs);
      if (before.length > 0) this.latest.set(id, before[before.length - 1]);
    }
  }

  /** deleteDevice: a device row that exists takes its telemetry with it; true when it existed. */
  deleteDevice(deviceId: string): boolean {
    if (!this.devices.delete(deviceId)) return false;
    for (const id of [...this.rows.keys()]) if (id.startsWith(`${deviceId}\u0000`)) this.rows.delete(id);
    for (const id of [...this.latest.keys()]) if (id.startsWith(`${deviceId}\u0000`)) this.latest.delete(id);
    return true;
  }

  /** Sum of |long| over a series' points in [start, end): a LONG sum at 2^63 or more would overflow SQLite's sum(). */
  longMagnitude(deviceId: string, key: string, start: number, end: number): bigint {
    let total = 0n;
    for (const p of this.series(deviceId, key)) {
      if (p.ts < start || p.ts >= end || p.value.type !== 'LONG') continue;
      const v = BigInt(p.value.value);
      total += v < 0n ? -v : v;
    }
    return total;
  }
}

/** What a bucket must hold: AggregateBucket with sumDouble checked against `doubleMagnitude` (relative 1e-9). */
export interface ExpectedBucket extends AggregateBucket {
  /** Sum of |double| of the bucket (finite values), the scale of the tolerance on sumDouble. */
  doubleMagnitude: number;
}

function expectedBucket(start: number, end: number, points: readonly Stored[], dialect: 'sqlite' | 'postgres'): ExpectedBucket {
  const of = <T extends KvValue['type']>(type: T) => points.map((p) => p.value).filter((v): v is Extract<KvValue, { type: T }> => v.type === type);
  const longs = of('LONG').map((v) => BigInt(v.value));
  const doubles = of('DOUBLE').map((v) => v.value);
  const strings = of('STRING').map((v) => v.value);
  let sumLong = 0n;
  for (const v of longs) sumLong += v;
  const finite = doubles.filter((v) => Number.isFinite(v));
  let sumDouble: number | null = finite.reduce((s, v) => s + v, 0);
  const infinite = doubles.filter((v) => !Number.isFinite(v));
  if (infinite.length > 0) {
    const mixed = infinite.some((v) => v > 0) && infinite.some((v) => v < 0);
    // Inf + -Inf: SQLite's sum() gives NULL for the NaN, PostgreSQL's NaN (measured on main).
    sumDouble = mixed ? (dialect === 'sqlite' ? null : NaN) : infinite[0];
  }
  const minOf = (list: bigint[]) => list.reduce((m, v) => (v < m ? v : m));
  const maxOf = (list: bigint[]) => list.reduce((m, v) => (v > m ? v : m));
  return {
    start,
    end,
    countBool: of('BOOLEAN').length,
    countString: strings.length,
    countJson: of('JSON').length,
    countLong: longs.length,
    countDouble: doubles.length,
    sumLong: longs.length > 0 ? Number(sumLong) : null,
    sumDouble: doubles.length > 0 ? sumDouble : null,
    minLong: longs.length > 0 ? Number(minOf(longs)) : null,
    maxLong: longs.length > 0 ? Number(maxOf(longs)) : null,
    minDouble: doubles.length > 0 ? Math.min(...doubles) : null,
    maxDouble: doubles.length > 0 ? Math.max(...doubles) : null,
    minString: strings.length > 0 ? strings.reduce((m, v) => (v < m ? v : m)) : null,
    maxString: strings.length > 0 ? strings.reduce((m, v) => (v > m ? v : m)) : null,
    doubleMagnitude: finite.reduce((s, v) => s + Math.abs(v), 0),
  };
}
