/**
 * Deleting ts_kv_chunk points of a time range (SQLite only), inside the caller's transaction: chunks wholly inside the
 * range go in one statement; a chunk the range cuts is rewritten with the points left (its seq kept, so rule 3 still
 * ranks it; its span only shrinks, so rule 4 holds), or deleted when none are left.
 */
import type { TimeseriesDelete } from '../../core/ports/store.ts';
import { MAX_CHUNK_SPAN_MS, chunkValue, packChunk } from './ts-kv-chunk-format.ts';
import { decodeChunk, rowsOf, type ChunkRow, type Db } from './ts-kv-chunk-rows.ts';

const DELETE_INSIDE = 'delete from ts_kv_chunk where device_id = ? and key = ? and last_ts >= ? and last_ts < ? and first_ts >= ?';
const CUT = `select seq, first_ts, last_ts, type, points from ts_kv_chunk where device_id = ? and key = ? and last_ts >= ? and last_ts < ?
  and first_ts < ?`;
const DELETE_ONE = 'delete from ts_kv_chunk where seq = ?';
const REWRITE = 'update ts_kv_chunk set points = ?, first_ts = ?, last_ts = ? where seq = ?';

/** Deletes the chunk points of `del.keys` in [startTs, endTs). */
export async function deleteChunkPoints(db: Db, del: TimeseriesDelete): Promise<void> {
  const { deviceId, startTs, endTs } = del;
  if (!(startTs < endTs)) return;
  for (const key of del.keys) {
    await rowsOf(db, DELETE_INSIDE, [deviceId, key, startTs, endTs, startTs]);
    // What overlaps the range now is cut by it: it starts before startTs or ends at or after endTs.
    const cut = await rowsOf<ChunkRow>(db, CUT, [deviceId, key, startTs, endTs + MAX_CHUNK_SPAN_MS, endTs]);
    for (const row of cut) {
      const c = decodeChunk(row, deviceId, key);
      const kept: { ts: number; value: ReturnType<typeof chunkValue> }[] = [];
      for (let i = 0; i < c.points.ts.length; i++) {
        const ts = c.points.ts[i];
        if (ts < startTs || ts >= endTs) kept.push({ ts, value: chunkValue(c.points, i) });
      }
      if (kept.length === c.points.ts.length) continue; // the range fell between two of its points
      if (kept.length === 0) {
        await rowsOf(db, DELETE_ONE, [c.seq]);
        continue;
      }
      const bytes = packChunk(kept, c.points.type);
      await rowsOf(db, REWRITE, [Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength), kept[0].ts, kept[kept.length - 1].ts, c.seq]);
    }
  }
}
