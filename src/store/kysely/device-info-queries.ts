/**
 * Device infos (a device with its profile's name and its activity), device types, device activity writes and the
 * tenant's default profile switch: the queries behind ThingsBoard's DeviceInfo and DeviceProfileInfo routes.
 */
import { sql, type Kysely, type Transaction } from 'kysely';
import type { Device, DeviceActivity, DeviceInfo, DeviceInfoQuery, Page } from '../../core/model.ts';
import type { Dialect } from '../dialect.ts';
import type { Database } from '../schema.ts';
import type { DeviceActivityWrite } from '../../core/ports/store.ts';
import { fetchPage } from './paging.ts';
import { rowToDevice } from './rows.ts';

type Db = Kysely<Database> | Transaction<Database>;


/** Sort properties of GET /api/tenant/deviceInfos and their columns (TB documents these five, plus `type`). */
export const DEVICE_INFO_SORTS: Record<string, string> = {
  createdTime: 'device.created_time',
  name: 'device.name',
  deviceProfileName: 'device_profile.name',
  type: 'device.type',
  label: 'device.label',
  // fleetgate has no customers: every device's customerTitle is null, so this sort keeps id order.
  customerTitle: 'device.id',
};

/** Devices joined to their profile and activity. */
function joinedInfo(db: Db) {
  return db
    .selectFrom('device')
    .innerJoin('device_profile', 'device_profile.id', 'device.profile_id')
    .leftJoin('device_activity', 'device_activity.device_id', 'device.id');
}

function infoBase(db: Db, tenantId: string) {
  return joinedInfo(db).where('device.tenant_id', '=', tenantId);
}

type InfoRow = Record<string, any>;

function rowToInfo(row: InfoRow): DeviceInfo {
  const num = (v: unknown) => (v === null || v === undefined ? null : Number(v));
  return {
    ...rowToDevice(row as any),
    profileName: row.profile_name,
    activity: { lastConnectTime: num(row.last_connect_time), lastDisconnectTime: num(row.last_disconnect_time), lastActivityTime: num(row.last_activity_time) },
  };
}

const selectInfo = (qb: any) =>
  qb.selectAll('device').select([
    'device_profile.name as profile_name',
    'device_activity.last_connect_time',
    'device_activity.last_disconnect_time',
    'device_activity.last_activity_time',
  ]);

/**
 * The tenant's devices that pass the query's filters, joined only to what a filter or the sort needs. Counting and
 * paging run on this, and the page's few rows are joined to their profile and activity afterwards: with the joins
 * first, a count or a deep page joined every device of a large fleet.
 */
function filteredDevices(db: Db, tenantId: string, query: DeviceInfoQuery, column: string | undefined) {
  let base: any = db.selectFrom('device').where('device.tenant_id', '=', tenantId);
  if (query.active !== undefined) base = base.leftJoin('device_activity', 'device_activity.device_id', 'device.id');
  if (column?.startsWith('device_profile.')) base = base.innerJoin('device_profile', 'device_profile.id', 'device.profile_id');
  if (query.profileId) base = base.where('device.profile_id', '=', query.profileId);
  if (query.active === true) base = base.where('device_activity.last_activity_time', '>=', query.activeSince);
  if (query.active === false) {
    base = base.where((eb: any) => eb.or([eb('device_activity.last_activity_time', 'is', null), eb('device_activity.last_activity_time', '<', query.activeSince)]));
  }
  if (query.textSearch) {
    const like = `%${query.textSearch.toLowerCase()}%`;
    // TB: textSearch matches name, label, type and customerTitle (no customers here).
    base = base.where(sql<boolean>`(lower(device.name) like ${like} or lower(coalesce(device.label, '')) like ${like} or lower(device.type) like ${like})`);
  }
  return base;
}

/** Ids bound in one statement when a page's rows are joined. */
const IDS_PER_STATEMENT = 10_000;

/** A page of device infos. Without a sort property the order is creation order (ThingsBoard: `id` ASC, time-based ids). */
export async function listDeviceInfos(db: Db, tenantId: string, query: DeviceInfoQuery): Promise<Page<DeviceInfo>> {
  const column = query.sortProperty ? DEVICE_INFO_SORTS[query.sortProperty] : undefined;
  const order = query.sortOrder === 'DESC' ? 'desc' : 'asc';
  const ids = await fetchPage(
    filteredDevices(db, tenantId, query, column),
    query,
    (qb: any) => {
      const selected = qb.select('device.id');
      return column ? selected.orderBy(sql.ref(column), order).orderBy('device.id', 'asc') : selected.orderBy('device.created_time', 'asc').orderBy('device.id', 'asc');
    },
    (row: { id: string }) => row.id,
  );
  if (ids.data.length === 0) return { ...ids, data: [] };
  // A page may hold up to 100 000 ids: more than one statement can bind (SQLite 32 766, PostgreSQL 65 535).
  const byId = new Map<string, DeviceInfo>();
  // By id alone: the ids are the tenant's already, and with the tenant filter too SQLite walked the tenant's index.
  for (let i = 0; i < ids.data.length; i += IDS_PER_STATEMENT) {
    const rows: InfoRow[] = await selectInfo(joinedInfo(db).where('device.id', 'in', ids.data.slice(i, i + IDS_PER_STATEMENT))).execute();
    for (const row of rows) byId.set(row.id as string, rowToInfo(row));
  }
  // A device deleted between the two reads is left out of the page rather than shown half.
  return { ...ids, data: ids.data.flatMap((id) => byId.get(id) ?? []) };
}

export async function getDeviceInfo(db: Db, tenantId: string, id: string): Promise<DeviceInfo | undefined> {
  const row = await selectInfo(infoBase(db, tenantId).where('device.id', '=', id)).executeTakeFirst();
  return row && rowToInfo(row);
}

/** Names of the tenant's profiles that have at least one device, sorted (TB: GET /api/device/types). */
export async function listDeviceTypes(db: Db, tenantId: string): Promise<string[]> {
  const rows = await db
    .selectFrom('device_profile')
    .select('name')
    .where('tenant_id', '=', tenantId)
    .where((eb) => eb.exists(eb.selectFrom('device').select('device.id').whereRef('device.profile_id', '=', 'device_profile.id')))
    .orderBy('name')
    .execute();
  return rows.map((r) => r.name);
}

/** Stores activity reports, keeping the later time of each column (several nodes report the same device). One row per device. */
export async function recordDeviceActivity(db: Db, dialect: Dialect, writes: DeviceActivityWrite[]): Promise<void> {
  if (writes.length === 0) return;
  const later = dialect.name === 'sqlite' ? 'max' : 'greatest';
  const merge = (column: string) =>
    sql.raw(`case when excluded.${column} is null then device_activity.${column} when device_activity.${column} is null then excluded.${column} else ${later}(device_activity.${column}, excluded.${column}) end`);
  await db
    .insertInto('device_activity')
    .values(
      writes.map((w) => ({
        device_id: w.deviceId,
        last_connect_time: w.lastConnectTime ?? null,
        last_disconnect_time: w.lastDisconnectTime ?? null,
        last_activity_time: w.lastActivityTime ?? null,
      })),
    )
    .onConflict((oc) =>
      oc.column('device_id').doUpdateSet({
        last_connect_time: merge('last_connect_time') as any,
        last_disconnect_time: merge('last_disconnect_time') as any,
        last_activity_time: merge('last_activity_time') as any,
      }),
    )
    .execute();
}

export async function getDeviceActivity(db: Db, deviceId: string): Promise<DeviceActivity | undefined> {
  const row = await db.selectFrom('device_activity').selectAll().where('device_id', '=', deviceId).executeTakeFirst();
  const num = (v: unknown) => (v === null || v === undefined ? null : Number(v));
  return row && { lastConnectTime: num(row.last_connect_time), lastDisconnectTime: num(row.last_disconnect_time), lastActivityTime: num(row.last_activity_time) };
}

export async function getDevicesByIds(db: Db, tenantId: string, ids: string[]): Promise<Device[]> {
  if (ids.length === 0) return [];
  const rows = await db.selectFrom('device').selectAll().where('tenant_id', '=', tenantId).where('id', 'in', ids).orderBy('created_time').orderBy('id').execute();
  return rows.map(rowToDevice);
}

/** Makes `id` the tenant's only default profile (one transaction; the partial unique index forbids two). */
export async function setDefaultProfile(db: Db, tenantId: string, id: string): Promise<void> {
  await db.updateTable('device_profile').set({ is_default: 0 }).where('tenant_id', '=', tenantId).where('is_default', '=', 1).where('id', '!=', id).execute();
  await db.updateTable('device_profile').set({ is_default: 1 }).where('tenant_id', '=', tenantId).where('id', '=', id).execute();
}
