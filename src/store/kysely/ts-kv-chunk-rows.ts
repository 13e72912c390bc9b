/**
 * Reading ts_kv_chunk rows (SQLite only): the bounded index queries that find the chunks overlapping a time range,
 * checked decoding, and the resolution of one series' chunk points by the rules of ts-kv-chunk-format.ts (rule 1: a
 * chunk holds each ts once; rule 3: of chunks sharing a ts, the higher seq holds the value; rule 2, a ts_kv row beats
 * any chunk point of its ts, is applied by the callers, which hold the rows).
 */
import { CompiledQuery, type Kysely, type Transaction } from 'kysely';
import { FleetgateError } from '../../core/errors.ts';
import type { Database } from '../schema.ts';
import { MAX_CHUNK_SPAN_MS, unpackChunk, type ChunkPoints } from './ts-kv-chunk-format.ts';

export type Db = Kysely<Database> | Transaction<Database>;

/** A chunk row as the queries below return it (integers as BigInt: the connections use safe integers). */
export interface ChunkRow {
  seq: bigint | number;
  first_ts: bigint | number;
  last_ts: bigint | number;
  type: bigint | number;
  points: Uint8Array;
}

/** A chunk row decoded and checked. */
export interface DecodedChunk {
  seq: number;
  first: number;
  last: number;
  points: ChunkPoints;
}

/** Runs one SQL text (prepared once, then reused by the connection's statement cache) and returns its rows. */
export async function rowsOf<R>(db: Db, text: string, params: readonly unknown[]): Promise<R[]> {
  return (await db.executeQuery<R>(CompiledQuery.raw(text, params as unknown[]))).rows;
}

/**
 * A chunk's points, checked: a damaged row (a length not a multiple of 16, an unknown type, no points, timestamps not
 * strictly increasing or not matching first_ts/last_ts) is an INTERNAL error that names the row, never a wrong answer.
 */
export function decodeChunk(row: ChunkRow, deviceId: string, key: string): DecodedChunk {
  const seq = Number(row.seq);
  const first = Number(row.first_ts);
  const last = Number(row.last_ts);
  let points: ChunkPoints;
  try {
    points = unpackChunk(row.points, Number(row.type));
  } catch (err) {
    throw damaged(seq, deviceId, key, (err as Error).message, err);
  }
  const ts = points.ts;
  const n = ts.length;
  if (n === 0) throw damaged(seq, deviceId, key, 'it holds no points');
  if (ts[0] !== first || ts[n - 1] !== last) throw damaged(seq, deviceId, key, `its points span ${ts[0]}..${ts[n - 1]}, its columns say ${first}..${last}`);
  for (let i = 1; i < n; i++) if (!(ts[i] > ts[i - 1])) throw damaged(seq, deviceId, key, `its timestamps are not strictly increasing at point ${i}`);
  return { seq, first, last, points };
}

function damaged(seq: number, deviceId: string, key: string, why: string, cause?: unknown): FleetgateError {
  return new FleetgateError('INTERNAL', `Stored telemetry is damaged: ts_kv_chunk row ${seq} (device ${deviceId}, key ${key}): ${why}`, { cause });
}

const PAGE_COLUMNS = 'select seq, first_ts, last_ts, type, points from ts_kv_chunk';
/** Chunks overlapping [lo, hi] (rule 4 bounds last_ts), from a cursor on (last_ts, seq), in index order. */
const PAGE_ASC = `${PAGE_COLUMNS} where device_id = ? and key = ? and last_ts >= ? and last_ts <= ? and first_ts <= ?
  and (last_ts > ? or seq > ?) order by last_ts, seq limit `;
const PAGE_DESC = `${PAGE_COLUMNS} where device_id = ? and key = ? and last_ts >= ? and last_ts <= ? and first_ts <= ?
  and (last_ts < ? or seq < ?) order by last_ts desc, seq desc limit `;

/**
 * A LIMIT as SQL text, rounded up to a power of two (a few statement texts, each prepared once). Not a bound
 * parameter: SQLite (built with STAT4, as better-sqlite3 is) marks a statement expired whenever such a parameter is
 * bound again, and prepares it anew on every run (measured: 13 µs a probe instead of 6.5).
 */
function limitText(size: number): string {
  return String(pageSize(size));
}

/** `size` rounded up to a power of two: what chunkPage asks for. */
export function pageSize(size: number): number {
  let n = 1;
  while (n < size) n *= 2;
  return n;
}

const HAS_CHUNKS = `select value as key from json_each(?) where exists (select 1 from ts_kv_chunk c where c.device_id = ? and c.key = json_each.value
  and c.last_ts >= ? and c.last_ts <= ? and c.first_ts <= ?)`;
const HAS_CHUNKS_BEFORE = HAS_CHUNKS.replace('c.first_ts <= ?', 'c.first_ts < ?');

/**
 * Which of `keys` have a chunk overlapping [lo, hi] (or [lo, hi) with `hiExclusive`): one statement, a bounded index
 * probe per key that stops at the first chunk found, so reads of series without chunks pay one cheap query.
 */
export async function keysWithChunks(db: Db, deviceId: string, keys: readonly string[], lo: number, hi: number, hiExclusive = false): Promise<Set<string>> {
  if (keys.length === 0) return new Set();
  const found = await rowsOf<{ key: string }>(db, hiExclusive ? HAS_CHUNKS_BEFORE : HAS_CHUNKS, [JSON.stringify(keys), deviceId, lo, hi + MAX_CHUNK_SPAN_MS, hi]);
  return new Set(found.map((r) => r.key));
}

/** Where a walk over chunks stopped: the last (last_ts, seq) it read. */
export interface ChunkCursor {
  last: number;
  seq: number;
}

/**
 * The next `size` chunks (a power of two: pageSize) of a series overlapping [lo, hi], walking last_ts upwards (`asc`) or downwards from `after`
 * (exclusive). One bounded range of the index (device_id, key, last_ts): last_ts in [lo, hi + MAX_CHUNK_SPAN_MS].
 */
export function chunkPage(db: Db, deviceId: string, key: string, lo: number, hi: number, asc: boolean, after: ChunkCursor | undefined, size: number): Promise<ChunkRow[]> {
  const from = after?.last ?? (asc ? lo : hi + MAX_CHUNK_SPAN_MS);
  const seq = after?.seq ?? (asc ? -1 : Number.MAX_SAFE_INTEGER);
  const lowest = asc ? from : lo;
  const highest = asc ? hi + MAX_CHUNK_SPAN_MS : from;
  return rowsOf<ChunkRow>(db, (asc ? PAGE_ASC : PAGE_DESC) + limitText(size), [deviceId, key, lowest, highest, hi, from, seq]);
}

/** Every chunk of a series overlapping [lo, hi], decoded, in last_ts order (pages of `pageSize`). */
export async function chunksOverlapping(db: Db, deviceId: string, key: string, lo: number, hi: number, pageSize = 256): Promise<DecodedChunk[]> {
  const out: DecodedChunk[] = [];
  let after: ChunkCursor | undefined;
  for (;;) {
    const page = await chunkPage(db, deviceId, key, lo, hi, true, after, pageSize);
    for (const row of page) out.push(decodeChunk(row, deviceId, key));
    if (page.length < pageSize) return out;
    const tail = out[out.length - 1];
    after = { last: tail.last, seq: tail.seq };
  }
}

/** One series' chunk points in [lo, hi] by rules 1 and 3: ascending ts, each once, with the chunk and index of its value. */
export interface ResolvedPoints {
  ts: number[];
  chunk: DecodedChunk[];
  at: number[];
}

/** First index of sorted `ts` with ts[i] >= value. */
export function lowerBound(ts: ArrayLike<number>, value: number): number {
  let lo = 0;
  let hi = ts.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (ts[mid] < value) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/**
 * The points of `chunks` in [lo, hi], each ts once (the higher seq's point: rule 3). Chunks that do not overlap each
 * other (the usual case) are concatenated in first_ts order without sorting points.
 */
export function resolveChunks(chunks: readonly DecodedChunk[], lo: number, hi: number): ResolvedPoints {
  const sorted = [...chunks].sort((a, b) => a.first - b.first || a.seq - b.seq);
  const out: ResolvedPoints = { ts: [], chunk: [], at: [] };
  let overlap = false;
  for (let i = 1; i < sorted.length && !overlap; i++) overlap = sorted[i].first <= sorted[i - 1].last;
  if (!overlap) {
    for (const c of sorted) {
      const ts = c.points.ts;
      for (let i = lowerBound(ts, lo); i < ts.length && ts[i] <= hi; i++) {
        out.ts.push(ts[i]);
        out.chunk.push(c);
        out.at.push(i);
      }
    }
    return out;
  }
  const entries: { ts: number; c: DecodedChunk; i: number }[] = [];
  for (const c of sorted) {
    const ts = c.points.ts;
    for (let i = lowerBound(ts, lo); i < ts.length && ts[i] <= hi; i++) entries.push({ ts: ts[i], c, i });
  }
  entries.sort((a, b) => a.ts - b.ts || b.c.seq - a.c.seq);
  for (const e of entries) {
    if (out.ts.length > 0 && out.ts[out.ts.length - 1] === e.ts) continue; // a lower seq's point of the same ts
    out.ts.push(e.ts);
    out.chunk.push(e.c);
    out.at.push(e.i);
  }
  return out;
}
