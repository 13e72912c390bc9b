import type { Kysely } from 'kysely';
import type { Dialect } from '../dialect.ts';

/**
 * Data out, leaner (issue 16): an outbox row may hold several messages of one commit, rule and lane (`messages`
 * counts them), so a commit writes one row per lane instead of one per device. Rows already waiting hold one message
 * each, which is what the default says: they are delivered as before, nothing is rewritten. The lane index also
 * carries `messages`, so delivery sizes a batch from the index alone.
 */
export async function up(db: Kysely<any>, _dialect: Dialect): Promise<void> {
  await db.schema.alterTable('export_outbox').addColumn('messages', 'integer', (c) => c.notNull().defaultTo(1)).execute();
  await db.schema.createIndex('export_outbox_lane_messages_idx').on('export_outbox').columns(['rule_id', 'part', 'seq', 'messages']).execute();
  await db.schema.dropIndex('export_outbox_lane_idx').execute();
}
