import type { Kysely } from 'kysely';

/**
 * Web console (issue 12): the device table pages through 100,000 devices in creation or label order without
 * sorting the whole table (profile name = `type`; name order already has device_name_unq on (tenant_id, name)).
 */
export async function up(db: Kysely<any>): Promise<void> {
  await db.schema.createIndex('device_tenant_created_idx').on('device').columns(['tenant_id', 'created_time', 'id']).execute();
  await db.schema.createIndex('device_tenant_type_idx').on('device').columns(['tenant_id', 'type', 'id']).execute();
  // The profile filter in creation order (device_profile_idx alone makes the database visit every row).
  await db.schema.createIndex('device_tenant_profile_created_idx').on('device').columns(['tenant_id', 'profile_id', 'created_time', 'id']).execute();
  await db.schema.createIndex('device_tenant_label_idx').on('device').columns(['tenant_id', 'label', 'id']).execute();
}
