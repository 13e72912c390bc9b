/**
 * The console's device table (GET /api/fleetgate/devices): devices with profile name, activity, credentials type and
 * when/how they were provisioned, filtered by profile, activity and provision state, paged and sorted on the server.
 * Built to page through 100,000 devices quickly: the count and the page's ids come from `device` alone (plus only the
 * tables a filter needs, through EXISTS), in index order; the joins run for the page's rows only.
 */
import { sql, type Kysely, type Transaction } from 'kysely';
import type { ConsoleDeviceQuery, ConsoleDeviceRow, Page } from '../../core/model.ts';
import type { Database } from '../schema.ts';
import { rowToDevice } from './rows.ts';

type Db = Kysely<Database> | Transaction<Database>;

/** Sort properties and their columns (ThingsBoard's DeviceInfo names). */
export const CONSOLE_DEVICE_SORTS: Record<string, string> = {
  createdTime: 'device.created_time',
  name: 'device.name',
  label: 'device.label',
  type: 'device.type',
  deviceProfileName: 'device.type',
};

const PROVISION_STATE = 'provisionState';

function filtered(db: Db, tenantId: string, q: ConsoleDeviceQuery) {
  // A text search reads every row: a plain scan, then a sort of the matches, costs a fifth of walking an order index
  // and fetching each row from it (SQLite, 100,000 devices). `tenant_id || ''` keeps the planner off those indexes.
  let base = q.textSearch
    ? db.selectFrom('device').where(sql<boolean>`(${sql.ref('device.tenant_id')} || '') = ${tenantId}`)
    : db.selectFrom('device').where('device.tenant_id', '=', tenantId);
  if (q.profileId) base = base.where('device.profile_id', '=', q.profileId);
  if (q.active !== undefined) {
    const seen = (eb: any) =>
      eb.exists(eb.selectFrom('device_activity').select('device_activity.device_id').whereRef('device_activity.device_id', '=', 'device.id').where('device_activity.last_activity_time', '>=', q.activeSince));
    base = base.where((eb) => (q.active ? seen(eb) : eb.not(seen(eb))));
  }
  if (q.provisioned !== undefined) {
    const provisioned = (eb: any) =>
      eb.exists(
        eb.selectFrom('attribute_kv').select('attribute_kv.device_id').whereRef('attribute_kv.device_id', '=', 'device.id').where('attribute_kv.scope', '=', 'SERVER_SCOPE').where('attribute_kv.key', '=', PROVISION_STATE),
      );
    base = base.where((eb) => (q.provisioned ? provisioned(eb) : eb.not(provisioned(eb))));
  }
  if (q.textSearch) {
    const like = `%${q.textSearch.toLowerCase()}%`;
    base = base.where(sql<boolean>`(lower(device.name) like ${like} or lower(coalesce(device.label, '')) like ${like} or lower(device.type) like ${like})`);
  }
  return base;
}

/** One page of the console's device table. */
export async function listConsoleDevices(db: Db, tenantId: string, q: ConsoleDeviceQuery): Promise<Page<ConsoleDeviceRow>> {
  const pageSize = Math.max(1, q.pageSize);
  const page = Math.max(0, q.page);
  const base = filtered(db, tenantId, q);
  const column = CONSOLE_DEVICE_SORTS[q.sortProperty ?? 'createdTime'] ?? 'device.created_time';
  const order = q.sortOrder === 'DESC' ? 'desc' : 'asc';
  const countAll = async () => Number((await base.select((eb) => eb.fn.countAll().as('n')).executeTakeFirst())?.n ?? 0);
  // One direction for both terms, so an index on (tenant_id, column, id) serves the order without a sort step.
  const ordered = base.orderBy(sql.ref(column), order).orderBy('device.id', order).limit(pageSize).offset(page * pageSize);
  let ids: string[];
  let total: number;
  if (q.textSearch) {
    // A search reads every row anyway: count in the same pass (a window count), not in a second scan.
    const rows = await ordered.select(['device.id', sql<number>`count(*) over ()`.as('total')]).execute();
    ids = rows.map((r) => r.id);
    total = rows.length > 0 ? Number(rows[0].total) : await countAll();
  } else {
    total = await countAll();
    ids = (await ordered.select('device.id').execute()).map((r) => r.id);
  }
  const meta = { totalElements: total, totalPages: Math.ceil(total / pageSize), hasNext: (page + 1) * pageSize < total };
  if (ids.length === 0) return { data: [], ...meta };
  const [rows, audits] = await Promise.all([
    db
      .selectFrom('device')
      .innerJoin('device_profile', 'device_profile.id', 'device.profile_id')
      .leftJoin('device_activity', 'device_activity.device_id', 'device.id')
      .leftJoin('device_credentials', 'device_credentials.device_id', 'device.id')
      .leftJoin('attribute_kv', (join) =>
        join.onRef('attribute_kv.device_id', '=', 'device.id').on('attribute_kv.scope', '=', 'SERVER_SCOPE').on('attribute_kv.key', '=', PROVISION_STATE),
      )
      .selectAll('device')
      .select([
        'device_profile.name as profile_name',
        'device_activity.last_connect_time',
        'device_activity.last_disconnect_time',
        'device_activity.last_activity_time',
        'device_credentials.credentials_type',
        'attribute_kv.last_update_ts as provisioned_time',
      ])
      .where('device.id', 'in', ids)
      .execute(),
    // TB: provisioning writes a PROVISION_SUCCESS audit row whose source names the transport (e.g. `mqtt:10.0.0.7`).
    db
      .selectFrom('audit_log')
      .select(['entity_id', 'source', 'created_time'])
      .where('tenant_id', '=', tenantId)
      .where('entity_id', 'in', ids)
      .where('action_type', '=', 'PROVISION_SUCCESS')
      .orderBy('created_time', 'asc')
      .execute(),
  ]);
  const sourceOf = new Map<string, string | null>();
  for (const a of audits) if (a.entity_id && !sourceOf.has(a.entity_id)) sourceOf.set(a.entity_id, a.source);
  const num = (v: unknown) => (v === null || v === undefined ? null : Number(v));
  const byId = new Map(
    rows.map((row) => {
      const source = sourceOf.get(row.id) ?? null;
      const provisionedTime = num(row.provisioned_time);
      return [
        row.id,
        {
          ...rowToDevice(row as any),
          profileName: row.profile_name,
          activity: { lastConnectTime: num(row.last_connect_time), lastDisconnectTime: num(row.last_disconnect_time), lastActivityTime: num(row.last_activity_time) },
          credentialsType: row.credentials_type ?? null,
          provisioned: provisionedTime === null ? null : { time: provisionedTime, transport: source ? source.split(':')[0] : null },
        } satisfies ConsoleDeviceRow,
      ];
    }),
  );
  return { data: ids.map((id) => byId.get(id)!).filter(Boolean), ...meta };
}
