import { sql, type Kysely } from 'kysely';
import type { Dialect } from '../dialect.ts';

/**
 * ThingsBoard API parity (issue 11):
 * - `device_activity`: when a device last connected, disconnected and was last seen, written by every node, so
 *   `active` (GET /api/tenant/deviceInfos) is the same whichever node answers.
 * - one default profile per tenant, decided by a partial unique index (DESIGN 7).
 * - `api_key`: ThingsBoard 4.3 API keys, stored as SHA-256 hashes only.
 * - `users.tokens_valid_after`: JWTs issued before it are outdated (password change, TB's token outdating).
 * - audit indexes for the per-entity and per-user audit routes.
 */
export async function up(db: Kysely<any>, dialect: Dialect): Promise<void> {
  const bigint = dialect.bigintType;
  await dialect.compactKeyTable(db.schema
    .createTable('device_activity')
    .addColumn('device_id', 'text', (c) => c.primaryKey())
    .addColumn('last_connect_time', bigint)
    .addColumn('last_disconnect_time', bigint)
    .addColumn('last_activity_time', bigint))
    .execute();
  await db.schema.createIndex('device_activity_time_idx').on('device_activity').column('last_activity_time').execute();

  // Older databases may hold two defaults (a race before this index): keep the oldest.
  await sql`update device_profile set is_default = 0 where is_default = 1 and id not in (
    select id from (select id, row_number() over (partition by tenant_id order by created_time, id) as n
      from device_profile where is_default = 1) ranked where n = 1)`.execute(db);
  await sql`create unique index device_profile_default_unq on device_profile (tenant_id) where is_default = 1`.execute(db);

  await db.schema
    .createTable('api_key')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('tenant_id', 'text', (c) => c.notNull())
    .addColumn('user_id', 'text', (c) => c.notNull())
    .addColumn('value_hash', 'text', (c) => c.notNull())
    .addColumn('description', 'text', (c) => c.notNull())
    .addColumn('enabled', 'integer', (c) => c.notNull())
    .addColumn('expiration_time', bigint, (c) => c.notNull())
    .addColumn('created_time', bigint, (c) => c.notNull())
    .execute();
  await db.schema.createIndex('api_key_value_unq').unique().on('api_key').column('value_hash').execute();
  await db.schema.createIndex('api_key_user_idx').on('api_key').column('user_id').execute();

  await db.schema.alterTable('users').addColumn('tokens_valid_after', bigint, (c) => c.notNull().defaultTo(0)).execute();

  await db.schema.createIndex('audit_log_entity_idx').on('audit_log').columns(['tenant_id', 'entity_id']).execute();
  await db.schema.createIndex('audit_log_user_idx').on('audit_log').columns(['tenant_id', 'user_id']).execute();
}
