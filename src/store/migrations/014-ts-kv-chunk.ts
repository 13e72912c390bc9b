import type { Kysely } from 'kysely';
import type { Dialect } from '../dialect.ts';

/**
 * `ts_kv_chunk` (issue 17, MQTT telemetry with a distinct ts): SQLite keeps a dense batch's numeric series as one row
 * per series and commit, its points packed in `points` (kysely/ts-kv-chunk-format.ts), instead of a ts_kv row per
 * point. `seq` (the rowid) is write order: of two chunks holding one (device, key, ts), the later one's point is the
 * value. `last_ts - first_ts` is at most MAX_CHUNK_SPAN_MS, so the index on (device_id, key, last_ts) finds the chunks
 * overlapping a time range in a bounded scan. SQLite only: on PostgreSQL the migration is recorded and does nothing
 * (its WAL logs row changes, not the pages a commit dirties, so the layout would gain less there).
 */
export async function up(db: Kysely<any>, dialect: Dialect): Promise<void> {
  if (dialect.name !== 'sqlite') return;
  await db.schema
    .createTable('ts_kv_chunk')
    .addColumn('seq', 'integer', (c) => c.primaryKey())
    .addColumn('device_id', 'text', (c) => c.notNull())
    .addColumn('key', 'text', (c) => c.notNull())
    .addColumn('first_ts', 'integer', (c) => c.notNull())
    .addColumn('last_ts', 'integer', (c) => c.notNull())
    .addColumn('type', 'integer', (c) => c.notNull())
    .addColumn('points', 'blob', (c) => c.notNull())
    .execute();
  await db.schema.createIndex('ts_kv_chunk_series').on('ts_kv_chunk').columns(['device_id', 'key', 'last_ts']).execute();
}
