import type { Kysely, Transaction } from 'kysely';
import { sql } from 'kysely';
import type {
  AttributeEntry,
  AttributeScope,
  AttributeWrite,
  AuditEntry,
  Device,
  DeviceCredentials,
  DeviceProfile,
  KvEntry,
  KvValue,
  Page,
  PageQuery,
  RpcRequest,
  RpcStatus,
  User,
} from '../../core/model.ts';
import type { Dialect } from '../dialect.ts';
import type { Database } from '../schema.ts';
import { UniqueViolation, type Store, type TimeseriesQuery, type WriteBatch } from '../store.ts';
import { fetchPage } from './paging.ts';
import {
  auditToRow,
  credentialsToRow,
  deviceToRow,
  profileToRow,
  rowToAudit,
  rowToCredentials,
  rowToDevice,
  rowToProfile,
  rowToRpc,
  rowToUser,
} from './rows.ts';
import type { SqliteStaging } from './sqlite-staging.ts';
import { fromColumns, toColumns } from './values.ts';
import { writeBatch } from './write-batch.ts';

type Db = Kysely<Database> | Transaction<Database>;

/**
 * The Store over Kysely, for SQLite and PostgreSQL alike; `dialect` holds the differences. `staging` (SQLite only)
 * stages sparse telemetry batches outside ts_kv (sqlite-staging.ts).
 */
export class KyselyStore implements Store {
  constructor(
    protected readonly db: Db,
    readonly dialect: Dialect,
    private readonly onClose: () => Promise<void> = async () => {},
    private readonly inTransaction = false,
    readonly transactionConcurrency = 1,
    readonly staging?: SqliteStaging,
  ) {}

  async transaction<T>(work: (tx: Store) => Promise<T>): Promise<T> {
    if (this.inTransaction) return work(this);
    return this.guard(() => (this.db as Kysely<Database>).transaction().execute((trx) => work(new KyselyStore(trx, this.dialect, async () => {}, true, 1, this.staging))));
  }

  private savepoints = 0;

  async savepoint<T>(work: (tx: Store) => Promise<T>): Promise<T> {
    if (!this.inTransaction) return this.transaction(work);
    const name = sql.raw(`sp_${++this.savepoints}`);
    await sql`savepoint ${name}`.execute(this.db);
    try {
      const result = await work(this);
      await sql`release savepoint ${name}`.execute(this.db);
      return result;
    } catch (err) {
      await sql`rollback to savepoint ${name}`.execute(this.db);
      await sql`release savepoint ${name}`.execute(this.db);
      throw err;
    }
  }

  /** Turns driver unique-index errors into UniqueViolation. */
  private async guard<T>(run: () => Promise<T>): Promise<T> {
    try {
      return await run();
    } catch (err) {
      if (err instanceof UniqueViolation) throw err;
      const constraint = this.dialect.uniqueViolation(err);
      if (constraint) throw new UniqueViolation(constraint, err);
      throw err;
    }
  }

  // ---- device profiles
  insertProfile(profile: DeviceProfile): Promise<void> {
    return this.guard(async () => void (await this.db.insertInto('device_profile').values(profileToRow(profile)).execute()));
  }

  updateProfile(profile: DeviceProfile): Promise<void> {
    const { id, ...row } = profileToRow(profile);
    return this.guard(async () => void (await this.db.updateTable('device_profile').set(row).where('id', '=', id).execute()));
  }

  async getProfile(tenantId: string, id: string): Promise<DeviceProfile | undefined> {
    const row = await this.db.selectFrom('device_profile').selectAll().where('tenant_id', '=', tenantId).where('id', '=', id).executeTakeFirst();
    return row && rowToProfile(row);
  }

  async findProfileByProvisionKey(key: string): Promise<DeviceProfile | undefined> {
    const row = await this.db.selectFrom('device_profile').selectAll().where('provision_device_key', '=', key).executeTakeFirst();
    return row && rowToProfile(row);
  }

  async findDefaultProfile(tenantId: string): Promise<DeviceProfile | undefined> {
    const row = await this.db.selectFrom('device_profile').selectAll().where('tenant_id', '=', tenantId).where('is_default', '=', 1).executeTakeFirst();
    return row && rowToProfile(row);
  }

  listProfiles(tenantId: string, query: PageQuery): Promise<Page<DeviceProfile>> {
    let base = this.db.selectFrom('device_profile').where('tenant_id', '=', tenantId);
    if (query.textSearch) base = base.where(sql<boolean>`lower(name) like ${'%' + query.textSearch.toLowerCase() + '%'}`);
    const column = ({ name: 'name', createdTime: 'created_time', type: 'type' } as const)[query.sortProperty ?? 'createdTime'] ?? 'created_time';
    const order = query.sortOrder === 'ASC' ? 'asc' : 'desc';
    return fetchPage(base, query, (qb) => qb.selectAll().orderBy(column, order).orderBy('id'), rowToProfile);
  }

  async deleteProfile(tenantId: string, id: string): Promise<boolean> {
    const result = await this.db.deleteFrom('device_profile').where('tenant_id', '=', tenantId).where('id', '=', id).executeTakeFirst();
    return Number(result.numDeletedRows) > 0;
  }

  async countDevicesOfProfile(profileId: string): Promise<number> {
    const row = await this.db.selectFrom('device').select((eb) => eb.fn.countAll().as('n')).where('profile_id', '=', profileId).executeTakeFirst();
    return Number(row?.n ?? 0);
  }

  // ---- devices and credentials
  insertDevice(device: Device, credentials: DeviceCredentials): Promise<void> {
    return this.transaction((tx) =>
      (tx as KyselyStore).guard(async () => {
        const db = (tx as KyselyStore).db;
        await db.insertInto('device').values(deviceToRow(device)).execute();
        await db.insertInto('device_credentials').values(credentialsToRow(credentials)).execute();
      }),
    );
  }

  updateDevice(device: Device): Promise<void> {
    const { id, ...row } = deviceToRow(device);
    return this.guard(async () => void (await this.db.updateTable('device').set(row).where('id', '=', id).execute()));
  }

  async getDevice(tenantId: string, id: string): Promise<Device | undefined> {
    const row = await this.db.selectFrom('device').selectAll().where('tenant_id', '=', tenantId).where('id', '=', id).executeTakeFirst();
    return row && rowToDevice(row);
  }

  async getDeviceById(id: string): Promise<Device | undefined> {
    const row = await this.db.selectFrom('device').selectAll().where('id', '=', id).executeTakeFirst();
    return row && rowToDevice(row);
  }

  async findDeviceByName(tenantId: string, name: string): Promise<Device | undefined> {
    const row = await this.db.selectFrom('device').selectAll().where('tenant_id', '=', tenantId).where('name', '=', name).executeTakeFirst();
    return row && rowToDevice(row);
  }

  listDevices(tenantId: string, query: PageQuery & { profileId?: string }): Promise<Page<Device>> {
    let base = this.db.selectFrom('device').where('tenant_id', '=', tenantId);
    if (query.profileId) base = base.where('profile_id', '=', query.profileId);
    if (query.textSearch) base = base.where(sql<boolean>`lower(name) like ${'%' + query.textSearch.toLowerCase() + '%'}`);
    const column = ({ name: 'name', createdTime: 'created_time', type: 'type', label: 'label' } as const)[query.sortProperty ?? 'createdTime'] ?? 'created_time';
    const order = query.sortOrder === 'ASC' ? 'asc' : 'desc';
    return fetchPage(base, query, (qb) => qb.selectAll().orderBy(column, order).orderBy('id'), rowToDevice);
  }

  async deleteDevice(tenantId: string, id: string): Promise<boolean> {
    return this.transaction(async (tx) => {
      const db = (tx as KyselyStore).db;
      const result = await db.deleteFrom('device').where('tenant_id', '=', tenantId).where('id', '=', id).executeTakeFirst();
      if (Number(result.numDeletedRows) === 0) return false;
      await db.deleteFrom('device_credentials').where('device_id', '=', id).execute();
      await db.deleteFrom('attribute_kv').where('device_id', '=', id).execute();
      await db.deleteFrom('ts_kv_latest').where('device_id', '=', id).execute();
      await db.deleteFrom('ts_kv').where('device_id', '=', id).execute();
      await this.staging?.deleteDevice(db, id);
      await db.deleteFrom('rpc').where('device_id', '=', id).execute();
      return true;
    });
  }

  async getCredentialsOfDevice(deviceId: string): Promise<DeviceCredentials | undefined> {
    const row = await this.db.selectFrom('device_credentials').selectAll().where('device_id', '=', deviceId).executeTakeFirst();
    return row && rowToCredentials(row);
  }

  async findCredentialsById(credentialsId: string): Promise<DeviceCredentials | undefined> {
    const row = await this.db.selectFrom('device_credentials').selectAll().where('credentials_id', '=', credentialsId).executeTakeFirst();
    return row && rowToCredentials(row);
  }

  updateCredentials(credentials: DeviceCredentials): Promise<void> {
    const { id, ...row } = credentialsToRow(credentials);
    return this.guard(async () => void (await this.db.updateTable('device_credentials').set(row).where('id', '=', id).execute()));
  }

  async markCredentialsUsed(credentialsRowId: string, time: number): Promise<void> {
    await this.db.updateTable('device_credentials').set({ first_used_time: time }).where('id', '=', credentialsRowId).where('first_used_time', 'is', null).execute();
  }

  // ---- attributes
  saveAttributes(write: AttributeWrite): Promise<void> {
    return this.writeBatch({ telemetry: [], attributes: [write] });
  }

  async insertAttributeIfAbsent(deviceId: string, scope: AttributeScope, entry: KvEntry, ts: number): Promise<boolean> {
    const result = await this.db
      .insertInto('attribute_kv')
      .values({ device_id: deviceId, scope, key: entry.key, last_update_ts: ts, ...toColumns(entry.value) })
      .onConflict((oc) => oc.columns(['device_id', 'scope', 'key']).doNothing())
      .executeTakeFirst();
    return Number(result.numInsertedOrUpdatedRows ?? 0) > 0;
  }

  async getAttributes(deviceId: string, scope: AttributeScope, keys?: string[]): Promise<AttributeEntry[]> {
    if (keys && keys.length === 0) return [];
    let q = this.db.selectFrom('attribute_kv').selectAll().where('device_id', '=', deviceId).where('scope', '=', scope);
    if (keys) q = q.where('key', 'in', keys);
    const rows = await q.orderBy('key').execute();
    return rows.map((r) => ({ key: r.key, value: fromColumns(r), lastUpdateTs: Number(r.last_update_ts) }));
  }

  async deleteAttributes(deviceId: string, scope: AttributeScope, keys: string[]): Promise<string[]> {
    if (keys.length === 0) return [];
    return this.transaction(async (tx) => {
      const db = (tx as KyselyStore).db;
      const found = await db.selectFrom('attribute_kv').select('key').where('device_id', '=', deviceId).where('scope', '=', scope).where('key', 'in', keys).execute();
      if (found.length > 0) {
        await db.deleteFrom('attribute_kv').where('device_id', '=', deviceId).where('scope', '=', scope).where('key', 'in', keys).execute();
      }
      return found.map((r) => r.key);
    });
  }

  // ---- time series
  writeBatch(batch: WriteBatch): Promise<void> {
    return this.transaction((tx) => writeBatch((tx as KyselyStore).db, batch, this.dialect, this.staging));
  }

  async getTimeseries(query: TimeseriesQuery): Promise<Map<string, { ts: number; value: KvValue }[]>> {
    const result = new Map<string, { ts: number; value: KvValue }[]>();
    await this.staging?.flush(this.db);
    for (const key of query.keys) {
      const rows = await this.db
        .selectFrom('ts_kv')
        .selectAll()
        .where('device_id', '=', query.deviceId)
        .where('key', '=', key)
        .where('ts', '>=', query.startTs)
        .where('ts', '<=', query.endTs)
        .orderBy('ts', query.orderBy === 'ASC' ? 'asc' : 'desc')
        .limit(query.limit)
        .execute();
      if (rows.length > 0) result.set(key, rows.map((r) => ({ ts: Number(r.ts), value: fromColumns(r) })));
    }
    return result;
  }

  async getLatestTimeseries(deviceId: string, keys?: string[]): Promise<Map<string, { ts: number; value: KvValue }>> {
    let q = this.db.selectFrom('ts_kv_latest').selectAll().where('device_id', '=', deviceId);
    if (keys) {
      if (keys.length === 0) return new Map();
      q = q.where('key', 'in', keys);
    }
    const rows = await q.orderBy('key').execute();
    return new Map(rows.map((r) => [r.key, { ts: Number(r.ts), value: fromColumns(r) }]));
  }

  async listTimeseriesKeys(deviceId: string): Promise<string[]> {
    const rows = await this.db.selectFrom('ts_kv_latest').select('key').where('device_id', '=', deviceId).orderBy('key').execute();
    return rows.map((r) => r.key);
  }

  // ---- RPC
  async insertRpc(rpc: Omit<RpcRequest, 'requestId'>): Promise<RpcRequest> {
    const row = await this.db
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

  async getRpc(id: string): Promise<RpcRequest | undefined> {
    const row = await this.db.selectFrom('rpc').selectAll().where('id', '=', id).executeTakeFirst();
    return row && rowToRpc(row);
  }

  async findRpcByRequestId(deviceId: string, requestId: number): Promise<RpcRequest | undefined> {
    const row = await this.db.selectFrom('rpc').selectAll().where('device_id', '=', deviceId).where('request_id', '=', requestId).executeTakeFirst();
    return row && rowToRpc(row);
  }

  async updateRpcStatus(id: string, status: RpcStatus, response?: string | null): Promise<void> {
    const set = response === undefined ? { status } : { status, response };
    await this.db.updateTable('rpc').set(set).where('id', '=', id).execute();
  }

  async listPendingRpc(deviceId: string, now: number): Promise<RpcRequest[]> {
    const rows = await this.db
      .selectFrom('rpc')
      .selectAll()
      .where('device_id', '=', deviceId)
      .where('status', 'in', ['QUEUED', 'SENT'])
      .where('expiration_time', '>', now)
      .orderBy('request_id')
      .execute();
    return rows.map(rowToRpc);
  }

  // ---- users
  insertUser(user: User): Promise<void> {
    return this.guard(async () =>
      void (await this.db
        .insertInto('users')
        .values({ id: user.id, tenant_id: user.tenantId, email: user.email, authority: user.authority, password_hash: user.passwordHash, created_time: user.createdTime })
        .execute()),
    );
  }

  async findUserByEmail(email: string): Promise<User | undefined> {
    const row = await this.db.selectFrom('users').selectAll().where('email', '=', email).executeTakeFirst();
    return row && rowToUser(row);
  }

  async getUser(id: string): Promise<User | undefined> {
    const row = await this.db.selectFrom('users').selectAll().where('id', '=', id).executeTakeFirst();
    return row && rowToUser(row);
  }

  async updateUserPassword(id: string, passwordHash: string): Promise<void> {
    await this.db.updateTable('users').set({ password_hash: passwordHash }).where('id', '=', id).execute();
  }

  async countUsers(): Promise<number> {
    const row = await this.db.selectFrom('users').select((eb) => eb.fn.countAll().as('n')).executeTakeFirst();
    return Number(row?.n ?? 0);
  }

  // ---- settings (not on the Store port: used by server bootstrap)
  async getSetting(key: string): Promise<string | undefined> {
    const row = await this.db.selectFrom('settings').select('value').where('key', '=', key).executeTakeFirst();
    return row?.value;
  }

  /** Stores `value` unless the key is set; returns the stored value (first writer wins). */
  async initSetting(key: string, value: string): Promise<string> {
    await this.db.insertInto('settings').values({ key, value }).onConflict((oc) => oc.column('key').doNothing()).execute();
    return (await this.getSetting(key))!;
  }

  // ---- audit
  async insertAudit(entry: AuditEntry): Promise<void> {
    await this.db.insertInto('audit_log').values(auditToRow(entry)).execute();
  }

  listAudit(tenantId: string, query: PageQuery): Promise<Page<AuditEntry>> {
    const base = this.db.selectFrom('audit_log').where('tenant_id', '=', tenantId);
    return fetchPage(base, query, (qb) => qb.selectAll().orderBy('created_time', 'desc').orderBy('seq', 'desc'), rowToAudit);
  }

  async close(): Promise<void> {
    await this.onClose();
  }
}
