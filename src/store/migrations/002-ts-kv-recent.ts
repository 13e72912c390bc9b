import type { Kysely } from 'kysely';
import type { Dialect } from '../dialect.ts';

/**
 * `ts_kv_recent`: SQLite's staging table for telemetry (kysely/sqlite-staging.ts). Rows are appended in arrival order
 * (`seq`, the rowid) and merged into `ts_kv` in large batches. SQLite only: on PostgreSQL the migration is recorded
 * and does nothing. PostgreSQL's WAL logs row changes (a whole page only on its first change after a checkpoint),
 * not every page each commit dirties, so staging would add work there without saving any.
 */
export async function up(db: Kysely<any>, dialect: Dialect): Promise<void> {
  if (dialect.name !== 'sqlite') return;
  await db.schema
    .createTable('ts_kv_recent')
    .addColumn('seq', 'integer', (c) => c.primaryKey()) // the rowid: appends touch only the table's last page
    .addColumn('device_id', 'text', (c) => c.notNull())
    .addColumn('key', 'text', (c) => c.notNull())
    .addColumn('ts', 'integer', (c) => c.notNull())
    .addColumn('bool_v', 'integer')
    .addColumn('long_v', 'integer')
    .addColumn('dbl_v', 'double precision')
    .addColumn('str_v', 'text')
    .addColumn('json_v', 'text')
    .execute();
}
