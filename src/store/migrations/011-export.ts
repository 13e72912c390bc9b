import type { Kysely } from 'kysely';
import type { Dialect } from '../dialect.ts';

/**
 * Data out (issue 16): export rules, the outbox (written in the same transaction as the data it exports), one
 * delivery lane per (rule, partition) holding its lease and retry state, and dead letters.
 */
export async function up(db: Kysely<any>, dialect: Dialect): Promise<void> {
  const big = dialect.bigintType;
  await db.schema
    .createTable('export_rule')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('tenant_id', 'text', (c) => c.notNull())
    .addColumn('name', 'text', (c) => c.notNull())
    .addColumn('profile_id', 'text')
    .addColumn('kinds', 'text', (c) => c.notNull())
    .addColumn('destination', 'text', (c) => c.notNull())
    .addColumn('enabled', 'integer', (c) => c.notNull())
    .addColumn('created_time', big, (c) => c.notNull())
    .addUniqueConstraint('export_rule_name_unq', ['tenant_id', 'name'])
    .execute();
  await db.schema
    .createTable('export_outbox')
    .addColumn('seq', dialect.serialType, (c) => dialect.serialColumn(c))
    .addColumn('rule_id', 'text', (c) => c.notNull())
    .addColumn('part', 'integer', (c) => c.notNull())
    .addColumn('device_id', 'text')
    .addColumn('kind', 'text', (c) => c.notNull())
    .addColumn('created_time', big, (c) => c.notNull())
    .addColumn('payload', 'text', (c) => c.notNull())
    .execute();
  await db.schema.createIndex('export_outbox_lane_idx').on('export_outbox').columns(['rule_id', 'part', 'seq']).execute();
  await db.schema
    .createTable('export_lane')
    .addColumn('rule_id', 'text', (c) => c.notNull())
    .addColumn('part', 'integer', (c) => c.notNull())
    .addColumn('owner', 'text')
    .addColumn('lease_until', big, (c) => c.notNull())
    .addColumn('attempts', 'integer', (c) => c.notNull())
    .addColumn('next_attempt_time', big, (c) => c.notNull())
    .addColumn('last_error', 'text')
    .addPrimaryKeyConstraint('export_lane_pk', ['rule_id', 'part'])
    .execute();
  await db.schema
    .createTable('export_dead_letter')
    .addColumn('seq', big, (c) => c.primaryKey())
    .addColumn('rule_id', 'text', (c) => c.notNull())
    .addColumn('part', 'integer', (c) => c.notNull())
    .addColumn('device_id', 'text')
    .addColumn('kind', 'text', (c) => c.notNull())
    .addColumn('created_time', big, (c) => c.notNull())
    .addColumn('payload', 'text', (c) => c.notNull())
    .addColumn('attempts', 'integer', (c) => c.notNull())
    .addColumn('last_error', 'text')
    .addColumn('dead_time', big, (c) => c.notNull())
    .execute();
  await db.schema.createIndex('export_dead_letter_rule_idx').on('export_dead_letter').columns(['rule_id', 'seq']).execute();
}
