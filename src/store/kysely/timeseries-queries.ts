/**
 * Reads of time series: history from ts_kv (after merging SQLite's staged rows) and, on SQLite, ts_kv_chunk's points
 * (ts-kv-chunk-series.ts); latest values from ts_kv_latest.
 */
import type { Kysely, Transaction } from 'kysely';
import type { KvValue } from '../../core/model.ts';
import type { Database } from '../schema.ts';
import type { TimeseriesQuery } from '../../core/ports/store.ts';
import type { SqliteStaging } from './sqlite-staging.ts';
import { fromColumns } from './values.ts';
import { seriesWithChunks, type SeriesRow } from './ts-kv-chunk-series.ts';
import { keysWithChunks, rowsOf } from './ts-kv-chunk-rows.ts';

type Db = Kysely<Database> | Transaction<Database>;

const ROWS = 'select ts, bool_v, long_v, dbl_v, str_v, json_v from ts_kv where device_id = ? and key = ? and ts >= ? and ts <= ? order by ts';
const ROWS_ASC = `${ROWS} asc limit ?`;
const ROWS_DESC = `${ROWS} desc limit ?`;

/** History of each key in [startTs, endTs], ordered and limited; on SQLite (`sqlite`) ts_kv_chunk's points too. */
export async function getTimeseries(db: Db, query: TimeseriesQuery, staging?: SqliteStaging, sqlite = false): Promise<Map<string, { ts: number; value: KvValue }[]>> {
  const result = new Map<string, { ts: number; value: KvValue }[]>();
  await staging?.flush(db);
  const rowsOfKeys: SeriesRow[][] = [];
  for (const key of query.keys) {
    if (sqlite) {
      // SQLite: the same query as SQL text, without building it each time (~15 µs a key of the builder's).
      rowsOfKeys.push(await rowsOf<SeriesRow>(db, query.orderBy === 'ASC' ? ROWS_ASC : ROWS_DESC, [query.deviceId, key, query.startTs, query.endTs, query.limit]));
      continue;
    }
    const rows = await db
      .selectFrom('ts_kv')
      .selectAll()
      .where('device_id', '=', query.deviceId)
      .where('key', '=', key)
      .where('ts', '>=', query.startTs)
      .where('ts', '<=', query.endTs)
      .orderBy('ts', query.orderBy === 'ASC' ? 'asc' : 'desc')
      .limit(query.limit)
      .execute();
    rowsOfKeys.push(rows);
  }
  // Chunks are read after the rows: a chunk written in between (deleting rows of its ts, rule 2) then adds its points,
  // and a row read keeps its value, so each point's value is one it had at some moment of the read.
  // One key: its first chunk page is the probe.
  const withChunks = !sqlite ? undefined : query.keys.length === 1 ? new Set(query.keys) : await keysWithChunks(db, query.deviceId, query.keys, query.startTs, query.endTs);
  for (const [i, key] of query.keys.entries()) {
    const rows = rowsOfKeys[i];
    const points = withChunks?.has(key) ? await seriesWithChunks(db, query, key, rows) : rows.map((r) => ({ ts: Number(r.ts), value: fromColumns(r) }));
    if (points.length > 0) result.set(key, points);
  }
  return result;
}

/** Latest value per key; `keys` limits the keys (an empty list: none). */
export async function getLatestTimeseries(db: Db, deviceId: string, keys?: string[]): Promise<Map<string, { ts: number; value: KvValue }>> {
  let q = db.selectFrom('ts_kv_latest').selectAll().where('device_id', '=', deviceId);
  if (keys) {
    if (keys.length === 0) return new Map();
    q = q.where('key', 'in', keys);
  }
  const rows = await q.orderBy('key').execute();
  return new Map(rows.map((r) => [r.key, { ts: Number(r.ts), value: fromColumns(r) }]));
}

export async function listTimeseriesKeys(db: Db, deviceId: string): Promise<string[]> {
  const rows = await db.selectFrom('ts_kv_latest').select('key').where('device_id', '=', deviceId).orderBy('key').execute();
  return rows.map((r) => r.key);
}
