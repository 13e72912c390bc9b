import type { Kysely, Transaction } from 'kysely';
import { CompiledQuery, sql } from 'kysely';
import { OFFLOAD_SQL } from '../sqlite-writer-dialect.ts';
import type { ApiKey, AttributeEntry, AttributeScope, AttributeWrite, AuditEntry, AuditQuery, ConsoleDeviceQuery, ConsoleDeviceRow, Device, DeviceActivity, DeviceInfo, DeviceInfoQuery, DeviceCredentials, DeviceProfile, KvEntry, KvValue, Page, PageQuery, RpcRequest, RpcStatus, User } from '../../core/model.ts';
import type { Dialect } from '../dialect.ts';
import type { Database } from '../schema.ts';
import * as tsAggregation from './timeseries-aggregation.ts';
import { UniqueViolation, type AggregateBucket, type CredentialsGrace, type DeviceActivityWrite, type DeviceInsertOutcome, type Store, type TransactionOptions, type TimeseriesAggregateQuery, type TimeseriesDelete, type TimeseriesQuery, type WriteBatch } from '../../core/ports/store.ts';
import * as consoleDevices from './console-device-queries.ts';
import * as infos from './device-info-queries.ts';
import * as security from './user-security-queries.ts';
import * as accounts from './account-queries.ts';
import * as attributes from './attribute-queries.ts';
import * as imports from './import-queries.ts';
import * as provisioningRows from './provisioning-queries.ts';
import { probeWrite } from './health-queries.ts';
import { KyselyOtaStore } from './ota-queries.ts';
import * as gateways from './gateway-queries.ts';
import type { ExportStore } from '../../core/ports/export-store.ts';
import { kyselyExportStore } from './export-store.ts';
import { insertOutbox, outboxStatements } from './export-queries.ts';
import { fetchPage } from './paging.ts';
import * as rpc from './rpc-queries.ts';
import * as grace from './credentials-grace-queries.ts';
import * as sessionCredentials from './session-credentials-queries.ts';
import * as ts from './timeseries-queries.ts';
import { credentialsToRow, deviceToRow, profileToRow, rowToCredentials, rowToDevice, rowToProfile } from './rows.ts';
import type { SqliteStaging } from './sqlite-staging.ts';
import type { SnapshotReads } from '../sqlite-snapshot-reads.ts';
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
    /** SQLite with the writer thread: time-series reads outside a transaction run in one snapshot there. */
    private readonly snapshots?: SnapshotReads,
  ) {
    this.ota = new KyselyOtaStore(db, dialect);
  }

  /** SQLite: time-series reads and deletes also see ts_kv_chunk (ts-kv-chunk-format.ts). */
  private get onSqlite(): boolean {
    return this.dialect.name === 'sqlite';
  }

  /** OTA queries (ota-queries.ts) on this connection or transaction. */
  readonly ota: KyselyOtaStore;

  async transaction<T>(work: (tx: Store) => Promise<T>, options?: TransactionOptions): Promise<T> {
    if (this.inTransaction) return work(this);
    const offload = options?.offload === true && this.dialect.name === 'sqlite';
    return this.guard(() =>
      (this.db as Kysely<Database>).transaction().execute(async (trx) => {
        if (offload) await trx.executeQuery(CompiledQuery.raw(OFFLOAD_SQL)); // the SQLite drivers' marker (sqlite-writer-dialect.ts)
        return work(new KyselyStore(trx, this.dialect, async () => {}, true, 1, this.staging));
      }),
    );
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

  async findProfileByName(tenantId: string, name: string): Promise<DeviceProfile | undefined> {
    const row = await this.db.selectFrom('device_profile').selectAll().where('tenant_id', '=', tenantId).where('name', '=', name).executeTakeFirst();
    return row && rowToProfile(row);
  }

  async findDefaultProfile(tenantId: string): Promise<DeviceProfile | undefined> {
    const row = await this.db.selectFrom('device_profile').selectAll().where('tenant_id', '=', tenantId).where('is_default', '=', 1).executeTakeFirst();
    return row && rowToProfile(row);
  }

  listProfiles(tenantId: string, query: PageQuery & { transportType?: string }): Promise<Page<DeviceProfile>> {
    let base = this.db.selectFrom('device_profile').where('tenant_id', '=', tenantId);
    if (query.transportType) base = base.where('transport_type', '=', query.transportType);
    if (query.textSearch) base = base.where(sql<boolean>`lower(name) like ${'%' + query.textSearch.toLowerCase() + '%'}`);
    const sorts = { name: 'name', createdTime: 'created_time', type: 'type', transportType: 'transport_type', description: 'description', isDefault: 'is_default' } as const;
    const column = sorts[(query.sortProperty ?? 'createdTime') as keyof typeof sorts] ?? 'created_time';
    const order = query.sortOrder === 'ASC' ? 'asc' : 'desc';
    return fetchPage(base, query, (qb) => qb.selectAll().orderBy(column, order).orderBy('id'), rowToProfile);
  }

  async deleteProfile(tenantId: string, id: string): Promise<boolean> {
    return this.transaction(async (tx) => {
      const db = (tx as KyselyStore).db;
      const result = await db.deleteFrom('device_profile').where('tenant_id', '=', tenantId).where('id', '=', id).executeTakeFirst();
      // TB [SCHEMA]: a profile's OTA packages go with it (ON DELETE CASCADE), and so does its assignment.
      await (tx as KyselyStore).ota.deleteForProfile(id);
      return Number(result.numDeletedRows) > 0;
    });
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

  insertDevicesIfAbsent(pairs: { device: Device; credentials: DeviceCredentials }[]): Promise<DeviceInsertOutcome[]> {
    return this.transaction((tx) => (tx as KyselyStore).guard(() => imports.insertDevicesIfAbsent((tx as KyselyStore).db, pairs)));
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

  findDevicesByNames(tenantId: string, names: readonly string[]): Promise<Device[]> {
    return gateways.findDevicesByNames(this.db, tenantId, names);
  }

  countSubDevices(gatewayId: string): Promise<number> {
    return gateways.countSubDevices(this.db, gatewayId);
  }

  listSubDevicesWithPendingRpc(gatewayId: string, now: number): Promise<Device[]> {
    return gateways.listSubDevicesWithPendingRpc(this.db, gatewayId, now);
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
      // SQLite only (migration 014): its dense numeric series are chunks (sqlite-chunk-writes.ts).
      if (this.dialect.name === 'sqlite') await db.deleteFrom('ts_kv_chunk').where('device_id', '=', id).execute();
      await db.deleteFrom('rpc').where('device_id', '=', id).execute();
      await db.deleteFrom('device_activity').where('device_id', '=', id).execute();
      await (tx as KyselyStore).ota.deleteForDevice(id);
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

  insertAttributeIfAbsent(deviceId: string, scope: AttributeScope, entry: KvEntry, ts: number): Promise<boolean> {
    return attributes.insertAttributeIfAbsent(this.db, deviceId, scope, entry, ts);
  }

  insertAttributesIfAbsent(rows: readonly provisioningRows.NewAttribute[]): Promise<void> {
    return provisioningRows.insertAttributesIfAbsent(this.db, rows);
  }

  getAttributes(deviceId: string, scope: AttributeScope, keys?: string[]): Promise<AttributeEntry[]> {
    return attributes.getAttributes(this.db, deviceId, scope, keys);
  }

  async deleteAttributes(deviceId: string, scope: AttributeScope, keys: string[]): Promise<string[]> {
    if (keys.length === 0) return [];
    return this.transaction((tx) => attributes.deleteAttributes((tx as KyselyStore).db, deviceId, scope, keys));
  }

  // ---- time series
  async writeBatch(batch: WriteBatch): Promise<void> {
    const outbox = batch.outbox && batch.outbox.length > 0 ? batch.outbox : undefined;
    // SQLite: the outbox rows go with the batch's statements, and their seqs are set once the transaction committed
    // (only when this call owns the transaction: inside a caller's, the commit is still to come).
    const seqs: (number | undefined)[] | undefined = outbox && this.dialect.name === 'sqlite' && !this.inTransaction ? [] : undefined;
    await this.transaction(async (tx) => {
      const db = (tx as KyselyStore).db;
      if (outbox && this.dialect.name === 'sqlite') return writeBatch(db, batch, this.dialect, this.staging, outboxStatements(db, outbox, seqs));
      await writeBatch(db, batch, this.dialect, this.staging);
      if (outbox) await insertOutbox(db, outbox);
    });
    if (outbox && seqs) for (let i = 0; i < outbox.length; i++) outbox[i].seq = seqs[i];
    // Committed (not inside a caller's transaction): the staging's merge slice, if one is due, runs after it.
    if (!this.inTransaction && this.staging) this.staging.committed();
  }

  get exports(): ExportStore {
    return kyselyExportStore(this.db, this.dialect, (work, options) => this.transaction((tx) => work((tx as KyselyStore).db), options));
  }

  async getTimeseries(query: TimeseriesQuery): Promise<Map<string, { ts: number; value: KvValue }[]>> {
    if (!this.snapshots || this.inTransaction) return ts.getTimeseries(this.db, query, this.staging, this.onSqlite);
    await this.staging?.flush(this.db); // staged rows merged first (a write), then the statements read one snapshot
    return this.snapshots.read((snapshot) => ts.getTimeseries(snapshot, query, undefined, true));
  }

  getLatestTimeseries(deviceId: string, keys?: string[]): Promise<Map<string, { ts: number; value: KvValue }>> {
    return ts.getLatestTimeseries(this.db, deviceId, keys);
  }

  listTimeseriesKeys(deviceId: string): Promise<string[]> {
    return ts.listTimeseriesKeys(this.db, deviceId);
  }

  async aggregateTimeseries(query: TimeseriesAggregateQuery): Promise<Map<string, AggregateBucket[]>> {
    if (!this.snapshots || this.inTransaction) return tsAggregation.aggregateTimeseries(this.db, query, this.staging, this.onSqlite);
    await this.staging?.flush(this.db);
    return this.snapshots.read((snapshot) => tsAggregation.aggregateTimeseries(snapshot, query, undefined, true));
  }

  deleteTimeseries(del: TimeseriesDelete): Promise<void> {
    return this.transaction((tx) => tsAggregation.deleteTimeseries((tx as KyselyStore).db, del, this.staging, this.onSqlite));
  }

  listDeviceKeys(tenantId: string, profileId: string | undefined, kind: 'timeseries' | 'attributes'): Promise<string[]> {
    return tsAggregation.listDeviceKeys(this.db, tenantId, profileId, kind);
  }

  // ---- RPC
  insertRpc(request: Omit<RpcRequest, 'requestId'>): Promise<RpcRequest> {
    return rpc.insertRpc(this.db, request);
  }

  getRpc(id: string): Promise<RpcRequest | undefined> {
    return rpc.getRpc(this.db, id);
  }

  findRpcByRequestId(deviceId: string, requestId: number): Promise<RpcRequest | undefined> {
    return rpc.findRpcByRequestId(this.db, deviceId, requestId);
  }

  updateRpcStatus(id: string, status: RpcStatus, response?: string | null, onlyIf?: readonly RpcStatus[]): Promise<void> {
    return rpc.updateRpcStatus(this.db, id, status, response, onlyIf);
  }

  listPendingRpc(deviceId: string, now: number): Promise<RpcRequest[]> {
    return rpc.listPendingRpc(this.db, deviceId, now);
  }

  listRpcForDevice(tenantId: string, deviceId: string, query: PageQuery & { status?: RpcStatus }): Promise<Page<RpcRequest>> {
    return rpc.listRpcForDevice(this.db, tenantId, deviceId, query);
  }

  deleteRpc(tenantId: string, id: string): Promise<boolean> {
    return rpc.deleteRpc(this.db, tenantId, id);
  }

  expireRpcs(now: number): Promise<void> {
    return rpc.expireRpcs(this.db, now);
  }

  insertCredentialsGrace(row: CredentialsGrace): Promise<void> {
    return grace.insertCredentialsGrace(this.db, row);
  }

  currentCredentialsIds(deviceIds: readonly string[]): Promise<Map<string, string>> {
    return sessionCredentials.currentCredentialsIds(this.db, deviceIds);
  }

  findCredentialsGrace(credentialsId: string, now: number): Promise<CredentialsGrace | undefined> {
    return grace.findCredentialsGrace(this.db, credentialsId, now);
  }

  deleteCredentialsGrace(now: number, deviceId?: string): Promise<string[]> {
    return grace.deleteCredentialsGrace(this.db, now, deviceId);
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

  findUserByEmail(email: string): Promise<User | undefined> {
    return accounts.findUserByEmail(this.db, email);
  }

  getUser(id: string): Promise<User | undefined> {
    return accounts.getUser(this.db, id);
  }

  updateUserPassword(id: string, passwordHash: string): Promise<void> {
    return accounts.updateUserPassword(this.db, id, passwordHash);
  }

  countUsers(): Promise<number> {
    return accounts.countUsers(this.db);
  }

  // ---- settings (not on the Store port: used by server bootstrap)
  getSetting(key: string): Promise<string | undefined> {
    return accounts.getSetting(this.db, key);
  }

  /** Stores `value` unless the key is set; returns the stored value (first writer wins). */
  initSetting(key: string, value: string): Promise<string> {
    return accounts.initSetting(this.db, key, value);
  }

  // ---- audit
  insertAudit(entry: AuditEntry): Promise<void> {
    return accounts.insertAudit(this.db, entry);
  }

  insertAudits(entries: readonly AuditEntry[]): Promise<void> {
    return provisioningRows.insertAudits(this.db, entries);
  }

  listAudit(tenantId: string, query: PageQuery): Promise<Page<AuditEntry>> {
    return accounts.listAudit(this.db, tenantId, query);
  }

  // ---- device infos and activity
  listDeviceInfos(tenantId: string, query: DeviceInfoQuery): Promise<Page<DeviceInfo>> {
    return infos.listDeviceInfos(this.db, tenantId, query);
  }

  listConsoleDevices(tenantId: string, query: ConsoleDeviceQuery): Promise<Page<ConsoleDeviceRow>> {
    return consoleDevices.listConsoleDevices(this.db, tenantId, query);
  }

  getDeviceInfo(tenantId: string, id: string): Promise<DeviceInfo | undefined> {
    return infos.getDeviceInfo(this.db, tenantId, id);
  }

  listDeviceTypes(tenantId: string): Promise<string[]> {
    return infos.listDeviceTypes(this.db, tenantId);
  }

  recordDeviceActivity(writes: DeviceActivityWrite[]): Promise<void> {
    return infos.recordDeviceActivity(this.db, this.dialect, writes);
  }

  getDeviceActivity(deviceId: string): Promise<DeviceActivity | undefined> {
    return infos.getDeviceActivity(this.db, deviceId);
  }

  getDevicesByIds(tenantId: string, ids: string[]): Promise<Device[]> {
    return infos.getDevicesByIds(this.db, tenantId, ids);
  }

  // ---- API keys, token outdating, filtered audit
  insertApiKey(key: ApiKey, valueHash: string): Promise<void> {
    return this.guard(() => security.insertApiKey(this.db, key, valueHash));
  }

  updateApiKey(id: string, change: { description?: string; enabled?: boolean }): Promise<void> {
    return security.updateApiKey(this.db, id, change);
  }

  getApiKey(id: string): Promise<ApiKey | undefined> {
    return security.getApiKey(this.db, id);
  }

  findApiKeyByHash(valueHash: string): Promise<ApiKey | undefined> {
    return security.findApiKeyByHash(this.db, valueHash);
  }

  listApiKeys(userId: string, query: PageQuery): Promise<Page<ApiKey>> {
    return security.listApiKeys(this.db, userId, query);
  }

  deleteApiKey(id: string): Promise<boolean> {
    return security.deleteApiKey(this.db, id);
  }

  setTokensValidAfter(userId: string, time: number): Promise<void> {
    return security.setTokensValidAfter(this.db, userId, time);
  }

  listAuditFiltered(tenantId: string, query: AuditQuery): Promise<Page<AuditEntry>> {
    return security.listAuditFiltered(this.db, tenantId, query);
  }

  setDefaultProfile(tenantId: string, id: string): Promise<void> {
    return this.transaction((tx) => infos.setDefaultProfile((tx as KyselyStore).db, tenantId, id));
  }

  async ping(): Promise<void> {
    await sql`select 1`.execute(this.db);
  }

  probeWrite(): Promise<void> {
    return probeWrite(this.db as Kysely<Database>);
  }

  async close(): Promise<void> {
    await this.onClose();
  }
}
