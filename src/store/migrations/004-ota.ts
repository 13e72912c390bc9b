import type { Kysely } from 'kysely';
import type { Dialect } from '../dialect.ts';

/**
 * Over-the-air update packages (spec thingsboard-ota §1, §3). A package's bytes live in `ota_package_chunk` as
 * 64 KiB rows under a blob id, so a download reads only the rows it needs (one indexed range read) and nothing ever
 * holds a whole package. An upload writes a new blob and attaches it to the package in one short transaction at the
 * end (after the checksum is verified), so a failed or aborted upload leaves nothing visible; `ota_blob` remembers
 * when each blob was started so that blobs of uploads a crash interrupted are swept later.
 * Assignments (profile and device `firmwareId`/`softwareId`) are rows of `ota_assignment`, the paced rollout queue
 * is `ota_rollout_queue` with leases, and `ota_rollout_pacer` holds when the next group may go (one row, shared by
 * every node).
 */
export async function up(db: Kysely<any>, dialect: Dialect): Promise<void> {
  const bigint = dialect.bigintType;
  const bytes = dialect.name === 'postgres' ? 'bytea' : 'blob';
  await db.schema
    .createTable('ota_package')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('tenant_id', 'text', (c) => c.notNull())
    .addColumn('device_profile_id', 'text')
    .addColumn('type', 'text', (c) => c.notNull())
    .addColumn('title', 'text', (c) => c.notNull())
    .addColumn('version', 'text', (c) => c.notNull())
    .addColumn('tag', 'text')
    .addColumn('url', 'text')
    .addColumn('file_name', 'text')
    .addColumn('content_type', 'text')
    .addColumn('checksum_algorithm', 'text')
    .addColumn('checksum', 'text')
    .addColumn('data_size', bigint)
    .addColumn('blob_id', 'text')
    .addColumn('additional_info', 'text')
    .addColumn('created_time', bigint, (c) => c.notNull())
    .execute();
  // TB [SCHEMA]: title and version are unique per tenant, across both types and all profiles.
  await db.schema.createIndex('ota_package_title_version_unq').unique().on('ota_package').columns(['tenant_id', 'title', 'version']).execute();
  await db.schema.createIndex('ota_package_profile_idx').on('ota_package').columns(['device_profile_id', 'type']).execute();

  await db.schema
    .createTable('ota_blob')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('created_time', bigint, (c) => c.notNull())
    .execute();

  // A rowid table on SQLite on purpose: WITHOUT ROWID suits small rows, not 64 KiB ones.
  await db.schema
    .createTable('ota_package_chunk')
    .addColumn('blob_id', 'text', (c) => c.notNull())
    .addColumn('idx', 'integer', (c) => c.notNull())
    .addColumn('data', bytes, (c) => c.notNull())
    .addPrimaryKeyConstraint('ota_package_chunk_pk', ['blob_id', 'idx'])
    .execute();

  await db.schema
    .createTable('ota_assignment')
    .addColumn('target_id', 'text', (c) => c.notNull())
    .addColumn('target_kind', 'text', (c) => c.notNull())
    .addColumn('ota_type', 'text', (c) => c.notNull())
    .addColumn('package_id', 'text', (c) => c.notNull())
    .addPrimaryKeyConstraint('ota_assignment_pk', ['target_id', 'ota_type'])
    .execute();
  await db.schema.createIndex('ota_assignment_package_idx').on('ota_assignment').column('package_id').execute();

  await db.schema
    .createTable('ota_rollout_queue')
    .addColumn('device_id', 'text', (c) => c.notNull())
    .addColumn('ota_type', 'text', (c) => c.notNull())
    .addColumn('package_id', 'text', (c) => c.notNull())
    .addColumn('queued_ts', bigint, (c) => c.notNull())
    .addColumn('lease_until', bigint, (c) => c.notNull())
    .addPrimaryKeyConstraint('ota_rollout_queue_pk', ['device_id', 'ota_type'])
    .execute();
  await db.schema.createIndex('ota_rollout_queue_order_idx').on('ota_rollout_queue').columns(['queued_ts', 'device_id']).execute();

  await db.schema
    .createTable('ota_rollout_pacer')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('next_at', bigint, (c) => c.notNull())
    .execute();
  await db.insertInto('ota_rollout_pacer').values({ id: 'rollout', next_at: 0 }).execute();
}
