/**
 * What transports and the admin API may call on core. Core implements these in src/core/*;
 * transports depend on these types only, so each transport is a thin adapter (DESIGN "Rules of the house").
 */
import type {
  AttributeEntry,
  AttributeScope,
  AuditEntry,
  AuditQuery,
  CredentialsType,
  Device,
  DeviceCredentials,
  DeviceInfo,
  DeviceProfile,
  KvValue,
  Page,
  PageQuery,
  RpcRequest,
  RpcStatus,
  User,
} from './model.ts';

/**
 * Told how a submission ended, in place of a promise (TelemetryApi.ingestJsonTo, GroupCommitter.submitTo): one object a message instead of a promise, its two
 * resolving functions and the caller's reaction closures (the MQTT telemetry path, issue 17: less garbage per message).
 */
export interface CommitListener {
  /** The submission is committed (its CommittedHook has run). */
  committed(): void;
  /** The submission failed (nothing of it is committed), or its CommittedHook threw. */
  failed(err: unknown): void;
}

/** Which transport a request arrived on, and from where (for audit, logs and throttling). */
export interface RequestSource {
  transport: 'http' | 'mqtt' | 'coap' | 'admin' | 'cli';
  /** Remote address, e.g. `127.0.0.1`. */
  address?: string;
}

/** A provisioning request after parsing (spec §2.1, §2.2). Absent and JSON-null fields are `undefined` (DESIGN 1). */
export interface ProvisionRequest {
  provisionDeviceKey: string;
  provisionDeviceSecret: string;
  deviceName?: string;
  credentialsType?: CredentialsType;
  token?: string;
  clientId?: string;
  username?: string;
  password?: string;
  /** X.509 certificate (PEM or bare Base64), despite the name (spec §2.1). */
  hash?: string;
  /** A PEM certificate signing request, with credentialsType X509_CERTIFICATE (fleetgate's certificateSigning). */
  csr?: string;
  gateway?: boolean;
}

/** Stable machine codes added to every non-SUCCESS provisioning reply (DESIGN 2). */
export type ProvisionReason =
  | 'BAD_KEY_OR_SECRET'
  | 'PROVISIONING_DISABLED'
  | 'DEVICE_EXISTS'
  | 'ALREADY_PROVISIONED'
  | 'NOT_PRE_PROVISIONED'
  | 'EMPTY_NAME'
  | 'CREDENTIALS_IN_USE'
  | 'INVALID_CREDENTIALS'
  | 'UNSUPPORTED_STRATEGY'
  | 'RATE_LIMITED'
  /** X.509 chain provisioning (spec §7): no device name in the leaf's CN by the profile's certificateRegExPattern. */
  | 'CN_NOT_MATCHED'
  /** The profile's pre-provisioning hook denied the request (README "Pre-provisioning hook"). */
  | 'HOOK_DENIED'
  /** The hook could not be asked, was too slow or answered garbage, and the profile fails closed. */
  | 'HOOK_UNAVAILABLE'
  /** A CSR that is oversized, not PEM, unparseable, or whose signature does not verify. */
  | 'INVALID_CSR'
  /** A CSR sent to a profile without certificateSigning (or under a strategy that does not create devices). */
  | 'CSR_NOT_SUPPORTED';

export interface MqttBasicValue {
  clientId: string | null;
  userName: string | null;
  password: string | null;
}

export type ProvisionResult =
  | {
      status: 'SUCCESS';
      credentialsType: CredentialsType;
      /** Token, certificate body, or the MQTT_BASIC object; absent for LWM2M (spec §5.1). */
      credentialsValue?: string | MqttBasicValue;
      deviceId: string;
      deviceName: string;
    }
  | {
      status: 'NOT_FOUND' | 'FAILURE';
      reason: ProvisionReason;
      errorMsg: string;
      /** With reason RATE_LIMITED: seconds until the source or key may try again (HTTP Retry-After, CoAP Max-Age). */
      retryAfterSeconds?: number;
    };

/** An authenticated device, as a transport session holds it. */
export interface DeviceIdentity {
  deviceId: string;
  tenantId: string;
  deviceName: string;
  profileId: string;
  credentialsType: CredentialsType;
  /** The credentials id this session authenticated with (a rotated-away one during its grace period); its sessions end when they are replaced. */
  credentialsId?: string;
  /** The device is a gateway: its `additionalInfo.gateway` is JSON `true` (gateway spec §1.3), read at authentication. */
  gateway?: boolean;
}

/** A server-side RPC as delivered to a device. */
export interface RpcDelivery {
  requestId: number;
  method: string;
  params: unknown;
}

/** A shared-attribute push: `{"k":v,...}` or `{"deleted":["k",...]}` (spec §8.2). */
export type AttributeUpdate = Record<string, unknown>;

/** Callbacks a transport session registers to receive server -> device messages. */
export interface SessionHandlers {
  /** Set when the device subscribed to shared attribute updates. */
  onAttributes?: (update: AttributeUpdate) => void;
  /**
   * Set when the device subscribed to server RPC. Resolve when the request reached the device
   * (MQTT PUBACK, CoAP notification sent, HTTP long-poll answered); reject if it could not be sent.
   */
  onRpc?: (rpc: RpcDelivery) => Promise<void>;
  /** The device was deleted: the transport ends the session (HTTP long poll: 403 `Device was deleted!`, spec §8.3). */
  onDeviceDeleted?: () => void;
  /**
   * The credentials this session authenticated with were replaced (POST /api/device/credentials), on any node: the
   * transport ends the session so the device must authenticate again.
   */
  onCredentialsRevoked?: () => void;
  /**
   * The device was renamed, moved to another profile or handed to another gateway (admin API, on any node): `identity`
   * is what the session stands for from now on (its `gateway` flag and credentials stay as at authentication);
   * `lastConnectedGateway` is the gateway that owns the device now (null: none).
   */
  onDeviceUpdated?: (identity: DeviceIdentity, lastConnectedGateway: string | null) => void;
  /**
   * A gateway's sub-device session: the gateway it was opened for. After a bus outage the session is told an update
   * (onDeviceUpdated) when the device's owner is no longer this gateway (src/core/bus-catch-up.ts).
   */
  readonly subDeviceOf?: string;
}

export interface DeviceSessionHandle {
  /** Replaces the handlers (e.g. after SUBSCRIBE/UNSUBSCRIBE). Setting onRpc delivers pending RPCs. */
  update(handlers: SessionHandlers): void;
  close(): void;
}

export interface ProvisioningApi {
  /** Runs the provisioning algorithm (spec §4) in one transaction. Never throws for business outcomes. */
  provision(request: ProvisionRequest, source: RequestSource): Promise<ProvisionResult>;
}

/**
 * What X.509 certificate-chain provisioning decided for the chain of one TLS client (spec §7). The connection's
 * CONNECT then authenticates by the leaf's hash as always (spec §7 step 6), so only INVALID_CHAIN changes what the
 * transport does (it closes the connection).
 */
export type X509ChainResult =
  /** A presented certificate (`index` 0 = the leaf) is already a device's X509_CERTIFICATE credentials: nothing done. */
  | { status: 'REGISTERED'; index: number }
  /** A device was created with the leaf as its credentials (spec §6 side effects), or its certificate replaced. */
  | { status: 'CREATED' | 'ROTATED'; deviceId: string; deviceName: string }
  /** No presented certificate is registered or the trust anchor of an X509_CERTIFICATE_CHAIN profile. */
  | { status: 'NO_PROFILE' }
  /** A chain profile matched but no device could be provisioned; `detail` says why (for logs, never secret). */
  | { status: 'FAILURE'; reason: ProvisionReason; detail: string; profileId: string }
  /** A certificate is not signed by the next one, or the chain cannot be parsed (spec §7 step 3). */
  | { status: 'INVALID_CHAIN'; detail: string }
  /** The source is throttled (DESIGN 6): nothing was looked at. */
  | { status: 'RATE_LIMITED'; retryAfterSeconds: number };

export interface X509ChainProvisioningApi {
  /**
   * spec §7 steps 3-4: checks that each certificate is signed by the next, then for each certificate in order stops at
   * one that is registered, or provisions the leaf through the X509_CERTIFICATE_CHAIN profile whose key is its hash.
   * `chain` is leaf first, each entry PEM or the Base64 of the DER. Never throws for bad input.
   */
  provisionByChain(chain: readonly string[], source: RequestSource): Promise<X509ChainResult>;
}

/** A device transport, as a device profile's `transportType` names it. */
export type DeviceTransport = 'MQTT' | 'COAP' | 'HTTP';

/**
 * Device authentication. With `source` (its address), failures are counted and a source past the limit gets
 * AUTH_RATE_LIMITED before any lookup (DESIGN 6, src/core/throttle).
 */
export interface DeviceAuthApi {
  /**
   * Access-token authentication (HTTP, CoAP, MQTT username). Undefined when no such token. With `transport`, a device
   * whose profile allows only another transport is refused with SERVER_UNAVAILABLE (spec §8.1 step 3, §8.4).
   */
  byAccessToken(token: string, transport?: DeviceTransport, source?: RequestSource): Promise<DeviceIdentity | undefined>;
  /** MQTT basic authentication with spec §8.1 rules. Throws FleetgateError with the CONNACK-relevant code on failure. */
  byMqttCredentials(clientId: string, username: string | undefined, password: Buffer | string | undefined, source?: RequestSource): Promise<DeviceIdentity>;
  /** X.509 authentication by SHA3-256 hex of the certificate (spec §8.1). */
  byX509Hash(hash: string, transport?: DeviceTransport, source?: RequestSource): Promise<DeviceIdentity | undefined>;
}

export interface TelemetryApi {
  /** Parses telemetry JSON (all forms of spec §8.2) and resolves once it is committed. Throws MALFORMED_PAYLOAD/INVALID_ARGUMENT. */
  ingestJson(device: DeviceIdentity, json: string | Buffer): Promise<void>;
  /**
   * ingestJson telling `listener` instead of returning a promise (no promise, resolvers or reaction closures per
   * message: the MQTT hot path, issue 17). Never throws; every outcome, a malformed payload too, reaches the listener
   * after this call returns. Optional: callers fall back to ingestJson. With `start` and `end`, the payload is bytes
   * [start, end) of the Buffer `json` (the MQTT frame it arrived in: no view made per message), read during the call.
   */
  ingestJsonTo?(device: DeviceIdentity, json: string | Buffer, listener: CommitListener, start?: number, end?: number): void;
  /** Parses a client-attributes JSON object and resolves once committed. */
  saveClientAttributesJson(device: DeviceIdentity, json: string | Buffer): Promise<void>;
}

export interface AttributesApi {
  /** The device's view (spec §8.2 attribute response): `{"client":{..},"shared":{..}}`, empty parts omitted. Keys undefined = all. */
  getForDevice(deviceId: string, clientKeys?: string[], sharedKeys?: string[]): Promise<{ client?: Record<string, unknown>; shared?: Record<string, unknown> }>;
  get(deviceId: string, scope: AttributeScope, keys?: string[]): Promise<AttributeEntry[]>;
  /** Admin write; a SHARED_SCOPE write is pushed to the device's sessions. */
  save(device: Device, scope: AttributeScope, values: Record<string, unknown>): Promise<void>;
  delete(device: Device, scope: AttributeScope, keys: string[]): Promise<void>;
}

export interface RpcApi {
  /** Sends a server RPC and waits (two-way: for the reply; one-way: for delivery). Throws TIMEOUT. */
  send(device: Device, request: { method: string; params: unknown; timeout?: number; oneway: boolean }): Promise<{ rpc: RpcRequest; response?: unknown }>;
  /** A device's reply on `rpc/response/{requestId}`. */
  reply(deviceId: string, requestId: number, payload: string): Promise<void>;
  /**
   * Persistent RPC (ThingsBoard's RpcV2 `persistent: true`): stores the request as QUEUED and starts its delivery,
   * without waiting for it. `expirationTime` (epoch ms) overrides `timeout`. Delivery, reply and status go on as for any RPC.
   */
  submit(device: Device, request: RpcSubmission): Promise<RpcRequest>;
  /** One of the tenant's stored requests; NOT_FOUND otherwise. */
  get(tenantId: string, rpcId: string): Promise<RpcRequest>;
  /** One page of a device's stored requests, newest first by default; `status` filters. */
  listForDevice(device: Device, query: PageQuery & { status?: RpcStatus }): Promise<Page<RpcRequest>>;
  /** Deletes one of the tenant's requests (a pending one is then never delivered); NOT_FOUND otherwise. Returns it. */
  delete(tenantId: string, rpcId: string): Promise<RpcRequest>;
}

export interface RpcSubmission {
  method: string;
  params: unknown;
  oneway: boolean;
  timeout?: number;
  expirationTime?: number;
}

/** What a gateway's transport session receives for its sub-devices (gateway spec §2.7, §2.8). */
export interface GatewaySink {
  /** A shared-attribute update (or `{"deleted":[...]}`) of sub-device `device`. */
  attributes(device: string, update: AttributeUpdate): void;
  /** A server RPC to sub-device `device`; resolves when it reached the gateway (as SessionHandlers.onRpc). */
  rpc(device: string, rpc: RpcDelivery): Promise<void>;
}

/**
 * The answer to `v1/gateway/attributes/request` (gateway spec §2.6): `{"id","device"}` plus `"value"` (one key asked
 * for and found) or `"values"` (the keys found).
 */
export type GatewayAttributeResponse = { id: number; device: string; value?: unknown; values?: Record<string, unknown> };

/**
 * One gateway connection as core sees it: each method takes the raw payload of its `v1/gateway/*` topic, decides
 * everything (parsing, sub-device ownership and creation, limits) and resolves once what it wrote is committed.
 * Rejections are FleetgateErrors whose message says what was refused; nothing of a refused message is written.
 */
export interface GatewaySessionHandle {
  /** `v1/gateway/connect` `{"device","type"}`. */
  connect(payload: Buffer): Promise<void>;
  /** `v1/gateway/disconnect` `{"device"}`. */
  disconnect(payload: Buffer): Promise<void>;
  /** `v1/gateway/telemetry` `{"Dev A":[{"ts","values"}|{k:v}], ...}`: one group commit for the whole message. */
  telemetry(payload: Buffer): Promise<void>;
  /** `v1/gateway/attributes` `{"Dev A":{k:v}, ...}`: client attributes, one group commit. */
  attributes(payload: Buffer): Promise<void>;
  /** `v1/gateway/attributes/request`; the answer goes on `v1/gateway/attributes/response`. */
  attributeRequest(payload: Buffer): Promise<GatewayAttributeResponse>;
  /** `v1/gateway/rpc` `{"device","id","data"}`: a sub-device's reply to a server RPC. */
  rpcReply(payload: Buffer): Promise<void>;
  /** Names of the sub-devices with an open session on this connection. */
  subDevices(): string[];
  /**
   * Opens sessions for this gateway's sub-devices that have pending RPCs, so those are delivered now. Call it when the
   * gateway is ready for RPCs (MQTT: its first gateway PUBLISH or PINGREQ); later calls do nothing; a failed lookup is logged.
   */
  start(): void;
  /** The gateway device itself was renamed or moved profile (SessionHandlers.onDeviceUpdated of its own session). */
  gatewayUpdated(identity: DeviceIdentity): void;
  /** The gateway connection ended: every sub-device session closes. */
  close(): void;
}

export interface GatewayApi {
  /**
   * Opens the gateway session of an authenticated gateway connection (PERMISSION_DENIED for a device that is not a
   * gateway). Its `start()` then delivers the sub-devices' pending RPCs.
   */
  open(gateway: DeviceIdentity, sink: GatewaySink): GatewaySessionHandle;
}

export interface SessionsApi {
  /** Registers a live transport session for a device; server -> device messages reach it through `handlers`. */
  open(device: DeviceIdentity, handlers: SessionHandlers): DeviceSessionHandle;
  /** Number of open sessions on this node. */
  count(): number;
}

export type { AttributeEntry, AuditEntry, Device, DeviceCredentials, DeviceProfile, KvValue, Page, PageQuery, RpcRequest, User };

/** Who performs an admin action (for the audit log). */
export interface Actor {
  userId: string | null;
  userName: string | null;
  source: RequestSource;
}

/** A device profile as the admin API writes it (ThingsBoard JSON, `id` absent on create). */
export interface ProfileInput {
  id?: string;
  name: string;
  type?: string;
  transportType?: string;
  description?: string | null;
  default?: boolean;
  provisionType?: DeviceProfile['provisionType'] | null;
  provisionDeviceKey?: string | null;
  profileData?: DeviceProfile['profileData'] | null;
  /** OTA packages (spec thingsboard-ota §3): an id, null to clear, undefined to keep. */
  firmwareId?: string | null;
  softwareId?: string | null;
}

export interface DeviceInput {
  id?: string;
  name: string;
  type?: string;
  label?: string | null;
  deviceProfileId?: string;
  additionalInfo?: Record<string, unknown> | null;
  /** The device's own OTA packages (spec thingsboard-ota §3.1): an id, null to clear, undefined to keep. */
  firmwareId?: string | null;
  softwareId?: string | null;
}

export interface CredentialsInput {
  /** The credentials row id (`id.id`); when given it must be the device's (TB: `Unable to update non-existent device credentials!`). */
  id?: string;
  deviceId: string;
  credentialsType: CredentialsType;
  credentialsId?: string | null;
  credentialsValue?: string | null;
}

export interface ProfilesApi {
  /** Creates or updates (when `id` is set). Duplicate provision key -> ALREADY_EXISTS with ThingsBoard's message (spec §3.2). */
  save(tenantId: string, input: ProfileInput, actor: Actor): Promise<DeviceProfile>;
  get(tenantId: string, id: string): Promise<DeviceProfile>;
  /** `transportType` filters by exact transport type. */
  list(tenantId: string, query: PageQuery & { transportType?: string }): Promise<Page<DeviceProfile>>;
  delete(tenantId: string, id: string, actor: Actor): Promise<void>;
  /** The tenant's default profile, created on first use. */
  getDefault(tenantId: string): Promise<DeviceProfile>;
  /** Makes the profile the tenant's only default one; returns it. */
  setDefault(tenantId: string, id: string, actor: Actor): Promise<DeviceProfile>;
}

/** A device info with ThingsBoard's `active` flag (src/core/device-activity.ts defines it). */
export interface ActiveDeviceInfo extends DeviceInfo {
  active: boolean;
}

/** Device infos (ThingsBoard's DeviceInfo), device types and device activity (issue 11). */
export interface DeviceInfosApi {
  list(tenantId: string, query: PageQuery & { profileId?: string; active?: boolean }): Promise<Page<ActiveDeviceInfo>>;
  /** NOT_FOUND `Device with id [..] is not found`. */
  get(tenantId: string, id: string): Promise<ActiveDeviceInfo>;
  /** Names of the profiles that have devices, sorted. */
  types(tenantId: string): Promise<string[]>;
  /** Writes the activity held in memory now (tests, shutdown). */
  flushActivity(): Promise<void>;
}

export interface DevicesApi {
  /** Creates (with ACCESS_TOKEN credentials: `accessToken` or a generated one) or updates when `id` is set. */
  save(tenantId: string, input: DeviceInput, actor: Actor, accessToken?: string): Promise<Device>;
  get(tenantId: string, id: string): Promise<Device>;
  findByName(tenantId: string, name: string): Promise<Device>;
  list(tenantId: string, query: PageQuery & { profileId?: string }): Promise<Page<Device>>;
  delete(tenantId: string, id: string, actor: Actor): Promise<void>;
  getCredentials(tenantId: string, deviceId: string): Promise<DeviceCredentials>;
  /** Replaces a device's credentials, normalising ids as ThingsBoard does (SHA3 for X.509 and MQTT_BASIC). */
  saveCredentials(tenantId: string, input: CredentialsInput, actor: Actor): Promise<DeviceCredentials>;
  /** The tenant's devices among `ids`; unknown ids are left out. */
  getByIds(tenantId: string, ids: string[]): Promise<Device[]>;
  /**
   * TB saveDeviceWithCredentials: creates the device with exactly these credentials, or (with `device.id`) updates it
   * and replaces its credentials, in one transaction. A name clash is ALREADY_EXISTS unless `naming` uniquifies it.
   */
  saveWithCredentials(tenantId: string, device: DeviceInput, credentials: Omit<CredentialsInput, 'deviceId'>, actor: Actor, naming?: NameConflictPolicy): Promise<Device>;
  /** Bulk pre-provisioning into a CHECK_PRE_PROVISIONED_DEVICES profile, in batches (src/core/device-import.ts). */
  importDevices(tenantId: string, profileId: string, rows: DeviceImportRow[], actor: Actor, options?: ImportOptions): Promise<DeviceImportResult>;
  /** Names and credentials of the devices of one profile (or all), oldest first, for the factory. */
  exportDevices(tenantId: string, profileId: string | undefined, actor: Actor): Promise<DeviceExportRow[]>;
}

/** TB's NameConflictStrategy: on a name clash, FAIL, or rename to `<name><separator><suffix>`. */
export interface NameConflictPolicy {
  policy: 'FAIL' | 'UNIQUIFY';
  separator: string;
  /** RANDOM: 6 random alphanumerics; INCREMENTAL: 1, 2, ... */
  strategy: 'RANDOM' | 'INCREMENTAL';
}

/** One device to import. Credentials: `accessToken`, or MQTT_BASIC `clientId`/`username`/`password`, or `certificate`; none = a generated token. */
export interface DeviceImportRow {
  /** Where the row came from (a CSV line number), echoed in the result. */
  line: number;
  name: string;
  /** Must be empty or the profile's name (a device's type is its profile name). */
  type?: string;
  label?: string;
  accessToken?: string;
  clientId?: string;
  username?: string;
  password?: string;
  /** X.509 certificate, PEM or bare Base64. */
  certificate?: string;
  /** `true` makes the device a gateway (`additionalInfo.gateway`; ThingsBoard's column IS_GATEWAY); empty or `false`: not. */
  isGateway?: string;
}

export interface ImportOptions {
  /** Devices per transaction (default 1000, at most 10000). */
  batchSize?: number;
  /** Called after each batch with the rows handled so far. */
  onProgress?: (done: number, total: number) => void;
}

/** What an import did: devices created, rows skipped because the name exists, rows rejected with the reason. */
export interface DeviceImportResult {
  created: number;
  duplicates: { line: number; name: string }[];
  rejected: { line: number; name: string | null; error: string }[];
}

/** A device with its credentials as the import columns name them (so an export can be imported again). */
export interface DeviceExportRow {
  name: string;
  type: string;
  label: string;
  credentialsType: string;
  accessToken?: string;
  clientId?: string;
  username?: string;
  password?: string;
  certificate?: string;
  /** The device's own provisioning secret when its profile uses secretDerivation HMAC_SHA256 (derived-secret.ts). */
  provisionDeviceSecret?: string;
}

export interface TimeseriesReadApi {
  /** Values per key within [startTs, endTs], newest first unless orderBy ASC; `limit` per key (default 100). */
  get(deviceId: string, query: { keys: string[]; startTs: number; endTs: number; limit?: number; orderBy?: 'ASC' | 'DESC' }): Promise<Record<string, { ts: number; value: KvValue }[]>>;
  latest(deviceId: string, keys?: string[]): Promise<Record<string, { ts: number; value: KvValue }[]>>;
  keys(deviceId: string): Promise<string[]>;
}

export interface UsersApi {
  /**
   * Checks email and password; undefined when they do not match (compares in constant time). With `source`, failures
   * count against that address like device-auth failures, and a blocked address gets AUTH_RATE_LIMITED (DESIGN 6).
   */
  verify(email: string, password: string, source?: RequestSource): Promise<User | undefined>;
  get(id: string): Promise<User | undefined>;
  /** Creates the administrator on first start; returns the generated password when none was given. */
  ensureAdmin(email: string, password: string | undefined): Promise<{ created: boolean; generatedPassword?: string }>;
  setPassword(email: string, password: string): Promise<void>;
}

export interface AuditApi {
  list(tenantId: string, query: PageQuery): Promise<Page<AuditEntry>>;
  /** TB's audit filters: entity, user, time range, action types, text search, sort. */
  search(tenantId: string, query: AuditQuery): Promise<Page<AuditEntry>>;
  record(entry: Omit<AuditEntry, 'id' | 'createdTime'>): Promise<void>;
}
