/**
 * The write side of the chunked telemetry layout on SQLite (ts-kv-chunk-format.ts, migration 014): in a dense batch
 * (sqlite-upsert.ts, the direct path), a series of CHUNK_MIN_POINTS points or more, all of one numeric or boolean
 * type, spanning at most MAX_CHUNK_SPAN_MS, is written as one ts_kv_chunk row instead of a ts_kv row per point; the
 * writer's CPU per stored row drops to about a third (bench/RESULTS.md, issue 17: the chunk layout). Every other
 * series stays in ts_kv.
 *
 * The rules of ts-kv-chunk-format.ts kept here: packChunk keeps each ts once, the last write of it (rule 1); the
 * batch's chunks delete their series' ts_kv rows at their timestamps (rule 2, one statement for all of them, after
 * the staging merge); each chunk gets a higher seq than every chunk before it (rule 3: an integer primary key
 * without AUTOINCREMENT takes max(seq) + 1); a series wider than MAX_CHUNK_SPAN_MS is not chunked (rule 4).
 */
import type { TsPoint } from '../../core/model.ts';
import type { WriterOp } from '../sqlite-writer-thread.ts';
import { chunkRows } from './sqlite-upsert.ts';
import { ChunkType, chunkHasTs, MAX_CHUNK_SPAN_MS, packChunk } from './ts-kv-chunk-format.ts';

/**
 * Points of one series in a dense batch from which the series is written as a chunk. Measured per stored point
 * (bench/store/chunk-writes.ts: statements built, run and committed, folding and packing included; issue 17) at 2, 4,
 * 8, 32 and 64 points a series: ts_kv rows 5.0-5.4, 3.0-3.1, 2.0-2.1, 1.2, 0.9-1.0 µs; chunks 3.1-3.3, 1.3, 0.6, 0.2,
 * 0.16-0.19. Chunks pay at any size; 8 keeps a chunk at 128 bytes of points or more, so readers, which decode the
 * chunks overlapping a range one by one, meet no flood of tiny ones.
 */
export const CHUNK_MIN_POINTS = 8;

/** The SQL function rule 2's delete calls: `chunk_has_ts(points, ts)`, 1 if the chunk holds `ts`. */
export const CHUNK_HAS_TS = 'chunk_has_ts';

/** The part of a better-sqlite3 Database that registers functions. */
interface FunctionHost {
  function(name: string, options: { deterministic: boolean; varargs: boolean }, fn: (...args: any[]) => unknown): unknown;
}

/**
 * Registers `chunk_has_ts` on a connection that writes telemetry (sqlite.ts configure; the writer thread registers
 * the same function from its source, sqlite-writer-worker.ts).
 */
export function registerChunkFunctions(database: FunctionHost): void {
  database.function(CHUNK_HAS_TS, { deterministic: true, varargs: false }, chunkHasTs);
}

const COLUMNS = ['device_id', 'key', 'first_ts', 'last_ts', 'type', 'points'];
const WIDTH = COLUMNS.length;
const insertTexts = new Map<number, string>();

function insertText(rows: number): string {
  let text = insertTexts.get(rows);
  if (text === undefined) {
    const tuple = `(${COLUMNS.map(() => '?').join(', ')})`;
    text = `insert into "ts_kv_chunk" (${COLUMNS.map((c) => `"${c}"`).join(', ')}) values ${Array(rows).fill(tuple).join(', ')}`;
    insertTexts.set(rows, text);
  }
  return text;
}

/**
 * Rule 2 for the last `?` chunks inserted (consecutive seqs, this transaction's): their series' ts_kv rows at a ts a
 * chunk holds. One statement for the batch: per chunk one seek of ts_kv's primary key over [first_ts, last_ts]
 * (normally empty: chunk_has_ts is called only for a row found there).
 */
const DELETE_SHADOWED_ROWS =
  'delete from "ts_kv" where ("device_id", "key", "ts") in (select t."device_id", t."key", t."ts" from "ts_kv_chunk" c join "ts_kv" t' +
  ' on t."device_id" = c."device_id" and t."key" = c."key" and t."ts" >= c."first_ts" and t."ts" <= c."last_ts"' +
  ` where c."seq" > (select max("seq") from "ts_kv_chunk") - ? and ${CHUNK_HAS_TS}(c."points", t."ts"))`;

const INT64_MIN = -(2n ** 63n);
const INT64_MAX = 2n ** 63n - 1n;

/**
 * The chunk type of rows[from, to) (one series), or undefined when they are not one chunkable type or span more than
 * MAX_CHUNK_SPAN_MS. A chunk stores what the row layout would read back: a LONG given as a number must be a safe
 * integer (a chunk holds int64; a number such as 1e300 would not survive), as a bigint within int64; a DOUBLE NaN
 * (SQLite stores it as NULL) keeps its series in rows. (A DOUBLE -0, which SQLite reads back as 0, packChunk stores
 * as 0.)
 */
function seriesChunk(rows: readonly TsPoint[], from: number, to: number): { type: ChunkType; firstTs: number; lastTs: number } | undefined {
  const kind = rows[from].value.type;
  const type = kind === 'DOUBLE' ? ChunkType.DOUBLE : kind === 'LONG' ? ChunkType.LONG : kind === 'BOOLEAN' ? ChunkType.BOOLEAN : undefined;
  if (type === undefined) return undefined;
  let firstTs = rows[from].ts;
  let lastTs = firstTs;
  for (let i = from; i < to; i++) {
    const p = rows[i];
    if (p.value.type !== kind) return undefined;
    if (type === ChunkType.LONG) {
      const v = p.value.value as number | bigint;
      if (typeof v === 'number' ? !Number.isSafeInteger(v) : v < INT64_MIN || v > INT64_MAX) return undefined;
    } else if (type === ChunkType.DOUBLE) {
      const v = p.value.value as number;
      if (v !== v) return undefined;
    }
    if (p.ts < firstTs) firstTs = p.ts;
    else if (p.ts > lastTs) lastTs = p.ts;
  }
  return lastTs - firstTs <= MAX_CHUNK_SPAN_MS ? { type, firstTs, lastTs } : undefined;
}


/**
 * Adds to `ops` the statements writing the chunked series of `rows` (grouped by series, as foldPoints gives them)
 * and rule 2's delete; returns the rows of the other series, for ts_kv. Run after the staging merge, in the same
 * transaction.
 */
export function chunkOps(ops: WriterOp[], rows: readonly TsPoint[], minPoints: number): readonly TsPoint[] {
  if (rows.length < minPoints) return rows;
  const chunks: unknown[] = [];
  // The rows of series not chunked, once a series was (until then they are rows[0, from): no copy).
  let rest: TsPoint[] | undefined;
  for (let from = 0, to = 0; from < rows.length; from = to) {
    const first = rows[from];
    to = from + 1;
    while (to < rows.length && rows[to].key === first.key && rows[to].deviceId === first.deviceId) to++;
    const chunk = to - from >= minPoints ? seriesChunk(rows, from, to) : undefined;
    if (chunk === undefined) {
      if (rest) for (let i = from; i < to; i++) rest.push(rows[i]);
      continue;
    }
    rest ??= rows.slice(0, from);
    chunks.push(first.deviceId, first.key, chunk.firstTs, chunk.lastTs, chunk.type, packChunk(rows, chunk.type, from, to));
  }
  const count = chunks.length / WIDTH;
  if (count === 0) return rows;
  for (let first = 0, n = 0; first < count; first += n) {
    n = chunkRows(count - first);
    const params = n === count ? chunks : chunks.slice(first * WIDTH, (first + n) * WIDTH);
    // The rows its points would be, 4 parameters each (the ts_kv upsert's): where the dialect runs the commit.
    let points = 0;
    for (let at = WIDTH - 1; at < params.length; at += WIDTH) points += (params[at] as Uint8Array).byteLength / 16;
    ops.push({ sql: insertText(n), params, weight: params.length + 4 * points });
  }
  ops.push({ sql: DELETE_SHADOWED_ROWS, params: [count] });
  return rest!;
}
