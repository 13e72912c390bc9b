/**
 * Aggregation of ts_kv_chunk points (SQLite only), merged into what the SQL aggregation of ts_kv rows gives
 * (timeseries-aggregation.ts), so the result is an all-rows layout's: a chunk point counts unless a ts_kv row has its
 * ts (rule 2: the row was written later, and SQL counted it) or a higher-seq chunk does (rule 3).
 *
 * Per key: one probe finds whether any chunk overlaps the buckets' range; if so, the chunks' (seq, first_ts, last_ts)
 * are read and sorted by first_ts, grouped where they overlap, and their points read in batches of chunks with the
 * ts_kv rows' timestamps of each batch's span (the rows that shadow points).
 *
 * Sums: LONG exactly (a double while it stays a safe integer, then BigInt), added to SQLite's exact integer sum before
 * the one conversion to a number an all-rows sum also has. DOUBLE with compensated (Neumaier) summation, SQLite's sum
 * of the rows taken as one more term: SQLite also sums doubles compensated (Kahan-Babuska-Neumaier, 3.43+), but in
 * another order, so a float sum may differ in its last bits from an all-rows layout's.
 *
 * The SQL over rows and the chunk reads after it must read one snapshot, or a point whose ts is written again (a row
 * over a chunk point, or a chunk over a row) between them may count twice: the store runs them inside Store.transaction
 * or in a read transaction of its own (sqlite-snapshot-reads.ts).
 */
import type { AggregateBucket, TimeseriesAggregateQuery } from '../../core/ports/store.ts';
import { ChunkType, MAX_CHUNK_SPAN_MS } from './ts-kv-chunk-format.ts';
import { decodeChunk, keysWithChunks, lowerBound, resolveChunks, rowsOf, type ChunkRow, type Db, type DecodedChunk } from './ts-kv-chunk-rows.ts';

/** What one key's chunk points add to one bucket (s, e). */
export interface ChunkSums {
  start: number;
  end: number;
  countBool: number;
  countLong: number;
  countDouble: number;
  /** The LONG sum: a safe-integer part and a BigInt part. */
  longPart: number;
  longBig: bigint;
  /** The DOUBLE sum of the finite values and its Neumaier compensation; whether +Infinity and -Infinity were added. */
  dblSum: number;
  dblComp: number;
  posInf: boolean;
  negInf: boolean;
  minLong: number;
  maxLong: number;
  minDouble: number;
  maxDouble: number;
}

/** Per key, per bucket `${start},${end}`: what chunk points add. */
export type ChunkAggregates = Map<string, Map<string, ChunkSums>>;

const SPAN_PAGE = 4096;
const SPAN_PAGE_TEXT = String(SPAN_PAGE);
const SPANS = `select seq, first_ts, last_ts from ts_kv_chunk where device_id = ? and key = ? and last_ts >= ? and last_ts < ? and first_ts < ?
  and (last_ts > ? or seq > ?) order by last_ts, seq limit ${SPAN_PAGE_TEXT}`;
const POINTS = 'select seq, first_ts, last_ts, type, points from ts_kv_chunk where seq in (select value from json_each(?))';
const ROW_TS = 'select ts from ts_kv where device_id = ? and key = ? and ts >= ? and ts <= ? order by ts';
/** Chunks whose points are read at once. */
const BATCH = 256;
const TWO_32 = 4294967296;
const SAFE = 2 ** 53;

interface Span {
  seq: number;
  first: number;
  last: number;
}

/** The buckets sorted by start, and whether they are disjoint (core's always are; overlapping ones take a slower walk). */
class BucketWalk {
  readonly starts: number[];
  readonly ends: number[];
  readonly disjoint: boolean;
  private at = 0;
  readonly sums: Map<string, ChunkSums>;
  private readonly slots: (ChunkSums | undefined)[];
  constructor(buckets: readonly [number, number][], sums: Map<string, ChunkSums>) {
    const sorted = [...buckets].sort((a, b) => a[0] - b[0] || a[1] - b[1]);
    this.starts = sorted.map((b) => b[0]);
    this.ends = sorted.map((b) => b[1]);
    let disjoint = true;
    for (let i = 1; i < sorted.length; i++) if (this.starts[i] < this.ends[i - 1]) disjoint = false;
    this.disjoint = disjoint;
    this.sums = sums;
    this.slots = new Array(sorted.length);
  }

  private slot(i: number): ChunkSums {
    let s = this.slots[i];
    if (!s) {
      const id = `${this.starts[i]},${this.ends[i]}`;
      s = this.sums.get(id);
      if (!s) {
        s = { start: this.starts[i], end: this.ends[i], countBool: 0, countLong: 0, countDouble: 0, longPart: 0, longBig: 0n, dblSum: 0, dblComp: 0, posInf: false, negInf: false, minLong: Infinity, maxLong: -Infinity, minDouble: Infinity, maxDouble: -Infinity };
        this.sums.set(id, s);
      }
      this.slots[i] = s;
    }
    return s;
  }

  /** Adds point `i` of chunk `c` (at `ts`) to each bucket holding `ts`; points must come in ascending ts. */
  add(ts: number, c: DecodedChunk, i: number, longWords: Int32Array | undefined): void {
    const n = this.starts.length;
    if (this.disjoint) {
      while (this.at < n && this.ends[this.at] <= ts) this.at++;
      if (this.at < n && this.starts[this.at] <= ts) addPoint(this.slot(this.at), c, i, longWords);
      return;
    }
    for (let b = 0; b < n && this.starts[b] <= ts; b++) if (this.ends[b] > ts) addPoint(this.slot(b), c, i, longWords);
  }
}

/** Adds point `i` of chunk `c` to bucket sums `s`. */
function addPoint(s: ChunkSums, c: DecodedChunk, i: number, longWords: Int32Array | undefined): void {
  const type = c.points.type;
  if (type === ChunkType.BOOLEAN) {
    s.countBool++;
  } else if (type === ChunkType.DOUBLE) {
    const x = (c.points.values as Float64Array)[i];
    s.countDouble++;
    if (x === Infinity) s.posInf = true;
    else if (x === -Infinity) s.negInf = true;
    else {
      const t = s.dblSum + x;
      s.dblComp += Math.abs(s.dblSum) >= Math.abs(x) ? s.dblSum - t + x : x - t + s.dblSum;
      s.dblSum = t;
    }
    if (x < s.minDouble) s.minDouble = x;
    if (x > s.maxDouble) s.maxDouble = x;
  } else {
    s.countLong++;
    const high = longWords![2 * i + 1];
    let v: number;
    if (high >= -0x200000 && high < 0x200000) {
      v = high * TWO_32 + (longWords![2 * i] >>> 0); // exact: |v| <= 2^53
      if (Math.abs(s.longPart) + Math.abs(v) > SAFE) {
        s.longBig += BigInt(s.longPart);
        s.longPart = 0;
      }
      s.longPart += v;
    } else {
      const big = (c.points.values as BigInt64Array)[i];
      s.longBig += big;
      v = Number(big); // min and max: rounding is monotonic, so the number of the extreme is the extreme of the numbers
    }
    if (v < s.minLong) s.minLong = v;
    if (v > s.maxLong) s.maxLong = v;
  }
}

async function spansOf(db: Db, deviceId: string, key: string, lo: number, hi: number): Promise<Span[]> {
  const spans: Span[] = [];
  let after = { last: lo, seq: -1 };
  for (;;) {
    const page = await rowsOf<{ seq: bigint; first_ts: bigint; last_ts: bigint }>(db, SPANS, [deviceId, key, after.last, hi + MAX_CHUNK_SPAN_MS, hi, after.last, after.seq]);
    for (const r of page) spans.push({ seq: Number(r.seq), first: Number(r.first_ts), last: Number(r.last_ts) });
    if (page.length < SPAN_PAGE) return spans;
    const tail = spans[spans.length - 1];
    after = { last: tail.last, seq: tail.seq };
  }
}

/** One key's chunk points in [lo, hi) added into `walk`'s bucket sums. */
async function aggregateKey(db: Db, deviceId: string, key: string, lo: number, hi: number, walk: BucketWalk): Promise<void> {
  const spans = (await spansOf(db, deviceId, key, lo, hi)).sort((a, b) => a.first - b.first || a.seq - b.seq);
  // Groups of chunks whose spans overlap (transitively); most chunks are a group of their own.
  const groups: Span[][] = [];
  let reach = -Infinity;
  for (const s of spans) {
    if (s.first <= reach) groups[groups.length - 1].push(s);
    else groups.push([s]);
    reach = Math.max(reach, s.last);
  }
  for (let g = 0; g < groups.length; ) {
    const batch: Span[][] = [];
    let count = 0;
    while (g < groups.length && (count === 0 || count + groups[g].length <= BATCH)) {
      count += groups[g].length;
      batch.push(groups[g++]);
    }
    const seqs = batch.flat().map((s) => s.seq);
    const rows = await rowsOf<ChunkRow>(db, POINTS, [JSON.stringify(seqs)]);
    const bySeq = new Map(rows.map((r) => [Number(r.seq), r]));
    const from = Math.max(lo, batch[0][0].first);
    let to = -Infinity;
    for (const group of batch) for (const s of group) to = Math.max(to, s.last);
    to = Math.min(hi, to);
    const shadow = (await rowsOf<{ ts: bigint }>(db, ROW_TS, [deviceId, key, from, to])).map((r) => Number(r.ts));
    let r = 0;
    for (const group of batch) {
      const chunks: DecodedChunk[] = [];
      for (const s of group) {
        const row = bySeq.get(s.seq);
        if (row) chunks.push(decodeChunk(row, deviceId, key)); // absent: deleted since the spans were read
      }
      if (chunks.length === 1) {
        // A chunk overlapping no other (the usual case): its points as they are.
        const c = chunks[0];
        const ts = c.points.ts;
        const words = longWords(c);
        for (let i = lowerBound(ts, lo); i < ts.length && ts[i] < hi; i++) {
          while (r < shadow.length && shadow[r] < ts[i]) r++;
          if (r < shadow.length && shadow[r] === ts[i]) continue; // a ts_kv row holds this ts (rule 2)
          walk.add(ts[i], c, i, words);
        }
        continue;
      }
      const points = resolveChunks(chunks, lo, hi); // a point at hi is in no bucket
      let current: DecodedChunk | undefined;
      let words: Int32Array | undefined;
      for (let p = 0; p < points.ts.length; p++) {
        const ts = points.ts[p];
        while (r < shadow.length && shadow[r] < ts) r++;
        if (r < shadow.length && shadow[r] === ts) continue; // a ts_kv row holds this ts (rule 2)
        const c = points.chunk[p];
        if (c !== current) {
          current = c;
          words = longWords(c);
        }
        walk.add(ts, c, points.at[p], words);
      }
    }
  }
}

/** A LONG chunk's values as pairs of 32-bit words (little-endian: low, high), read without making BigInts. */
function longWords(c: DecodedChunk): Int32Array | undefined {
  const v = c.points.values;
  return c.points.type === ChunkType.LONG ? new Int32Array(v.buffer, v.byteOffset, 2 * v.length) : undefined;
}

/** What the chunks of `query`'s keys add to its buckets; empty (after one probe) when no chunk overlaps them. */
export async function chunkAggregates(db: Db, query: TimeseriesAggregateQuery): Promise<ChunkAggregates> {
  const out: ChunkAggregates = new Map();
  let lo = Infinity;
  let hi = -Infinity;
  for (const [s, e] of query.buckets) {
    lo = Math.min(lo, s);
    hi = Math.max(hi, e);
  }
  if (!(lo < hi)) return out;
  for (const key of await keysWithChunks(db, query.deviceId, query.keys, lo, hi, true)) {
    if (out.has(key)) continue;
    const sums = new Map<string, ChunkSums>();
    await aggregateKey(db, query.deviceId, key, lo, hi, new BucketWalk(query.buckets, sums));
    if (sums.size > 0) out.set(key, sums);
  }
  return out;
}

const num = (v: unknown): number | null => (v === null || v === undefined ? null : Number(v));

/**
 * A bucket from SQL's columns (`raw`: the aggregation query's row, or undefined for a bucket only chunks fill) and
 * the chunks' sums for it.
 */
export function mergedBucket(start: number, end: number, raw: Record<string, unknown> | undefined, sums: ChunkSums): AggregateBucket {
  const countLong = Number(raw?.cl ?? 0) + sums.countLong;
  const countDouble = Number(raw?.cd ?? 0) + sums.countDouble;
  const longTotal = BigInt((raw?.sl as bigint | number | null) ?? 0) + sums.longBig + BigInt(sums.longPart);
  let dblSum = sums.dblSum;
  let dblComp = sums.dblComp;
  let { posInf, negInf } = sums;
  const rowDoubles = Number(raw?.cd ?? 0);
  const rowsSum = num(raw?.sd);
  // SQLite's sum of rows holding both +Infinity and -Infinity is NaN, which it answers as NULL: so is the whole bucket's.
  let undefinedSum = rowDoubles > 0 && rowsSum === null;
  if (rowsSum === Infinity) posInf = true;
  else if (rowsSum === -Infinity) negInf = true;
  else if (rowsSum !== null) {
    const t = dblSum + rowsSum;
    dblComp += Math.abs(dblSum) >= Math.abs(rowsSum) ? dblSum - t + rowsSum : rowsSum - t + dblSum;
    dblSum = t;
  }
  if (posInf && negInf) undefinedSum = true;
  const sumDouble = countDouble === 0 || undefinedSum ? null : posInf ? Infinity : negInf ? -Infinity : dblSum + dblComp;
  // The chunks' minimum and maximum count only when chunk points of the type were added (an Infinity may be one).
  const least = (a: number | null, b: number, chunkPoints: number) => (chunkPoints === 0 ? a : a === null ? b : Math.min(a, b));
  const most = (a: number | null, b: number, chunkPoints: number) => (chunkPoints === 0 ? a : a === null ? b : Math.max(a, b));
  return {
    start,
    end,
    countBool: Number(raw?.cb ?? 0) + sums.countBool,
    countString: Number(raw?.cs ?? 0),
    countJson: Number(raw?.cj ?? 0),
    countLong,
    countDouble,
    sumLong: countLong > 0 ? Number(longTotal) : null,
    sumDouble,
    minLong: least(num(raw?.minl), sums.minLong, sums.countLong),
    maxLong: most(num(raw?.maxl), sums.maxLong, sums.countLong),
    minDouble: least(num(raw?.mind), sums.minDouble, sums.countDouble),
    maxDouble: most(num(raw?.maxd), sums.maxDouble, sums.countDouble),
    minString: (raw?.mins as string | null | undefined) ?? null,
    maxString: (raw?.maxs as string | null | undefined) ?? null,
  };
}

/** SQLite's order of text (BINARY: the UTF-8 bytes), which the aggregation query's `order by key` follows. */
export function byUtf8(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a), Buffer.from(b));
}
