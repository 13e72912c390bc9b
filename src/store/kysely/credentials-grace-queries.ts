/** Credentials still accepted for a while after rotation (migration 006). */
import type { Kysely, Transaction } from 'kysely';
import type { CredentialsGrace } from '../../core/ports/store.ts';
import type { CredentialsType } from '../../core/model.ts';
import type { Database } from '../schema.ts';

type Db = Kysely<Database> | Transaction<Database>;

/** Inserts, or replaces the grace row of the same credentials id. */
export async function insertCredentialsGrace(db: Db, grace: CredentialsGrace): Promise<void> {
  const row = {
    credentials_id: grace.credentialsId,
    device_id: grace.deviceId,
    credentials_type: grace.credentialsType,
    credentials_value: grace.credentialsValue,
    expires_time: grace.expiresTime,
  };
  await db
    .insertInto('credentials_grace')
    .values(row)
    .onConflict((oc) => oc.column('credentials_id').doUpdateSet({ device_id: row.device_id, credentials_type: row.credentials_type, credentials_value: row.credentials_value, expires_time: row.expires_time }))
    .execute();
}

/** The grace row of a credentials id that has not expired at `now`. */
export async function findCredentialsGrace(db: Db, credentialsId: string, now: number): Promise<CredentialsGrace | undefined> {
  const row = await db.selectFrom('credentials_grace').selectAll().where('credentials_id', '=', credentialsId).where('expires_time', '>', now).executeTakeFirst();
  if (!row) return undefined;
  return {
    credentialsId: row.credentials_id,
    deviceId: row.device_id,
    credentialsType: row.credentials_type as CredentialsType,
    credentialsValue: row.credentials_value,
    expiresTime: Number(row.expires_time),
  };
}

/** Removes rows expired at `now`, and (when given) every row of one device; returns the ids of that device's rows. */
export async function deleteCredentialsGrace(db: Db, now: number, deviceId?: string): Promise<string[]> {
  await db.deleteFrom('credentials_grace').where('expires_time', '<=', now).execute();
  if (deviceId === undefined) return [];
  const rows = await db.selectFrom('credentials_grace').select('credentials_id').where('device_id', '=', deviceId).execute();
  if (rows.length > 0) await db.deleteFrom('credentials_grace').where('device_id', '=', deviceId).execute();
  return rows.map((r) => r.credentials_id);
}
