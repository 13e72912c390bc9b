/**
 * Raw time-series reads over ts_kv rows and ts_kv_chunk points together (SQLite only): the answer is what an all-rows
 * layout would give (ts-kv-chunk-format.ts, rules 1-3), decoding no more chunks than the limit needs.
 */
import type { KvValue } from '../../core/model.ts';
import type { TimeseriesQuery } from '../../core/ports/store.ts';
import type { ValueColumns } from '../schema.ts';
import { MAX_CHUNK_SPAN_MS, chunkValue } from './ts-kv-chunk-format.ts';
import { chunkPage, decodeChunk, lowerBound, pageSize, resolveChunks, rowsOf, type ChunkCursor, type ChunkRow, type Db, type DecodedChunk, type ResolvedPoints } from './ts-kv-chunk-rows.ts';
import { fromColumns } from './values.ts';

/** A ts_kv row as the raw query returns it. */
export type SeriesRow = ValueColumns & { ts: number | bigint };

/** Chunks a first page asks for, at least (a chunk of a dense batch holds tens of points). */
const FIRST_PAGE = 2;
const MAX_PAGE = 1024;

/** One step of a merge: a ts and whether its value is the row's (`row` >= 0) or a chunk point's (index into `chunks`). */
interface MergeStep {
  ts: number;
  row: number;
  chunk: number;
}

/** Chunks to ask for next: enough for `missing` points at `perChunk` points a chunk, and two more. */
function nextPage(missing: number, perChunk: number): number {
  return pageSize(Math.min(MAX_PAGE, Math.max(FIRST_PAGE, Math.ceil(missing / perChunk) + 2)));
}

/**
 * The first `limit` points in query order of `rowsAsc` (ascending ts) and `chunks`; a row beats a chunk point of the
 * same ts (rule 2).
 */
function merge(rowsAsc: readonly number[], chunks: ResolvedPoints, asc: boolean, limit: number): MergeStep[] {
  const out: MergeStep[] = [];
  const step = asc ? 1 : -1;
  let r = asc ? 0 : rowsAsc.length - 1;
  let c = asc ? 0 : chunks.ts.length - 1;
  for (;;) {
    const hasRow = r >= 0 && r < rowsAsc.length;
    const hasChunk = c >= 0 && c < chunks.ts.length;
    if (out.length >= limit || !(hasRow || hasChunk)) break;
    const rt = hasRow ? rowsAsc[r] : NaN;
    const ct = hasChunk ? chunks.ts[c] : NaN;
    if (!hasChunk || (hasRow && (asc ? rt <= ct : rt >= ct))) {
      if (rt === ct) c += step; // the row was written after the chunk
      out.push({ ts: rt, row: r, chunk: -1 });
      r += step;
    } else {
      out.push({ ts: ct, row: -1, chunk: c });
      c += step;
    }
  }
  return out;
}

/**
 * One key's answer to `query` from its ts_kv `rows` (the raw query's, in query order, at most `limit`) and the chunks
 * overlapping the range. Rows come first: if they fill the limit, chunk points beyond the last row's ts cannot be in
 * the answer, so the range narrows to it. Chunks are then read in pages walking last_ts in query order; after each
 * page the answer is settled once `limit` points are known and no later chunk can reach them (ascending: the limit-th
 * ts < last_ts - MAX_CHUNK_SPAN_MS of the last chunk read, as later chunks start no earlier; descending: > its last_ts).
 */
export async function seriesWithChunks(db: Db, query: TimeseriesQuery, key: string, rows: readonly SeriesRow[]): Promise<{ ts: number; value: KvValue }[]> {
  const asc = query.orderBy === 'ASC';
  const limit = query.limit < 0 ? Infinity : query.limit; // as SQLite reads a negative LIMIT
  const ascending = asc ? rows : [...rows].reverse();
  const rowsAsc = ascending.map((r) => Number(r.ts));
  let lo = query.startTs;
  let hi = query.endTs;
  if (rows.length >= limit && limit > 0) {
    if (asc) hi = Number(rows[limit - 1].ts);
    else lo = Number(rows[limit - 1].ts);
  }
  const chunks: DecodedChunk[] = [];
  let after: ChunkCursor | undefined;
  let size = pageSize(Math.min(16, Math.max(FIRST_PAGE, Math.ceil(limit / 64) + 1)));
  let points = 0;
  let settled: { resolved: ResolvedPoints; known: MergeStep[] } | undefined;
  while (limit > 0) {
    const page: ChunkRow[] = await chunkPage(db, query.deviceId, key, lo, hi, asc, after, size);
    for (const row of page) {
      const c = decodeChunk(row, query.deviceId, key);
      after = { last: c.last, seq: c.seq };
      if (c.last >= lo && c.first <= hi) {
        chunks.push(c);
        points += c.points.ts.length;
      }
    }
    if (page.length < size) break; // no more chunks in the range
    const perChunk = chunks.length > 0 ? points / chunks.length : 64;
    if (rows.length + points < limit) {
      size = nextPage(limit - rows.length - points, perChunk); // the limit is out of reach yet: read on, resolve once
      continue;
    }
    const resolved = resolveChunks(chunks, lo, hi);
    const known = merge(rowsAsc, resolved, asc, limit);
    if (known.length >= limit) {
      const bound = known[limit - 1].ts;
      if (asc) hi = bound;
      else lo = bound;
      // Descending, a later chunk ending at the last one's last_ts has a lower seq and loses that ts to it.
      if (asc ? bound < after!.last - MAX_CHUNK_SPAN_MS : bound >= after!.last) {
        settled = { resolved, known };
        break;
      }
      size = 16; // the answer's points are known; later chunks can only overlap its tail
    } else {
      size = nextPage(limit - known.length, perChunk);
    }
  }
  if (chunks.length === 0) return rows.slice(0, limit).map((r) => ({ ts: Number(r.ts), value: fromColumns(r) }));
  const resolved = settled?.resolved ?? resolveChunks(chunks, lo, hi);
  return (settled?.known ?? merge(rowsAsc, resolved, asc, limit)).map((p) =>
    p.row >= 0 ? { ts: p.ts, value: fromColumns(ascending[p.row]) } : { ts: p.ts, value: chunkValue(resolved.chunk[p.chunk].points, resolved.at[p.chunk]) },
  );
}

const NEWEST_ROW = 'select ts, bool_v, long_v, dbl_v, str_v, json_v from ts_kv where device_id = ? and key = ? and ts < ? order by ts desc limit 1';
const CHUNKS_BEFORE = `select seq, first_ts, last_ts, type, points from ts_kv_chunk where device_id = ? and key = ? and last_ts > ? and last_ts <= ?
  and first_ts < ? and (last_ts < ? or seq < ?) order by last_ts desc, seq desc limit 16`;

/**
 * The newest point of a series before `beforeTs` over rows and chunks (rules 2-3): the newest row, then the chunks
 * that may hold a later point (last_ts above the row's ts, first_ts below `beforeTs`), walking last_ts downwards until
 * no chunk can beat the best found.
 */
export async function newestBefore(db: Db, deviceId: string, key: string, beforeTs: number): Promise<{ ts: number; value: KvValue } | undefined> {
  const [row] = await rowsOf<SeriesRow>(db, NEWEST_ROW, [deviceId, key, beforeTs]);
  let best: { ts: number; value: KvValue; seq: number } | undefined = row && { ts: Number(row.ts), value: fromColumns(row), seq: Infinity };
  let cursor: ChunkCursor = { last: beforeTs + MAX_CHUNK_SPAN_MS, seq: Number.MAX_SAFE_INTEGER };
  const floor = best ? best.ts : -Number.MAX_VALUE;
  const size = 16; // the statement's limit
  for (;;) {
    const page = await rowsOf<ChunkRow>(db, CHUNKS_BEFORE, [deviceId, key, floor, cursor.last, beforeTs, cursor.last, cursor.seq]);
    for (const r of page) {
      const c = decodeChunk(r, deviceId, key);
      cursor = { last: c.last, seq: c.seq };
      if (best && c.last < best.ts) return best; // this chunk and every later one end before the best point
      const i = lowerBound(c.points.ts, beforeTs) - 1;
      if (i < 0) continue;
      const ts = c.points.ts[i];
      if (!best || ts > best.ts || (ts === best.ts && c.seq > best.seq)) best = { ts, value: chunkValue(c.points, i), seq: c.seq };
    }
    if (page.length < size) return best;
  }
}
