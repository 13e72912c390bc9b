/** Which credentials devices have now, for the catch-up after a bus outage (src/core/bus-catch-up.ts). */
import type { Kysely, Transaction } from 'kysely';
import type { Database } from '../schema.ts';

type Db = Kysely<Database> | Transaction<Database>;

/** The current credentials id of each of `deviceIds` that has credentials (one row per device). */
export async function currentCredentialsIds(db: Db, deviceIds: readonly string[]): Promise<Map<string, string>> {
  if (deviceIds.length === 0) return new Map();
  const rows = await db.selectFrom('device_credentials').select(['device_id', 'credentials_id']).where('device_id', 'in', deviceIds).execute();
  return new Map(rows.map((r) => [r.device_id, r.credentials_id]));
}
