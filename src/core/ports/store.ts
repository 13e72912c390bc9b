import type {
  AttributeEntry,
  AttributeScope,
  AttributeWrite,
  ApiKey,
  AuditEntry,
  CredentialsType,
  AuditQuery,
  Device,
  DeviceActivity,
  DeviceInfo,
  DeviceInfoQuery,
  ConsoleDeviceQuery,
  ConsoleDeviceRow,
  DeviceCredentials,
  DeviceProfile,
  KvEntry,
  Page,
  PageQuery,
  RpcRequest,
  RpcStatus,
  TsPoint,
  User,
} from '../model.ts';
import type { OtaStore } from './ota-store.ts';

/** One device activity report; absent or null fields leave the stored time as it is. */
export interface DeviceActivityWrite {
  deviceId: string;
  lastConnectTime?: number | null;
  lastDisconnectTime?: number | null;
  lastActivityTime?: number | null;
}
import type { OutboxEntry } from '../export/model.ts';
import type { ExportStore } from './export-store.ts';

/** Query for stored time series of one device. */
export interface TimeseriesQuery {
  deviceId: string;
  keys: string[];
  startTs: number;
  endTs: number;
  /** Rows per key at most. */
  limit: number;
  orderBy: 'ASC' | 'DESC';
}

/** Aggregation over buckets [start, end) of one device's time series (issue 11). */
export interface TimeseriesAggregateQuery {
  deviceId: string;
  keys: string[];
  buckets: [number, number][];
}

/** What the database computed for one key in one bucket; core derives ThingsBoard's value from it. */
export interface AggregateBucket {
  start: number;
  end: number;
  countBool: number;
  countString: number;
  countJson: number;
  countLong: number;
  countDouble: number;
  sumLong: number | null;
  sumDouble: number | null;
  minLong: number | null;
  maxLong: number | null;
  minDouble: number | null;
  maxDouble: number | null;
  minString: string | null;
  maxString: string | null;
}

/** Deletion of time series in [startTs, endTs). */
export interface TimeseriesDelete {
  deviceId: string;
  keys: string[];
  startTs: number;
  endTs: number;
  /** Also delete a latest value whose ts is in the range. */
  deleteLatest: boolean;
  /** Then replace it by the newest remaining point before startTs. */
  rewriteLatest: boolean;
}

/** Telemetry and attribute writes that are committed together (group commit). */
export interface WriteBatch {
  telemetry: TsPoint[];
  attributes: AttributeWrite[];
  /** Export outbox rows for these writes (issue 16), committed in the same transaction. */
  outbox?: OutboxEntry[];
}

/** Credentials a device replaced by rotation, still accepted until `expiresTime` (epoch ms). */
export interface CredentialsGrace {
  credentialsId: string;
  deviceId: string;
  credentialsType: CredentialsType;
  credentialsValue: string | null;
  expiresTime: number;
}

/** Raised by a store when a unique index rejects a write; `constraint` names the index. */
export class UniqueViolation extends Error {
  constructor(readonly constraint: 'device_name' | 'credentials_id' | 'provision_key' | 'profile_name' | 'user_email' | 'unknown', cause?: unknown) {
    super(`unique constraint violated: ${constraint}`, { cause });
    this.name = 'UniqueViolation';
  }
}

/** What became of one device of a bulk insert: created, or skipped because its name or its credentials were taken. */
export type DeviceInsertOutcome = 'created' | 'device_name' | 'credentials_id';

/** How a transaction may run (a hint; a store that cannot follow it runs the transaction as usual). */
export interface TransactionOptions {
  /**
   * Run the statements off the event loop where the store can (SQLite with its writer thread: on that thread; the
   * caller waits a round trip per statement but the statements and the commit use the second core). For groups of
   * writes whose caller waits for the commit anyway (provisioning groups); PostgreSQL ignores it.
   */
  offload?: boolean;
}

/**
 * The storage port. One Kysely implementation serves SQLite and PostgreSQL.
 * Methods that write several rows are atomic on their own; `transaction` groups calls.
 */
export interface Store {
  /** How many transactions can usefully run at once (SQLite: 1, one connection; PostgreSQL: about the pool size). */
  readonly transactionConcurrency: number;

  /** Runs `work` in one database transaction; it commits when `work` resolves and rolls back when it throws. */
  transaction<T>(work: (tx: Store) => Promise<T>, options?: TransactionOptions): Promise<T>;
  /**
   * Inside a transaction: runs `work` under a savepoint, undoing just its writes if it throws (the error is rethrown).
   * Outside a transaction it behaves like `transaction`.
   */
  savepoint<T>(work: (tx: Store) => Promise<T>): Promise<T>;

  // device profiles
  insertProfile(profile: DeviceProfile): Promise<void>;
  updateProfile(profile: DeviceProfile): Promise<void>;
  getProfile(tenantId: string, id: string): Promise<DeviceProfile | undefined>;
  findProfileByProvisionKey(key: string): Promise<DeviceProfile | undefined>;
  findDefaultProfile(tenantId: string): Promise<DeviceProfile | undefined>;
  /** The tenant's profile named `name` (names are unique per tenant). */
  findProfileByName(tenantId: string, name: string): Promise<DeviceProfile | undefined>;
  listProfiles(tenantId: string, query: PageQuery & { transportType?: string }): Promise<Page<DeviceProfile>>;
  /** Deletes the profile; false when it did not exist. Throws if devices still use it. */
  deleteProfile(tenantId: string, id: string): Promise<boolean>;
  countDevicesOfProfile(profileId: string): Promise<number>;

  // devices and their credentials
  insertDevice(device: Device, credentials: DeviceCredentials): Promise<void>;
  /**
   * Inserts many devices with their credentials in one transaction (bulk import), each unless its name or its
   * credentials are taken: the outcome per pair, in order. Never leaves a device without its credentials.
   */
  insertDevicesIfAbsent(pairs: { device: Device; credentials: DeviceCredentials }[]): Promise<DeviceInsertOutcome[]>;
  updateDevice(device: Device): Promise<void>;
  getDevice(tenantId: string, id: string): Promise<Device | undefined>;
  getDeviceById(id: string): Promise<Device | undefined>;
  findDeviceByName(tenantId: string, name: string): Promise<Device | undefined>;
  listDevices(tenantId: string, query: PageQuery & { profileId?: string }): Promise<Page<Device>>;
  /** Deletes the device and everything that belongs to it; false when it did not exist. */
  deleteDevice(tenantId: string, id: string): Promise<boolean>;
  getCredentialsOfDevice(deviceId: string): Promise<DeviceCredentials | undefined>;
  findCredentialsById(credentialsId: string): Promise<DeviceCredentials | undefined>;
  /** Replaces the credentials of `credentials.deviceId` (same row id). */
  updateCredentials(credentials: DeviceCredentials): Promise<void>;
  /** Sets firstUsedTime if it is still null. */
  markCredentialsUsed(credentialsRowId: string, time: number): Promise<void>;
  /** Rotation's grace period (migration 006): insert or replace, find unexpired, purge expired (and one device's). */
  insertCredentialsGrace(grace: CredentialsGrace): Promise<void>;
  findCredentialsGrace(credentialsId: string, now: number): Promise<CredentialsGrace | undefined>;
  deleteCredentialsGrace(now: number, deviceId?: string): Promise<string[]>;
  /** The current credentials id of each of `deviceIds` that has credentials (the catch-up after a bus outage). */
  currentCredentialsIds(deviceIds: readonly string[]): Promise<Map<string, string>>;

  // gateways (issue 14): a sub-device's gateway is its additionalInfo.lastConnectedGateway
  /** The tenant's devices named any of `names` (exact match); names without a device are absent. */
  findDevicesByNames(tenantId: string, names: readonly string[]): Promise<Device[]>;
  /** Number of sub-devices of a gateway. */
  countSubDevices(gatewayId: string): Promise<number>;
  /** A gateway's sub-devices that have a pending (QUEUED or SENT, unexpired) RPC. */
  listSubDevicesWithPendingRpc(gatewayId: string, now: number): Promise<Device[]>;

  // attributes
  saveAttributes(write: AttributeWrite): Promise<void>;
  /** Inserts one attribute unless the key exists; true when inserted (lets the database decide races). */
  insertAttributeIfAbsent(deviceId: string, scope: AttributeScope, entry: KvEntry, ts: number): Promise<boolean>;
  /** Many attributes at once, each unless its key exists (provisioning groups: kysely/provisioning-queries.ts). */
  insertAttributesIfAbsent(rows: readonly { deviceId: string; scope: AttributeScope; entry: KvEntry; ts: number }[]): Promise<void>;
  getAttributes(deviceId: string, scope: AttributeScope, keys?: string[]): Promise<AttributeEntry[]>;
  /** Deletes the keys; returns the keys that existed. */
  deleteAttributes(deviceId: string, scope: AttributeScope, keys: string[]): Promise<string[]>;

  // time series
  /** Writes telemetry (all values and the latest per key) and attributes in one transaction. */
  writeBatch(batch: WriteBatch): Promise<void>;
  getTimeseries(query: TimeseriesQuery): Promise<Map<string, { ts: number; value: KvEntry['value'] }[]>>;
  getLatestTimeseries(deviceId: string, keys?: string[]): Promise<Map<string, { ts: number; value: KvEntry['value'] }>>;
  listTimeseriesKeys(deviceId: string): Promise<string[]>;
  /** Per key, the aggregates of each bucket that has points (kysely/timeseries-aggregation.ts). */
  aggregateTimeseries(query: TimeseriesAggregateQuery): Promise<Map<string, AggregateBucket[]>>;
  deleteTimeseries(del: TimeseriesDelete): Promise<void>;
  /** Distinct time-series (latest) or attribute keys of at most 100 devices of the tenant or one profile, sorted. */
  listDeviceKeys(tenantId: string, profileId: string | undefined, kind: 'timeseries' | 'attributes'): Promise<string[]>;

  // RPC
  /** Inserts the request and assigns its integer `requestId`; returns the stored request. */
  insertRpc(rpc: Omit<RpcRequest, 'requestId'>): Promise<RpcRequest>;
  getRpc(id: string): Promise<RpcRequest | undefined>;
  findRpcByRequestId(deviceId: string, requestId: number): Promise<RpcRequest | undefined>;
  /** Sets the status (and response); with `onlyIf`, only while the current status is one of those (no lost reply). */
  updateRpcStatus(id: string, status: RpcStatus, response?: string | null, onlyIf?: readonly RpcStatus[]): Promise<void>;
  /** Requests still to deliver (QUEUED or SENT and not expired at `now`), oldest first. */
  listPendingRpc(deviceId: string, now: number): Promise<RpcRequest[]>;
  /** One page of a device's requests (newest first by default), optionally of one status only. */
  listRpcForDevice(tenantId: string, deviceId: string, query: PageQuery & { status?: RpcStatus }): Promise<Page<RpcRequest>>;
  /** Deletes one of the tenant's requests; false when it did not exist. */
  deleteRpc(tenantId: string, id: string): Promise<boolean>;
  /** RPCs past their expiry: QUEUED ones become EXPIRED, SENT or DELIVERED ones (no reply) TIMEOUT. */
  expireRpcs(now: number): Promise<void>;

  // users
  insertUser(user: User): Promise<void>;
  findUserByEmail(email: string): Promise<User | undefined>;
  getUser(id: string): Promise<User | undefined>;
  updateUserPassword(id: string, passwordHash: string): Promise<void>;
  countUsers(): Promise<number>;

  // audit
  insertAudit(entry: AuditEntry): Promise<void>;
  /** Many audit rows in multi-row statements, in order (provisioning groups). */
  insertAudits(entries: readonly AuditEntry[]): Promise<void>;
  listAudit(tenantId: string, query: PageQuery): Promise<Page<AuditEntry>>;

  /** Over-the-air update packages, assignments and rollout (src/core/ports/ota-store.ts), in this store's transaction. */
  readonly ota: OtaStore;

  /** Data out (issue 16): export rules, outbox, lanes, dead letters; inside a transaction, part of it. */
  readonly exports: ExportStore;

  /** Stores `value` under `key` unless one is stored already; returns the stored value (first writer wins). */
  initSetting(key: string, value: string): Promise<string>;

  // device infos and activity (issue 11; kysely/device-info-queries.ts)
  listDeviceInfos(tenantId: string, query: DeviceInfoQuery): Promise<Page<DeviceInfo>>;
  /** The console's device table (kysely/console-device-queries.ts). */
  listConsoleDevices(tenantId: string, query: ConsoleDeviceQuery): Promise<Page<ConsoleDeviceRow>>;
  getDeviceInfo(tenantId: string, id: string): Promise<DeviceInfo | undefined>;
  /** Names of the tenant's profiles that have devices, sorted. */
  listDeviceTypes(tenantId: string): Promise<string[]>;
  /** Stores activity reports (one per device), keeping the later of the stored and the reported time per column. */
  recordDeviceActivity(writes: DeviceActivityWrite[]): Promise<void>;
  getDeviceActivity(deviceId: string): Promise<DeviceActivity | undefined>;
  /** The tenant's devices among `ids` (unknown ids are left out). */
  getDevicesByIds(tenantId: string, ids: string[]): Promise<Device[]>;
  // API keys, token outdating, filtered audit (kysely/user-security-queries.ts)
  insertApiKey(key: ApiKey, valueHash: string): Promise<void>;
  updateApiKey(id: string, change: { description?: string; enabled?: boolean }): Promise<void>;
  getApiKey(id: string): Promise<ApiKey | undefined>;
  findApiKeyByHash(valueHash: string): Promise<ApiKey | undefined>;
  listApiKeys(userId: string, query: PageQuery): Promise<Page<ApiKey>>;
  deleteApiKey(id: string): Promise<boolean>;
  /** Outdates the user's tokens issued before `time` (ms). */
  setTokensValidAfter(userId: string, time: number): Promise<void>;
  listAuditFiltered(tenantId: string, query: AuditQuery): Promise<Page<AuditEntry>>;
  /** Makes the profile the tenant's only default one. */
  setDefaultProfile(tenantId: string, id: string): Promise<void>;

  /** Closes connections. */
  /** Resolves when the database answers a query now (GET /healthz); rejects otherwise. */
  ping(): Promise<void>;
  /** Commits a small write (issue 18: /healthz asks it while writes fail, to learn when they work again). */
  probeWrite(): Promise<void>;
  close(): Promise<void>;
}
