import type { Kysely } from 'kysely';
import type { Dialect } from '../dialect.ts';

/**
 * `credentials_grace`: credentials a device replaced by rotation, still accepted until `expires_time` (README
 * "Rotation and reprovisioning"), so a device whose rotation answer was lost is not locked out. Looked up by the old
 * credentials id when device_credentials has no such id; expired rows are purged at the next rotation.
 */
export async function up(db: Kysely<any>, dialect: Dialect): Promise<void> {
  await db.schema
    .createTable('credentials_grace')
    .addColumn('credentials_id', 'text', (c) => c.primaryKey())
    .addColumn('device_id', 'text', (c) => c.notNull())
    .addColumn('credentials_type', 'text', (c) => c.notNull())
    .addColumn('credentials_value', 'text')
    .addColumn('expires_time', dialect.bigintType, (c) => c.notNull())
    .execute();
  await db.schema.createIndex('credentials_grace_device_idx').on('credentials_grace').column('device_id').execute();
  await db.schema.createIndex('credentials_grace_expires_idx').on('credentials_grace').column('expires_time').execute();
}
