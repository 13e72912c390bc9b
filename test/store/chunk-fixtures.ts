/**
 * ts_kv_chunk rows written straight into a SQLite store's file (a second connection), as the chunk writer would leave
 * them: for the read side's tests (ts-kv-chunk-reads.test.ts, ts-kv-chunk-differential.test.ts).
 */
import BetterSqlite3 from 'better-sqlite3';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { KvValue } from '../../src/core/model.ts';
import { openSqliteStore, type SqliteStoreOptions } from '../../src/store/sqlite.ts';
import type { KyselyStore } from '../../src/store/kysely/kysely-store.ts';
import { ChunkType, chunkTypeOf, packChunk } from '../../src/store/kysely/ts-kv-chunk-format.ts';
import { setColumns } from '../../src/store/kysely/values.ts';

export interface ChunkStore {
  store: KyselyStore;
  /** A second connection to the store's file, for writing rows and chunks directly. */
  raw: BetterSqlite3.Database;
  close(): Promise<void>;
}

/** A store on a fresh file, and a raw connection to it. */
export async function openChunkStore(options: Partial<SqliteStoreOptions> = {}): Promise<ChunkStore> {
  const dir = mkdtempSync(join(tmpdir(), 'fleetgate-chunks-'));
  const path = join(dir, 'db.sqlite');
  const store = await openSqliteStore(path, { synchronous: 'normal', ...options });
  const raw = new BetterSqlite3(path);
  raw.pragma('busy_timeout = 5000');
  raw.defaultSafeIntegers(true);
  return {
    store,
    raw,
    async close() {
      raw.close();
      await store.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

export type Point = { ts: number; value: KvValue };

/**
 * Writes a chunk of `points` (one type) as the chunk writer does: packed, the series' ts_kv rows sharing a ts with it
 * deleted (rule 2). `seq` given: that rowid (tests of write order); else the next one.
 */
export function writeChunk(raw: BetterSqlite3.Database, deviceId: string, key: string, points: Point[], seq?: number): number {
  raw.prepare('delete from ts_kv where device_id = ? and key = ? and ts in (select value from json_each(?))').run(deviceId, key, JSON.stringify(points.map((p) => p.ts)));
  return insertChunk(raw, deviceId, key, points, seq);
}

/** Inserts a chunk row of `points` (one type), touching nothing else. */
export function insertChunk(raw: BetterSqlite3.Database, deviceId: string, key: string, points: Point[], seq?: number): number {
  const type = chunkTypeOf(points[0].value.type);
  if (type === undefined) throw new Error(`no chunk holds ${points[0].value.type}`);
  const bytes = packChunk(points, type);
  const ts = new Float64Array(bytes.buffer, 0, bytes.byteLength / 16);
  const result = raw
    .prepare('insert into ts_kv_chunk (seq, device_id, key, first_ts, last_ts, type, points) values (?, ?, ?, ?, ?, ?, ?)')
    .run(seq ?? null, deviceId, key, ts[0], ts[ts.length - 1], type, Buffer.from(bytes));
  return Number(result.lastInsertRowid);
}

/** Upserts ts_kv rows (a later write of a ts wins). */
export function writeRows(raw: BetterSqlite3.Database, deviceId: string, key: string, points: Point[]): void {
  const upsert = raw.prepare('insert or replace into ts_kv (device_id, key, ts, bool_v, long_v, dbl_v, str_v, json_v) values (?, ?, ?, ?, ?, ?, ?, ?)');
  const params: unknown[] = [deviceId, key, 0, null, null, null, null, null];
  raw.transaction(() => {
    for (const p of points) {
      params[2] = p.ts;
      setColumns(params, 3, p.value);
      upsert.run(...params);
    }
  })();
}

/** Sets a latest value (ts_kv_latest). */
export function writeLatest(raw: BetterSqlite3.Database, deviceId: string, key: string, point: Point): void {
  const params: unknown[] = [deviceId, key, point.ts, null, null, null, null, null];
  setColumns(params, 3, point.value);
  raw.prepare('insert or replace into ts_kv_latest (device_id, key, ts, bool_v, long_v, dbl_v, str_v, json_v) values (?, ?, ?, ?, ?, ?, ?, ?)').run(...params);
}

export const dbl = (value: number): KvValue => ({ type: 'DOUBLE', value });
export const lng = (value: number | bigint): KvValue => ({ type: 'LONG', value });
export const bool = (value: boolean): KvValue => ({ type: 'BOOLEAN', value });
export const str = (value: string): KvValue => ({ type: 'STRING', value });
export { ChunkType };
