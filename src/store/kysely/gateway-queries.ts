/**
 * Queries of the gateway API (issue 14): devices by many names at once, and a gateway's sub-devices through
 * `device.gateway_id` (migration 005, kept equal to `additionalInfo.lastConnectedGateway` by deviceToRow).
 */
import { sql, type Kysely, type Transaction } from 'kysely';
import type { Device } from '../../core/model.ts';
import type { Database } from '../schema.ts';
import { rowToDevice } from './rows.ts';

type Db = Kysely<Database> | Transaction<Database>;

/** Names per query: well under SQLite's and PostgreSQL's bound-parameter limits. */
const NAMES_PER_QUERY = 500;

/** The tenant's devices with any of `names` (exact, case-sensitive); unknown names are simply absent. */
export async function findDevicesByNames(db: Db, tenantId: string, names: readonly string[]): Promise<Device[]> {
  const out: Device[] = [];
  for (let i = 0; i < names.length; i += NAMES_PER_QUERY) {
    const chunk = names.slice(i, i + NAMES_PER_QUERY);
    const rows = await db.selectFrom('device').selectAll().where('tenant_id', '=', tenantId).where('name', 'in', chunk).execute();
    for (const row of rows) out.push(rowToDevice(row));
  }
  return out;
}

/** How many devices are sub-devices of `gatewayId`. */
export async function countSubDevices(db: Db, gatewayId: string): Promise<number> {
  const row = await db.selectFrom('device').select((eb) => eb.fn.countAll().as('n')).where('gateway_id', '=', gatewayId).executeTakeFirst();
  return Number(row?.n ?? 0);
}

/** Sub-devices of `gatewayId` that have an RPC still to deliver (QUEUED or SENT, not expired at `now`). */
export async function listSubDevicesWithPendingRpc(db: Db, gatewayId: string, now: number): Promise<Device[]> {
  const rows = await db
    .selectFrom('device')
    .selectAll()
    .where('gateway_id', '=', gatewayId)
    .where(({ exists, selectFrom }) =>
      exists(
        selectFrom('rpc')
          .select(sql<number>`1`.as('one'))
          .whereRef('rpc.device_id', '=', 'device.id')
          .where('rpc.status', 'in', ['QUEUED', 'SENT'])
          .where('rpc.expiration_time', '>', now),
      ),
    )
    .execute();
  return rows.map(rowToDevice);
}
