/**
 * Bulk device creation for imports: many devices with their credentials in a few multi-row statements instead of a
 * savepoint and two inserts per device. The unique indexes still decide every duplicate (DESIGN 7): devices go in
 * with ON CONFLICT (tenant_id, name) DO NOTHING, their credentials with ON CONFLICT (credentials_id) DO NOTHING, and a
 * device whose credentials did not go in is deleted again in the same transaction, so none is left without them.
 */
import type { Kysely, Transaction } from 'kysely';
import type { Device, DeviceCredentials } from '../../core/model.ts';
import type { Database } from '../schema.ts';
import type { DeviceInsertOutcome } from '../../core/ports/store.ts';
import { credentialsToRow, deviceToRow } from './rows.ts';
import { executeInsertCount } from './compiled-inserts.ts';

type Db = Kysely<Database> | Transaction<Database>;

/** Rows per statement: 9 parameters a device, far below SQLite's 32,766 and PostgreSQL's 65,535. */
const ROWS_PER_STATEMENT = 500;

/** Must run inside a transaction (the store's `insertDevicesIfAbsent` opens one). */
export async function insertDevicesIfAbsent(db: Db, pairs: { device: Device; credentials: DeviceCredentials }[]): Promise<DeviceInsertOutcome[]> {
  const outcomes: DeviceInsertOutcome[] = new Array(pairs.length);
  for (let start = 0; start < pairs.length; start += ROWS_PER_STATEMENT) {
    const part = pairs.slice(start, start + ROWS_PER_STATEMENT);
    const deviceRows = part.map((p) => deviceToRow(p.device));
    // No RETURNING (cheaper): when every row went in, all were created; otherwise the new ids that exist now were.
    const devicesIn = await executeInsertCount(db, 'device-if-absent', Object.keys(deviceRows[0]) as (keyof (typeof deviceRows)[number])[], deviceRows, () =>
      db
        .insertInto('device')
        .values(deviceRows)
        .onConflict((oc) => oc.columns(['tenant_id', 'name']).doNothing()),
    );
    const created = devicesIn === part.length ? undefined : new Set((await db.selectFrom('device').select('id').where('id', 'in', deviceRows.map((r) => r.id)).execute()).map((r) => r.id));
    const withDevice = created ? part.filter((p) => created.has(p.device.id)) : part;
    let credentialed: Set<string> | undefined = new Set<string>();
    if (withDevice.length > 0) {
      const credentialsRows = withDevice.map((p) => credentialsToRow(p.credentials));
      const credentialsIn = await executeInsertCount(db, 'credentials-if-absent', Object.keys(credentialsRows[0]) as (keyof (typeof credentialsRows)[number])[], credentialsRows, () =>
        db
          .insertInto('device_credentials')
          .values(credentialsRows)
          .onConflict((oc) => oc.column('credentials_id').doNothing()),
      );
      // The rows' ids are new: a row with one of them exists only if this statement put it in.
      credentialed =
        credentialsIn === credentialsRows.length
          ? undefined
          : new Set((await db.selectFrom('device_credentials').select('device_id').where('id', 'in', credentialsRows.map((r) => r.id)).execute()).map((r) => r.device_id));
    }
    const orphans = credentialed ? withDevice.filter((p) => !credentialed.has(p.device.id)).map((p) => p.device.id) : [];
    if (orphans.length > 0) await db.deleteFrom('device').where('id', 'in', orphans).execute();
    part.forEach((p, i) => {
      outcomes[start + i] = created && !created.has(p.device.id) ? 'device_name' : !credentialed || credentialed.has(p.device.id) ? 'created' : 'credentials_id';
    });
  }
  return outcomes;
}
