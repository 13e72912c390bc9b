import type { Kysely } from 'kysely';
import type { Dialect } from '../dialect.ts';

/**
 * Data out (issue 16): the lanes of an export rule become a setting of the rule. `lanes` is how many (1..16); every
 * rule of an earlier release gets 16, what it had, so each of its devices stays in its lane and its waiting messages
 * keep their order across the upgrade. `lane_base` is the first lane's partition number (0 or 16): a change of `lanes`
 * flips it, and the lanes of the previous count are delivered before those of the new one start (export-queries.ts).
 */
export async function up(db: Kysely<any>, _dialect: Dialect): Promise<void> {
  await db.schema.alterTable('export_rule').addColumn('lanes', 'integer', (c) => c.notNull().defaultTo(16)).execute();
  await db.schema.alterTable('export_rule').addColumn('lane_base', 'integer', (c) => c.notNull().defaultTo(0)).execute();
}
