/** The `rpc` table: persisted server-side RPC requests (so a device that reconnects still gets a pending one). */
import type { Kysely, Transaction } from 'kysely';
import type { Page, PageQuery, RpcRequest, RpcStatus } from '../../core/model.ts';
import type { Database } from '../schema.ts';
import { fetchPage } from './paging.ts';
import { rowToRpc } from './rows.ts';

type Db = Kysely<Database> | Transaction<Database>;

export async function insertRpc(db: Db, rpc: Omit<RpcRequest, 'requestId'>): Promise<RpcRequest> {
  const row = await db
    .insertInto('rpc')
    .values({
      id: rpc.id,
      device_id: rpc.deviceId,
      tenant_id: rpc.tenantId,
      method: rpc.method,
      params: rpc.params,
      oneway: rpc.oneway ? 1 : 0,
      expiration_time: rpc.expirationTime,
      status: rpc.status,
      response: rpc.response,
      created_time: rpc.createdTime,
    })
    .returningAll()
    .executeTakeFirstOrThrow();
  return rowToRpc(row);
}

export async function getRpc(db: Db, id: string): Promise<RpcRequest | undefined> {
  const row = await db.selectFrom('rpc').selectAll().where('id', '=', id).executeTakeFirst();
  return row && rowToRpc(row);
}

export async function findRpcByRequestId(db: Db, deviceId: string, requestId: number): Promise<RpcRequest | undefined> {
  const row = await db.selectFrom('rpc').selectAll().where('device_id', '=', deviceId).where('request_id', '=', requestId).executeTakeFirst();
  return row && rowToRpc(row);
}

export async function updateRpcStatus(db: Db, id: string, status: RpcStatus, response?: string | null, onlyIf?: readonly RpcStatus[]): Promise<void> {
  const set = response === undefined ? { status } : { status, response };
  let query = db.updateTable('rpc').set(set).where('id', '=', id);
  if (onlyIf) query = query.where('status', 'in', [...onlyIf]);
  await query.execute();
}

/** Queued or sent, not yet expired, oldest first. */
export async function listPendingRpc(db: Db, deviceId: string, now: number): Promise<RpcRequest[]> {
  const rows = await db
    .selectFrom('rpc')
    .selectAll()
    .where('device_id', '=', deviceId)
    .where('status', 'in', ['QUEUED', 'SENT'])
    .where('expiration_time', '>', now)
    .orderBy('request_id')
    .execute();
  return rows.map(rowToRpc);
}

/** One device's requests, newest first unless `sortProperty`/`sortOrder` say otherwise; `status` filters. */
export function listRpcForDevice(db: Db, tenantId: string, deviceId: string, query: PageQuery & { status?: RpcStatus }): Promise<Page<RpcRequest>> {
  let base = db.selectFrom('rpc').where('tenant_id', '=', tenantId).where('device_id', '=', deviceId);
  if (query.status) base = base.where('status', '=', query.status);
  const column = ({ createdTime: 'created_time', expirationTime: 'expiration_time', status: 'status' } as const)[query.sortProperty ?? 'createdTime'] ?? 'created_time';
  const order = query.sortOrder === 'ASC' ? 'asc' : 'desc';
  return fetchPage(base, query, (qb) => qb.selectAll().orderBy(column, order).orderBy('request_id', order), rowToRpc);
}

/** Deletes one of the tenant's requests; false when there was none. */
export async function deleteRpc(db: Db, tenantId: string, id: string): Promise<boolean> {
  const result = await db.deleteFrom('rpc').where('tenant_id', '=', tenantId).where('id', '=', id).executeTakeFirst();
  return Number(result.numDeletedRows) > 0;
}

/** ThingsBoard's end states for RPCs past their expiry: EXPIRED if never sent, TIMEOUT if sent and not answered. */
export async function expireRpcs(db: Db, now: number): Promise<void> {
  await db.updateTable('rpc').set({ status: 'EXPIRED' }).where('status', '=', 'QUEUED').where('expiration_time', '<=', now).execute();
  await db.updateTable('rpc').set({ status: 'TIMEOUT' }).where('status', 'in', ['SENT', 'DELIVERED']).where('expiration_time', '<=', now).execute();
}
