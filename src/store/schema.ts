/** Kysely table types: the database schema as TypeScript sees it. */
import type { Generated } from 'kysely';

export interface UsersTable {
  id: string;
  tenant_id: string;
  email: string;
  authority: string;
  password_hash: string;
  created_time: number;
  /** Migration 003: JWTs issued before this time (ms) are outdated. */
  tokens_valid_after: Generated<number>;
}

export interface DeviceProfileTable {
  id: string;
  tenant_id: string;
  name: string;
  type: string;
  transport_type: string;
  description: string | null;
  is_default: number;
  provision_type: string;
  provision_device_key: string | null;
  profile_data: string;
  created_time: number;
}

export interface DeviceTable {
  id: string;
  tenant_id: string;
  profile_id: string;
  name: string;
  type: string;
  label: string | null;
  additional_info: string | null;
  created_by_provisioning: number;
  created_time: number;
  /** The gateway whose sub-device this is: `additionalInfo.lastConnectedGateway`, as a column (migration 005). */
  gateway_id?: string | null;
}

export interface DeviceCredentialsTable {
  id: string;
  device_id: string;
  credentials_type: string;
  credentials_id: string;
  credentials_value: string | null;
  created_time: number;
  first_used_time: number | null;
}

/** Value columns shared by attributes and time series; exactly one is non-null. */
export interface ValueColumns {
  bool_v: number | null;
  long_v: number | bigint | null;
  dbl_v: number | null;
  str_v: string | null;
  json_v: string | null;
}

export interface AttributeKvTable extends ValueColumns {
  device_id: string;
  scope: string;
  key: string;
  last_update_ts: number;
}

export interface TsKvTable extends ValueColumns {
  device_id: string;
  key: string;
  ts: number;
}

/** SQLite only: telemetry staged in arrival order, merged into ts_kv in large batches (kysely/sqlite-staging.ts). */
export interface TsKvRecentTable extends TsKvTable {
  seq: Generated<number>;
}

/** SQLite only: a dense batch's numeric series, one row per series and commit (kysely/ts-kv-chunk-format.ts). */
export interface TsKvChunkTable {
  /** The rowid: write order (a later chunk's point of a (device, key, ts) wins). */
  seq: Generated<number>;
  device_id: string;
  key: string;
  first_ts: number;
  last_ts: number;
  /** ChunkType: what `points` holds after the timestamps. */
  type: number;
  points: Uint8Array;
}

export interface RpcTable {
  request_id: Generated<number>;
  id: string;
  device_id: string;
  tenant_id: string;
  method: string;
  params: string;
  oneway: number;
  expiration_time: number;
  status: string;
  response: string | null;
  created_time: number;
}

export interface AuditLogTable {
  /** Insertion order; the uuid `id` is not indexed. */
  seq: Generated<number>;
  id: string;
  tenant_id: string;
  created_time: number;
  entity_type: string;
  entity_id: string | null;
  entity_name: string | null;
  user_id: string | null;
  user_name: string | null;
  action_type: string;
  action_data: string;
  action_status: string;
  action_failure_details: string | null;
  source: string | null;
}

/** Credentials replaced by rotation, accepted until expires_time (migration 006). */
export interface CredentialsGraceTable {
  credentials_id: string;
  device_id: string;
  credentials_type: string;
  credentials_value: string | null;
  expires_time: number;
}

export interface SettingsTable {
  key: string;
  value: string;
}

/** Migration 003: when a device last connected, disconnected and showed activity (any node). */
export interface DeviceActivityTable {
  device_id: string;
  last_connect_time: number | null;
  last_disconnect_time: number | null;
  last_activity_time: number | null;
}

/** Migration 003: API keys (ThingsBoard 4.3); only the SHA-256 of the value is stored. */
export interface ApiKeyTable {
  id: string;
  tenant_id: string;
  user_id: string;
  value_hash: string;
  description: string;
  enabled: number;
  expiration_time: number;
  created_time: number;
}

/** OTA packages (migration 004); bytes in ota_package_chunk under `blob_id`. */
export interface OtaPackageTable {
  id: string;
  tenant_id: string;
  device_profile_id: string | null;
  type: string;
  title: string;
  version: string;
  tag: string | null;
  url: string | null;
  file_name: string | null;
  content_type: string | null;
  checksum_algorithm: string | null;
  checksum: string | null;
  data_size: number | null;
  blob_id: string | null;
  additional_info: string | null;
  created_time: number;
}

export interface OtaBlobTable {
  id: string;
  created_time: number;
}

export interface OtaPackageChunkTable {
  blob_id: string;
  idx: number;
  data: Buffer;
}

export interface OtaAssignmentTable {
  target_id: string;
  target_kind: string;
  ota_type: string;
  package_id: string;
}

export interface OtaRolloutQueueTable {
  device_id: string;
  ota_type: string;
  package_id: string;
  queued_ts: number;
  lease_until: number;
}

export interface OtaRolloutPacerTable {
  id: string;
  next_at: number;
}

export interface ExportRuleTable {
  id: string;
  tenant_id: string;
  name: string;
  profile_id: string | null;
  /** JSON array of ExportKind. */
  kinds: string;
  /** JSON of ExportDestination. */
  destination: string;
  enabled: number;
  created_time: number;
  /** Delivery lanes, 1..16 (migration 016; 16 for rules of earlier releases). */
  lanes: number;
  /** The first lane's partition number: 0 or 16, flipped by each change of `lanes` (migration 016). */
  lane_base: number;
}

export interface ExportOutboxTable {
  seq: Generated<number>;
  rule_id: string;
  part: number;
  device_id: string | null;
  kind: string;
  created_time: number;
  payload: string;
  /** Messages in the row (migration 012); a row of several holds one line per message: device id, tab, data JSON. */
  messages: Generated<number>;
  /** Telemetry in the compact form (migration 013, src/core/export/compact-telemetry.ts); null: the text form. */
  points: Buffer | null;
}

export interface ExportLaneTable {
  rule_id: string;
  part: number;
  owner: string | null;
  lease_until: number;
  attempts: number;
  next_attempt_time: number;
  last_error: string | null;
}

export interface ExportDeadLetterTable {
  seq: number;
  rule_id: string;
  part: number;
  device_id: string | null;
  kind: string;
  created_time: number;
  payload: string;
  attempts: number;
  last_error: string | null;
  dead_time: number;
}

export interface Database {
  users: UsersTable;
  device_profile: DeviceProfileTable;
  device: DeviceTable;
  device_credentials: DeviceCredentialsTable;
  attribute_kv: AttributeKvTable;
  ts_kv: TsKvTable;
  ts_kv_latest: TsKvTable;
  ts_kv_recent: TsKvRecentTable;
  ts_kv_chunk: TsKvChunkTable;
  rpc: RpcTable;
  audit_log: AuditLogTable;
  settings: SettingsTable;
  device_activity: DeviceActivityTable;
  api_key: ApiKeyTable;
  ota_package: OtaPackageTable;
  ota_blob: OtaBlobTable;
  ota_package_chunk: OtaPackageChunkTable;
  ota_assignment: OtaAssignmentTable;
  ota_rollout_queue: OtaRolloutQueueTable;
  ota_rollout_pacer: OtaRolloutPacerTable;
  credentials_grace: CredentialsGraceTable;
  export_rule: ExportRuleTable;
  export_outbox: ExportOutboxTable;
  export_lane: ExportLaneTable;
  export_dead_letter: ExportDeadLetterTable;
}
