/**
 * Domain model shared by core, store and transports. Plain data, no behaviour.
 * Names and enum values follow ThingsBoard's (spec §2, §3) so JSON maps one to one.
 */

/** Provisioning strategy of a device profile (spec §3.1). */
export type ProvisionType =
  | 'DISABLED'
  | 'ALLOW_CREATE_NEW_DEVICES'
  | 'CHECK_PRE_PROVISIONED_DEVICES'
  | 'X509_CERTIFICATE_CHAIN';

export const PROVISION_TYPES: readonly ProvisionType[] = [
  'DISABLED',
  'ALLOW_CREATE_NEW_DEVICES',
  'CHECK_PRE_PROVISIONED_DEVICES',
  'X509_CERTIFICATE_CHAIN',
];

/** Device credentials type (spec §2.2 enum CredentialsType). */
export type CredentialsType = 'ACCESS_TOKEN' | 'X509_CERTIFICATE' | 'MQTT_BASIC' | 'LWM2M_CREDENTIALS';

export const CREDENTIALS_TYPES: readonly CredentialsType[] = [
  'ACCESS_TOKEN',
  'X509_CERTIFICATE',
  'MQTT_BASIC',
  'LWM2M_CREDENTIALS',
];

/** Attribute scopes, as ThingsBoard names them in its REST API. */
export type AttributeScope = 'CLIENT_SCOPE' | 'SHARED_SCOPE' | 'SERVER_SCOPE';

export const ATTRIBUTE_SCOPES: readonly AttributeScope[] = ['CLIENT_SCOPE', 'SHARED_SCOPE', 'SERVER_SCOPE'];

/** The id of the single tenant fleetgate serves today; every row carries a tenant id already. */
export const DEFAULT_TENANT_ID = '00000000-0000-4000-8000-000000000001';

export interface DeviceProfile {
  id: string;
  tenantId: string;
  name: string;
  /** Profile type, `DEFAULT` in ThingsBoard. */
  type: string;
  /** `DEFAULT`, `MQTT`, `COAP`, ... */
  transportType: string;
  description: string | null;
  isDefault: boolean;
  provisionType: ProvisionType;
  /** Globally unique; `null` for profiles without provisioning (spec §3.2). */
  provisionDeviceKey: string | null;
  /** ThingsBoard's `profileData` object, stored as given; `provisionConfiguration` lives inside. */
  profileData: ProfileData;
  createdTime: number;
}

export interface ProfileData {
  provisionConfiguration?: ProvisionConfiguration | null;
  [key: string]: unknown;
}

export interface ProvisionConfiguration {
  type: ProvisionType;
  provisionDeviceSecret: string | null;
  certificateRegExPattern?: string | null;
  allowCreateNewDevicesByX509Certificate?: boolean | null;
  [key: string]: unknown;
}

export interface Device {
  id: string;
  tenantId: string;
  profileId: string;
  name: string;
  /** ThingsBoard sets this to the profile name. */
  type: string;
  label: string | null;
  additionalInfo: Record<string, unknown> | null;
  /** True when provisioning created this device (lost-response retry, DESIGN improvement 3). */
  createdByProvisioning: boolean;
  createdTime: number;
}

export interface DeviceCredentials {
  id: string;
  deviceId: string;
  credentialsType: CredentialsType;
  /** The lookup key: the token, or a SHA3-256 hex for certificates and MQTT_BASIC (spec §6). */
  credentialsId: string;
  /** The certificate body or the MQTT_BASIC JSON; null for access tokens. */
  credentialsValue: string | null;
  createdTime: number;
  /** When these credentials first authenticated a connection; null while never used. */
  firstUsedTime: number | null;
}

/** A typed value, as ThingsBoard stores it (spec §8.2 value rules). */
export type KvValue =
  | { type: 'BOOLEAN'; value: boolean }
  | { type: 'LONG'; value: number | bigint }
  | { type: 'DOUBLE'; value: number }
  | { type: 'STRING'; value: string }
  | { type: 'JSON'; value: string };

export interface KvEntry {
  key: string;
  value: KvValue;
}

export interface TsPoint {
  deviceId: string;
  ts: number;
  key: string;
  value: KvValue;
}

export interface AttributeEntry {
  key: string;
  value: KvValue;
  lastUpdateTs: number;
}

export interface AttributeWrite {
  deviceId: string;
  scope: AttributeScope;
  entries: KvEntry[];
  ts: number;
}

export type RpcStatus = 'QUEUED' | 'SENT' | 'DELIVERED' | 'SUCCESSFUL' | 'TIMEOUT' | 'FAILED' | 'EXPIRED';

export interface RpcRequest {
  /** Stable uuid used by the admin API. */
  id: string;
  /** The integer id the device sees in topics and JSON (`v1/devices/me/rpc/request/{requestId}`). */
  requestId: number;
  deviceId: string;
  tenantId: string;
  method: string;
  /** JSON text of `params`. */
  params: string;
  oneway: boolean;
  expirationTime: number;
  status: RpcStatus;
  /** JSON text of the device's reply, if any. */
  response: string | null;
  createdTime: number;
}

export interface User {
  id: string;
  tenantId: string;
  email: string;
  /** `TENANT_ADMIN` or `SYS_ADMIN`. */
  authority: string;
  passwordHash: string;
  createdTime: number;
  /** Access and refresh tokens issued before this time (ms) are outdated (password change); 0 = none. */
  tokensValidAfter?: number;
}

export interface AuditEntry {
  id: string;
  tenantId: string;
  createdTime: number;
  entityType: string;
  entityId: string | null;
  entityName: string | null;
  userId: string | null;
  userName: string | null;
  actionType: string;
  /** JSON object describing the action; never contains a secret. */
  actionData: Record<string, unknown>;
  actionStatus: 'SUCCESS' | 'FAILURE';
  actionFailureDetails: string | null;
  /** Where the request came from (address, transport). */
  source: string | null;
}

export interface Page<T> {
  data: T[];
  totalPages: number;
  totalElements: number;
  hasNext: boolean;
}

export interface PageQuery {
  pageSize: number;
  page: number;
  textSearch?: string;
  sortProperty?: string;
  sortOrder?: 'ASC' | 'DESC';
}

/** A page query of the console's device table (GET /api/fleetgate/devices). */
export interface ConsoleDeviceQuery extends PageQuery {
  profileId?: string;
  /** true: devices seen at or after `activeSince`; false: the others. */
  active?: boolean;
  activeSince: number;
  /** true: devices with the provisionState attribute (they provisioned themselves); false: the others. */
  provisioned?: boolean;
}

/** A row of the console's device table. */
export interface ConsoleDeviceRow extends DeviceInfo {
  credentialsType: string | null;
  /** When the device provisioned itself and over which transport (from its PROVISION_SUCCESS audit row); null if it did not. */
  provisioned: { time: number; transport: string | null } | null;
}

/** When a device last connected, disconnected and showed activity, on any node (ms; null = never). */
export interface DeviceActivity {
  lastConnectTime: number | null;
  lastDisconnectTime: number | null;
  lastActivityTime: number | null;
}

/** A device with what ThingsBoard's DeviceInfo adds: its profile's name and its activity. */
export interface DeviceInfo extends Device {
  profileName: string;
  activity: DeviceActivity;
}

/** Filters of a device-info page (GET /api/tenant/deviceInfos). */
export interface DeviceInfoQuery extends PageQuery {
  profileId?: string;
  /** true: devices seen at or after `activeSince`; false: the others. */
  active?: boolean;
  /** Activity at or after this time (ms) counts as active. */
  activeSince: number;
}

/** An API key (ThingsBoard 4.3 ApiKeyInfo); the value itself is never stored, only its SHA-256. */
export interface ApiKey {
  id: string;
  tenantId: string;
  userId: string;
  description: string;
  enabled: boolean;
  /** ms; 0 = never expires. */
  expirationTime: number;
  createdTime: number;
}

/** Filters of an audit log page (GET /api/audit/logs, /entity/.., /user/..). */
export interface AuditQuery extends PageQuery {
  entityId?: string;
  userId?: string;
  /** Inclusive bounds on createdTime (ms). */
  startTime: number;
  endTime: number;
  actionTypes?: string[];
  /** Order when no sortProperty is given. */
  defaultOrder: 'ASC' | 'DESC';
}
