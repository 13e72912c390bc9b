/**
 * Time-series aggregation, deletion and key listing done by the database (SQLite and PostgreSQL alike). Buckets are
 * given as [start, end) ranges and joined as a VALUES list, so fixed and calendar intervals are one query; the
 * database returns per bucket and key the counts, sums, minima and maxima of each value column, and core picks
 * ThingsBoard's result type from them (src/core/timeseries-aggregate.ts).
 */
import { sql, type Kysely, type Transaction } from 'kysely';
import type { Database } from '../schema.ts';
import type { AggregateBucket, TimeseriesAggregateQuery, TimeseriesDelete } from '../../core/ports/store.ts';
import type { SqliteStaging } from './sqlite-staging.ts';
import { byUtf8, chunkAggregates, mergedBucket } from './ts-kv-chunk-aggregation.ts';
import { deleteChunkPoints } from './ts-kv-chunk-delete.ts';
import { newestBefore } from './ts-kv-chunk-series.ts';
import { toColumns } from './values.ts';

type Db = Kysely<Database> | Transaction<Database>;

const num = (v: unknown): number | null => (v === null || v === undefined ? null : Number(v));

/** Per key and bucket, what the database computes; on SQLite (`sqlite`) ts_kv_chunk's points too (ts-kv-chunk-aggregation.ts). */
export async function aggregateTimeseries(db: Db, query: TimeseriesAggregateQuery, staging?: SqliteStaging, sqlite = false): Promise<Map<string, AggregateBucket[]>> {
  const result = new Map<string, AggregateBucket[]>();
  if (query.keys.length === 0 || query.buckets.length === 0) return result;
  await staging?.flush(db); // reads must see staged rows
  const buckets = sql.join(query.buckets.map(([s, e]) => sql`(cast(${s} as bigint), cast(${e} as bigint))`));
  const keys = sql.join(query.keys.map((k) => sql`${k}`));
  // SQLite: CROSS JOIN keeps the buckets the outer loop, one primary-key range of ts_kv per bucket. With a plain join
  // and 8 or more buckets its planner scans every row of the key, whatever the range (bench/store/chunk-reads.ts: a
  // day of 24 buckets over 500,000 points a key took 1 s instead of ~50 ms).
  const join = sqlite ? sql`cross join` : sql`join`;
  // SQLite's sum() of integers fails with "integer overflow" past int64 (a handful of epoch-nanosecond values do it);
  // summed as high and low 32-bit halves it cannot overflow, and the exact total is put together below, as
  // PostgreSQL's numeric sum gives it.
  const longSum = sqlite ? sql`sum(t.long_v >> 32) as slh, sum(t.long_v & 4294967295) as sll` : sql`sum(t.long_v) as sl`;
  const rows = await sql<Record<string, unknown>>`
    with b(s, e) as (values ${buckets})
    select t.key as key, b.s as s, b.e as e,
      count(t.bool_v) as cb, count(t.str_v) as cs, count(t.json_v) as cj, count(t.long_v) as cl, count(t.dbl_v) as cd,
      ${longSum}, sum(t.dbl_v) as sd,
      min(t.long_v) as minl, max(t.long_v) as maxl, min(t.dbl_v) as mind, max(t.dbl_v) as maxd,
      min(t.str_v) as mins, max(t.str_v) as maxs
    from b ${join} ts_kv t on t.ts >= b.s and t.ts < b.e
    where t.device_id = ${query.deviceId} and t.key in (${keys})
    group by t.key, b.s, b.e
    order by t.key, b.s`.execute(db);
  // Chunks after rows, as raw reads do, in the caller's one snapshot (ts-kv-chunk-aggregation.ts, sqlite-snapshot-reads.ts).
  const fromChunks = sqlite ? await chunkAggregates(db, query) : undefined;
  for (const r of rows.rows) {
    if (sqlite) r.sl = r.slh === null || r.slh === undefined ? null : BigInt(r.slh as bigint) * 4294967296n + BigInt(r.sll as bigint);
    const sums = fromChunks?.get(r.key as string)?.get(`${Number(r.s)},${Number(r.e)}`);
    if (sums) fromChunks!.get(r.key as string)!.delete(`${Number(r.s)},${Number(r.e)}`);
    const bucket: AggregateBucket = sums ? mergedBucket(Number(r.s), Number(r.e), r, sums) : {
      start: Number(r.s),
      end: Number(r.e),
      countBool: Number(r.cb),
      countString: Number(r.cs),
      countJson: Number(r.cj),
      countLong: Number(r.cl),
      countDouble: Number(r.cd),
      sumLong: num(r.sl),
      sumDouble: num(r.sd),
      minLong: num(r.minl),
      maxLong: num(r.maxl),
      minDouble: num(r.mind),
      maxDouble: num(r.maxd),
      minString: (r.mins as string | null) ?? null,
      maxString: (r.maxs as string | null) ?? null,
    };
    const key = r.key as string;
    if (!result.has(key)) result.set(key, []);
    result.get(key)!.push(bucket);
  }
  return fromChunks && fromChunks.size > 0 ? withChunkOnlyBuckets(result, fromChunks) : result;
}

/** `result` with the buckets only chunk points fill, in the query's order: key (as SQLite orders text), then start. */
function withChunkOnlyBuckets(result: Map<string, AggregateBucket[]>, fromChunks: Awaited<ReturnType<typeof chunkAggregates>>): Map<string, AggregateBucket[]> {
  let added = false;
  for (const [key, sums] of fromChunks) {
    if (sums.size === 0) continue;
    const buckets = result.get(key) ?? [];
    for (const s of sums.values()) buckets.push(mergedBucket(s.start, s.end, undefined, s));
    buckets.sort((a, b) => a.start - b.start || a.end - b.end);
    result.set(key, buckets);
    added = true;
  }
  return added ? new Map([...result].sort(([a], [b]) => byUtf8(a, b))) : result;
}

/** Deletes points of `keys` in [startTs, endTs) (on SQLite also chunk points) and, as asked, the latest values in that range; one transaction. */
export async function deleteTimeseries(db: Db, del: TimeseriesDelete, staging?: SqliteStaging, sqlite = false): Promise<void> {
  if (del.keys.length === 0) return;
  await staging?.flush(db); // staged rows are merged first, so they are deleted too
  await db.deleteFrom('ts_kv').where('device_id', '=', del.deviceId).where('key', 'in', del.keys).where('ts', '>=', del.startTs).where('ts', '<', del.endTs).execute();
  if (sqlite) await deleteChunkPoints(db, del);
  if (!del.deleteLatest) return;
  for (const key of del.keys) {
    const removed = await db
      .deleteFrom('ts_kv_latest')
      .where('device_id', '=', del.deviceId)
      .where('key', '=', key)
      .where('ts', '>=', del.startTs)
      .where('ts', '<', del.endTs)
      .executeTakeFirst();
    if (Number(removed.numDeletedRows) === 0 || !del.rewriteLatest) continue;
    if (sqlite) {
      const newest = await newestBefore(db, del.deviceId, key, del.startTs);
      if (newest) await db.insertInto('ts_kv_latest').values({ device_id: del.deviceId, key, ts: newest.ts, ...toColumns(newest.value) }).execute();
      continue;
    }
    const newest = await db.selectFrom('ts_kv').selectAll().where('device_id', '=', del.deviceId).where('key', '=', key).where('ts', '<', del.startTs).orderBy('ts', 'desc').limit(1).executeTakeFirst();
    if (newest) await db.insertInto('ts_kv_latest').values({ ...newest, ts: newest.ts }).execute();
  }
}

/** Distinct keys of at most 100 devices of the tenant (or of one profile): time series from latest values, or attributes. */
export async function listDeviceKeys(db: Db, tenantId: string, profileId: string | undefined, kind: 'timeseries' | 'attributes'): Promise<string[]> {
  let devices = db.selectFrom('device').select('id').where('tenant_id', '=', tenantId);
  if (profileId) devices = devices.where('profile_id', '=', profileId);
  const sample = devices.orderBy('created_time').limit(100);
  const table = kind === 'timeseries' ? 'ts_kv_latest' : 'attribute_kv';
  const rows = await db.selectFrom(table).select('key').distinct().where('device_id', 'in', sample).orderBy('key').execute();
  return rows.map((r) => r.key);
}

