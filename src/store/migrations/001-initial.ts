import { sql, type Kysely } from 'kysely';
import type { Dialect } from '../dialect.ts';

/** The initial schema. Unique indexes decide races (DESIGN 7): device name per tenant, credentials id, provision key. */
export async function up(db: Kysely<any>, dialect: Dialect): Promise<void> {
  const bigint = dialect.bigintType;
  await db.schema
    .createTable('users')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('tenant_id', 'text', (c) => c.notNull())
    .addColumn('email', 'text', (c) => c.notNull().unique())
    .addColumn('authority', 'text', (c) => c.notNull())
    .addColumn('password_hash', 'text', (c) => c.notNull())
    .addColumn('created_time', bigint, (c) => c.notNull())
    .execute();

  await db.schema
    .createTable('device_profile')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('tenant_id', 'text', (c) => c.notNull())
    .addColumn('name', 'text', (c) => c.notNull())
    .addColumn('type', 'text', (c) => c.notNull())
    .addColumn('transport_type', 'text', (c) => c.notNull())
    .addColumn('description', 'text')
    .addColumn('is_default', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('provision_type', 'text', (c) => c.notNull())
    .addColumn('provision_device_key', 'text')
    .addColumn('profile_data', 'text', (c) => c.notNull())
    .addColumn('created_time', bigint, (c) => c.notNull())
    .execute();
  // spec §3.2: provision keys are unique across all tenants; NULL allowed repeatedly.
  await db.schema.createIndex('device_profile_provision_key_unq').unique().on('device_profile').column('provision_device_key').execute();
  await db.schema.createIndex('device_profile_name_unq').unique().on('device_profile').columns(['tenant_id', 'name']).execute();

  await dialect.compactKeyTable(db.schema
    .createTable('device')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('tenant_id', 'text', (c) => c.notNull())
    .addColumn('profile_id', 'text', (c) => c.notNull().references('device_profile.id'))
    .addColumn('name', 'text', (c) => c.notNull())
    .addColumn('type', 'text', (c) => c.notNull())
    .addColumn('label', 'text')
    .addColumn('additional_info', 'text')
    .addColumn('created_by_provisioning', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('created_time', bigint, (c) => c.notNull()))
    .execute();
  // spec §4.1: concurrent creates of one name -> one SUCCESS, decided by this index.
  await db.schema.createIndex('device_name_unq').unique().on('device').columns(['tenant_id', 'name']).execute();
  await db.schema.createIndex('device_profile_idx').on('device').column('profile_id').execute();

  await dialect.compactKeyTable(db.schema
    .createTable('device_credentials')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('device_id', 'text', (c) => c.notNull().unique().references('device.id').onDelete('cascade'))
    .addColumn('credentials_type', 'text', (c) => c.notNull())
    .addColumn('credentials_id', 'text', (c) => c.notNull())
    .addColumn('credentials_value', 'text')
    .addColumn('created_time', bigint, (c) => c.notNull())
    .addColumn('first_used_time', bigint))
    .execute();
  await db.schema.createIndex('device_credentials_id_unq').unique().on('device_credentials').column('credentials_id').execute();

  const valueColumns = (t: any) =>
    t
      .addColumn('bool_v', 'integer')
      .addColumn('long_v', bigint)
      .addColumn('dbl_v', 'double precision')
      .addColumn('str_v', 'text')
      .addColumn('json_v', 'text');

  await dialect.compactKeyTable(valueColumns(
    db.schema
      .createTable('attribute_kv')
      .addColumn('device_id', 'text', (c) => c.notNull().references('device.id').onDelete('cascade'))
      .addColumn('scope', 'text', (c) => c.notNull())
      .addColumn('key', 'text', (c) => c.notNull()),
  )
    .addColumn('last_update_ts', bigint, (c: any) => c.notNull())
    .addPrimaryKeyConstraint('attribute_kv_pk', ['device_id', 'scope', 'key']),
  ).execute();

  for (const table of ['ts_kv', 'ts_kv_latest']) {
    await dialect.compactKeyTable(valueColumns(
      db.schema
        .createTable(table)
        .addColumn('device_id', 'text', (c) => c.notNull())
        .addColumn('key', 'text', (c) => c.notNull())
        .addColumn('ts', bigint, (c) => c.notNull()),
    )
      .addPrimaryKeyConstraint(`${table}_pk`, table === 'ts_kv' ? ['device_id', 'key', 'ts'] : ['device_id', 'key']),
    ).execute();
  }

  await db.schema
    .createTable('rpc')
    .addColumn('request_id', dialect.serialType, (c) => dialect.serialColumn(c))
    .addColumn('id', 'text', (c) => c.notNull().unique())
    .addColumn('device_id', 'text', (c) => c.notNull())
    .addColumn('tenant_id', 'text', (c) => c.notNull())
    .addColumn('method', 'text', (c) => c.notNull())
    .addColumn('params', 'text', (c) => c.notNull())
    .addColumn('oneway', 'integer', (c) => c.notNull())
    .addColumn('expiration_time', bigint, (c) => c.notNull())
    .addColumn('status', 'text', (c) => c.notNull())
    .addColumn('response', 'text')
    .addColumn('created_time', bigint, (c) => c.notNull())
    .execute();
  await db.schema.createIndex('rpc_device_status_idx').on('rpc').columns(['device_id', 'status']).execute();

  await db.schema
    .createTable('audit_log')
    .addColumn('seq', dialect.serialType, (c) => dialect.serialColumn(c))
    .addColumn('id', 'text', (c) => c.notNull())
    .addColumn('tenant_id', 'text', (c) => c.notNull())
    .addColumn('created_time', bigint, (c) => c.notNull())
    .addColumn('entity_type', 'text', (c) => c.notNull())
    .addColumn('entity_id', 'text')
    .addColumn('entity_name', 'text')
    .addColumn('user_id', 'text')
    .addColumn('user_name', 'text')
    .addColumn('action_type', 'text', (c) => c.notNull())
    .addColumn('action_data', 'text', (c) => c.notNull())
    .addColumn('action_status', 'text', (c) => c.notNull())
    .addColumn('action_failure_details', 'text')
    .addColumn('source', 'text')
    .execute();
  await db.schema.createIndex('audit_log_time_idx').on('audit_log').columns(['tenant_id', 'created_time']).execute();

  await db.schema
    .createTable('settings')
    .addColumn('key', 'text', (c) => c.primaryKey())
    .addColumn('value', 'text', (c) => c.notNull())
    .execute();
  void sql;
}
