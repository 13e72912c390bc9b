/**
 * Bulk device creation for imports: many devices with their credentials in a few multi-row statements instead of a
 * savepoint and two inserts per device. The unique indexes still decide every duplicate (DESIGN 7): devices go in
 * with ON CONFLICT (tenant_id, name) DO NOTHING, their credentials with ON CONFLICT (credentials_id) DO NOTHING, and a
 * device whose credentials did not go in is deleted again in the same transaction, so none is left without them.
 */
import type { Kysely, Transaction } from 'kysely';
import type { Device, DeviceCredentials } from '../../core/model.ts';
import type { Database } from '../schema.ts';
import type { DeviceInsertOutcome } from '../store.ts';
import { credentialsToRow, deviceToRow } from './rows.ts';
import { executeInsert } from './compiled-inserts.ts';

type Db = Kysely<Database> | Transaction<Database>;

/** Rows per statement: 9 parameters a device, far below SQLite's 32,766 and PostgreSQL's 65,535. */
const ROWS_PER_STATEMENT = 500;

/** Must run inside a transaction (the store's `insertDevicesIfAbsent` opens one). */
export async function insertDevicesIfAbsent(db: Db, pairs: { device: Device; credentials: DeviceCredentials }[]): Promise<DeviceInsertOutcome[]> {
  const outcomes: DeviceInsertOutcome[] = new Array(pairs.length);
  for (let start = 0; start < pairs.length; start += ROWS_PER_STATEMENT) {
    const part = pairs.slice(start, start + ROWS_PER_STATEMENT);
    const deviceRows = part.map((p) => deviceToRow(p.device));
    const inserted = await executeInsert(db, 'device-if-absent', Object.keys(deviceRows[0]) as (keyof (typeof deviceRows)[number])[], deviceRows, () =>
      db
        .insertInto('device')
        .values(deviceRows)
        .onConflict((oc) => oc.columns(['tenant_id', 'name']).doNothing())
        .returning('id'),
    );
    const created = new Set(inserted.map((r) => r.id));
    const withDevice = part.filter((p) => created.has(p.device.id));
    const credentialed = new Set<string>();
    if (withDevice.length > 0) {
      const credentialsRows = withDevice.map((p) => credentialsToRow(p.credentials));
      const rows = await executeInsert(db, 'credentials-if-absent', Object.keys(credentialsRows[0]) as (keyof (typeof credentialsRows)[number])[], credentialsRows, () =>
        db
          .insertInto('device_credentials')
          .values(credentialsRows)
          .onConflict((oc) => oc.column('credentials_id').doNothing())
          .returning('device_id'),
      );
      for (const r of rows) credentialed.add(r.device_id);
    }
    const orphans = withDevice.filter((p) => !credentialed.has(p.device.id)).map((p) => p.device.id);
    if (orphans.length > 0) await db.deleteFrom('device').where('id', 'in', orphans).execute();
    part.forEach((p, i) => {
      outcomes[start + i] = !created.has(p.device.id) ? 'device_name' : credentialed.has(p.device.id) ? 'created' : 'credentials_id';
    });
  }
  return outcomes;
}
