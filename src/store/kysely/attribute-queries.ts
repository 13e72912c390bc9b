/** The `attribute_kv` table: client, shared and server attributes of devices (writes go through the batch writer). */
import type { Kysely, Transaction } from 'kysely';
import type { AttributeEntry, AttributeScope, KvEntry } from '../../core/model.ts';
import type { Database } from '../schema.ts';
import { fromColumns, toColumns } from './values.ts';

type Db = Kysely<Database> | Transaction<Database>;

/** Inserts the attribute unless the key exists; true when it was inserted. */
export async function insertAttributeIfAbsent(db: Db, deviceId: string, scope: AttributeScope, entry: KvEntry, ts: number): Promise<boolean> {
  const result = await db
    .insertInto('attribute_kv')
    .values({ device_id: deviceId, scope, key: entry.key, last_update_ts: ts, ...toColumns(entry.value) })
    .onConflict((oc) => oc.columns(['device_id', 'scope', 'key']).doNothing())
    .executeTakeFirst();
  return Number(result.numInsertedOrUpdatedRows ?? 0) > 0;
}

/** A scope's attributes, by key; `keys` limits them (an empty list: none). */
export async function getAttributes(db: Db, deviceId: string, scope: AttributeScope, keys?: string[]): Promise<AttributeEntry[]> {
  if (keys && keys.length === 0) return [];
  let q = db.selectFrom('attribute_kv').selectAll().where('device_id', '=', deviceId).where('scope', '=', scope);
  if (keys) q = q.where('key', 'in', keys);
  const rows = await q.orderBy('key').execute();
  return rows.map((r) => ({ key: r.key, value: fromColumns(r), lastUpdateTs: Number(r.last_update_ts) }));
}

/** Deletes `keys` of a scope inside the caller's transaction; returns the keys that existed. */
export async function deleteAttributes(db: Db, deviceId: string, scope: AttributeScope, keys: string[]): Promise<string[]> {
  const found = await db.selectFrom('attribute_kv').select('key').where('device_id', '=', deviceId).where('scope', '=', scope).where('key', 'in', keys).execute();
  if (found.length > 0) {
    await db.deleteFrom('attribute_kv').where('device_id', '=', deviceId).where('scope', '=', scope).where('key', 'in', keys).execute();
  }
  return found.map((r) => r.key);
}
