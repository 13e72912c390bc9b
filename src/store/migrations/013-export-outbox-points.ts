import type { Kysely } from 'kysely';
import type { Dialect } from '../dialect.ts';

/**
 * Data out, compact (issue 16): a telemetry outbox row may hold its points as numbers (`points`, the bytes of
 * src/core/export/compact-telemetry.ts) instead of its messages' JSON text (`payload` is then empty); delivery writes
 * the JSON. Rows already waiting have no `points` and are delivered from their text as before.
 */
export async function up(db: Kysely<any>, dialect: Dialect): Promise<void> {
  await db.schema.alterTable('export_outbox').addColumn('points', dialect.name === 'postgres' ? 'bytea' : 'blob').execute();
}
