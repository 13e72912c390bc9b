/** The write probe of /healthz (issue 18): does the database take a commit again? */
import type { Kysely } from 'kysely';
import type { Database } from '../schema.ts';

/**
 * Commits a small write: the `settings` row `health_probe` set to the time, padded to a few pages so the write needs
 * fresh space in the WAL or the table, as telemetry does. Run only while writes are failing, so it costs nothing in
 * normal operation.
 */
export async function probeWrite(db: Kysely<Database>): Promise<void> {
  const value = `${Date.now()} ${'x'.repeat(8192)}`;
  await db.transaction().execute((trx) =>
    trx.insertInto('settings').values({ key: 'health_probe', value }).onConflict((oc) => oc.column('key').doUpdateSet({ value })).execute(),
  );
}
