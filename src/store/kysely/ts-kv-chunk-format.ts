/**
 * The packed points of a `ts_kv_chunk` row (SQLite, migration 014): a dense batch's numeric series stored as one row
 * per series and commit instead of a ts_kv row per point (issue 17: the writer thread's cost per stored row; measured
 * by bench/store/writer-forms.ts, forms 7 and 16).
 *
 * `points` holds n timestamps (float64, little-endian, strictly increasing) and then n values of 8 bytes each, by the
 * row's `type`: DOUBLE a float64, LONG an int64, BOOLEAN a float64 0 or 1. n is its length / 16.
 *
 * The rules every writer and reader of ts_kv_chunk keeps, so that the store's contract is unchanged (a later write of
 * a (device, key, ts) wins, whichever table holds it):
 * 1. A chunk holds each ts once: the last write of it in its batch.
 * 2. Writing a chunk deletes its series' ts_kv rows that share a ts with it (the SQL function `chunk_has_ts`); so a
 *    ts_kv row that shares a ts with a chunk's point was written after that chunk, and the row is the value.
 * 3. Of two chunks of a series that share a ts, the one with the higher `seq` (later written) holds the value.
 * 4. `last_ts - first_ts <= MAX_CHUNK_SPAN_MS`: the chunks overlapping [start, end] have last_ts in
 *    [start, end + MAX_CHUNK_SPAN_MS], one bounded range of the index (device_id, key, last_ts).
 * Staged rows (ts_kv_recent) need nothing more: a batch that writes chunks merges what is staged first, in its own
 * transaction, and readers merge staged rows before they read, so staged rows obey rule 2 as ts_kv rows do.
 */
import type { KvValue } from '../../core/model.ts';
import { longValue } from './values.ts';

/** What a chunk's values are (the `type` column). */
export const ChunkType = { BOOLEAN: 0, LONG: 1, DOUBLE: 2 } as const;
export type ChunkType = (typeof ChunkType)[keyof typeof ChunkType];

/** The widest span of timestamps one chunk may hold (rule 4); a wider series is written as ts_kv rows. */
export const MAX_CHUNK_SPAN_MS = 3_600_000;

/** A chunk's type for a KvValue type, or undefined for types chunks do not hold (STRING, JSON). */
export function chunkTypeOf(type: KvValue['type']): ChunkType | undefined {
  return type === 'DOUBLE' ? ChunkType.DOUBLE : type === 'LONG' ? ChunkType.LONG : type === 'BOOLEAN' ? ChunkType.BOOLEAN : undefined;
}

/**
 * Packs one series' points (`points[from, to)`, all of `type`, in write order) into a chunk's bytes: sorted by ts, the
 * later of two points of one ts kept (rule 1). The bytes are a Uint8Array of their own (not a slice of a pooled
 * buffer), so sending one to the writer thread copies only them. A range spares the caller a copy of its series.
 */
export function packChunk(points: readonly { ts: number; value: KvValue }[], type: ChunkType, from = 0, to = points.length): Uint8Array {
  let ordered = points;
  for (let i = from + 1; i < to; i++) {
    if (points[i].ts <= points[i - 1].ts) {
      ordered = lastOfEachTs(points.slice(from, to));
      from = 0;
      to = ordered.length;
      break;
    }
  }
  const n = to - from;
  const bytes = new Uint8Array(16 * n);
  const ts = new Float64Array(bytes.buffer, 0, n);
  for (let i = 0; i < n; i++) ts[i] = ordered[from + i].ts;
  if (type === ChunkType.LONG) packLongs(bytes, ordered, from, n);
  else {
    const values = new Float64Array(bytes.buffer, 8 * n, n);
    if (type === ChunkType.BOOLEAN) for (let i = 0; i < n; i++) values[i] = ordered[from + i].value.value ? 1 : 0;
    // `+ 0` turns -0 into 0: SQLite stores a REAL -0.0 as 0, so a ts_kv row reads 0, and a chunk must read the same.
    else for (let i = 0; i < n; i++) values[i] = (ordered[from + i].value.value as number) + 0;
  }
  return bytes;
}

const TWO_32 = 4294967296;
/** Whether typed arrays are little-endian here (the format is; the timestamps are written through a Float64Array too). */
const LITTLE_ENDIAN = new Uint8Array(new Uint32Array([1]).buffer)[0] === 1;

/**
 * Writes n int64 values after n timestamps. A number (a safe integer: sqlite-chunk-writes.ts seriesChunk checks) is written as its two 32-bit
 * halves, without a BigInt (which made a LONG point cost about twice a DOUBLE one); a bigint through BigInt64Array.
 */
function packLongs(bytes: Uint8Array, points: readonly { value: KvValue }[], from: number, n: number): void {
  const words = LITTLE_ENDIAN && bytes.byteOffset === 0 ? new Int32Array(bytes.buffer, 8 * n, 2 * n) : undefined;
  let bigs: BigInt64Array | undefined;
  for (let i = 0; i < n; i++) {
    const v = points[from + i].value.value as number | bigint;
    if (typeof v === 'number' && words !== undefined && Number.isSafeInteger(v)) {
      const high = Math.floor(v / TWO_32);
      words[2 * i] = v - high * TWO_32; // the low half, 0 .. 2^32 - 1, stored as its int32 bits
      words[2 * i + 1] = high;
    } else (bigs ??= new BigInt64Array(bytes.buffer, 8 * n, n))[i] = BigInt(v);
  }
}

/** Sorted by ts (stable), each ts once: its last point in `points`. */
function lastOfEachTs<P extends { ts: number }>(points: readonly P[]): P[] {
  const sorted = points.map((p, i) => ({ p, i })).sort((a, b) => a.p.ts - b.p.ts || a.i - b.i);
  const out: P[] = [];
  for (const { p } of sorted) {
    if (out.length > 0 && out[out.length - 1].ts === p.ts) out[out.length - 1] = p;
    else out.push(p);
  }
  return out;
}

/** A chunk's points unpacked: timestamps and values as parallel arrays (copies, so any byte offset reads). */
export interface ChunkPoints {
  ts: Float64Array;
  /** Float64Array for DOUBLE and BOOLEAN, BigInt64Array for LONG. */
  values: Float64Array | BigInt64Array;
  type: ChunkType;
}

/** Unpacks a chunk's `points` column. */
export function unpackChunk(points: Uint8Array, type: number): ChunkPoints {
  if (points.byteLength % 16 !== 0) throw new Error(`a ts_kv_chunk row's points hold ${points.byteLength} bytes, not a multiple of 16`);
  if (type !== ChunkType.BOOLEAN && type !== ChunkType.LONG && type !== ChunkType.DOUBLE) throw new Error(`unknown ts_kv_chunk type ${type}`);
  const n = points.byteLength / 16;
  const copy = new Uint8Array(points.byteLength);
  copy.set(points);
  return {
    ts: new Float64Array(copy.buffer, 0, n),
    values: type === ChunkType.LONG ? new BigInt64Array(copy.buffer, 8 * n, n) : new Float64Array(copy.buffer, 8 * n, n),
    type,
  };
}

/** Point `i` of unpacked chunk points as a KvValue (a LONG outside the safe integers stays a bigint, as fromColumns gives). */
export function chunkValue(chunk: ChunkPoints, i: number): KvValue {
  const v = chunk.values[i];
  if (chunk.type === ChunkType.LONG) return longValue(v as bigint);
  if (chunk.type === ChunkType.BOOLEAN) return { type: 'BOOLEAN', value: v !== 0 };
  return { type: 'DOUBLE', value: v as number };
}

/**
 * Whether a chunk's `points` hold timestamp `ts` (binary search, no copy): the SQL function `chunk_has_ts(points, ts)`
 * that rule 2's delete uses. Plain JavaScript without imports, so the writer thread's source can embed it
 * (`chunkHasTs.toString()`).
 */
export function chunkHasTs(points: Uint8Array, ts: number | bigint): number {
  const view = new DataView(points.buffer, points.byteOffset, points.byteLength);
  const want = Number(ts);
  let lo = 0;
  let hi = points.byteLength / 16 - 1;
  while (lo <= hi) {
    const mid = (lo + hi) >> 1;
    const at = view.getFloat64(mid * 8, true);
    if (at === want) return 1;
    if (at < want) lo = mid + 1;
    else hi = mid - 1;
  }
  return 0;
}
