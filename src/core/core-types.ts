import type {
  ProvisionResult,
  RequestSource,
  AttributesApi,
  AuditApi,
  DeviceAuthApi,
  DeviceInfosApi,
  DevicesApi,
  GatewayApi,
  ProfilesApi,
  ProvisioningApi,
  RpcApi,
  SessionsApi,
  TelemetryApi,
  TimeseriesReadApi,
  UsersApi,
  X509ChainProvisioningApi,
} from './api.ts';
import type { ConsoleDevicesApi } from './console-devices.ts';
import type { LiveUpdatesApi } from './live-updates.ts';

import type { DeviceBulkImport } from './bulk-import.ts';
import type { Ota } from './ota/ota.ts';
import type { CredentialsRotationApi } from './provisioning/rotation.ts';
import type { Exporter } from './export/exporter.ts';
import type { ExportSettings } from './export/delivery.ts';
import type { TimeseriesAdmin } from './timeseries-admin.ts';
import type { UserSecurity } from './user-security.ts';

/** Everything core offers, wired over one Store and one Bus. Built by `createCore` (src/core/core.ts). */
export interface Core {
  provisioning: ProvisioningApi;
  /** Device-initiated credentials rotation and the profile-wide rotation requirement (provisioning/rotation.ts). */
  rotation: CredentialsRotationApi;
  /** X.509 certificate-chain provisioning (spec §7), used by the MQTT TLS listener before CONNECT. */
  x509Provisioning: X509ChainProvisioningApi;
  auth: DeviceAuthApi;
  telemetry: TelemetryApi;
  attributes: AttributesApi;
  rpc: RpcApi;
  /** ThingsBoard's MQTT gateway API: sub-devices behind a gateway connection (issue 14). */
  gateway: GatewayApi;
  sessions: SessionsApi;
  profiles: ProfilesApi;
  devices: DevicesApi;
  /** ThingsBoard DeviceInfo reads and device types (issue 11). */
  deviceInfos: DeviceInfosApi;
  /** The web console's device table (issue 12). */
  consoleDevices: ConsoleDevicesApi;
  /** ThingsBoard's device bulk import (POST /api/device/bulk_import). */
  bulkImport: Pick<DeviceBulkImport, 'run'>;
  /** History reads with aggregation, deletion, server-side writes and key lists (TelemetryController, issue 11). */
  timeseriesAdmin: TimeseriesAdmin;
  /** Password change with token outdating, API keys (issue 11). */
  userSecurity: UserSecurity;
  timeseries: TimeseriesReadApi;
  users: UsersApi;
  audit: AuditApi;
  /** Committed telemetry and attribute changes as they happen, on any node (the WebSocket telemetry API). */
  live: LiveUpdatesApi;
  /** Over-the-air updates: packages, assignment, paced rollout, device downloads (spec thingsboard-ota). */
  ota: Ota;
  /** Data out (issue 16): export rules, dead letters, and the delivery loop. */
  exports: Exporter;
  /** Commits pending telemetry and stops timers; the store and bus are closed by their owner. */
  close(): Promise<void>;
}

/** Settings core needs from the configuration. */
export interface CoreSettings {
  batchMaxRows: number;
  batchMaxDelayMs: number;
  /** Shortest time between the starts of two telemetry commits, ms (GroupCommitSettings.minIntervalMs; default 0). */
  batchIntervalMs?: number;
  /** How often RPCs past their expiry get their end state (EXPIRED / TIMEOUT), ms (default 5000). */
  rpcExpirySweepMs?: number;
  rpcDefaultTimeout: number;
  /** DESIGN 3: how old a provisioned device must be before a repeat request counts as a lost-response retry. */
  provisionRetryAfterMs: number;
  /** A device is active this long after its last activity, ms (default 600000, ThingsBoard's default). */
  deviceInactivityTimeoutMs?: number;
  /** Longest delay before device activity is written, ms (default 1000). */
  deviceActivityFlushMs?: number;
  /** How long another node's live-subscriber announcement counts without a refresh, ms (default 30000). */
  liveInterestTtlMs?: number;
  /** OTA rollout pacing: devices per group (TB 100) and time per group, ms (TB 60000); largest package, bytes. */
  otaRolloutGroupSize?: number;
  otaRolloutIntervalMs?: number;
  otaMaxPackageBytes?: number;
  /** Gateway limits (issue 14); absent fields take DEFAULT_GATEWAY_LIMITS. */
  gateway?: { maxSubDevices?: number; maxDevicesPerMessage?: number; maxNameLength?: number };
  /** Key that encrypts CA keys stored in profiles (certificateSigning); default: generated once per database. */
  caKeyEncryptionKey?: string;
  /** How long credentials replaced by a device's rotation keep working, ms (default 3600000). */
  credentialsRotationGraceMs?: number;
  /** Pre-provisioning hook calls in flight at once on this node (default 16); more wait within their timeout. */
  provisionHookConcurrency?: number;
  /** Data out (issue 16): delivery settings; defaults in DEFAULT_EXPORT_SETTINGS. */
  export?: Partial<ExportSettings>;
}

/** The logging surface core uses (a pino logger fits). */
export interface CoreLogger {
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
  error(obj: object, msg?: string): void;
  debug(obj: object, msg?: string): void;
}

/**
 * Optional observer of domain outcomes (the composition root turns them into metrics). Called synchronously;
 * it must not throw. Core stays free of any metrics library.
 */
export interface CoreObserver {
  /** A provisioning request was decided (`result`), or failed with an error (`result` undefined). */
  provisioned?(transport: RequestSource['transport'], result: ProvisionResult | undefined): void;
  /** One telemetry message with `points` data points was committed. */
  telemetryCommitted?(points: number): void;
  /** An operation failed because `part` is down (issue 18). */
  dependencyFailed?(part: 'database' | 'bus'): void;
  /** `part` went down (`up` false) or works again. */
  dependencyState?(part: 'database' | 'bus', up: boolean): void;
  /** A pre-provisioning hook call ended (`allowed`, `denied`, `unavailable`, `failedOpen`) after `seconds`. */
  provisionHookCalled?(outcome: string, seconds: number): void;
  /** An OTA chunk (or a whole package) of `bytes` was read for a device download. */
  otaServed?(bytes: number): void;
  /** A change notice (bus message `kind`) could not be published; the change is saved and it is published again later. */
  busPublishFailed?(kind: string): void;
}
