/** ThingsBoard JSON shapes the console reads (thingsboard-rest.md). */
export interface EntityId {
  entityType?: string;
  id: string;
}

export interface PageData<T> {
  data: T[];
  totalPages: number;
  totalElements: number;
  hasNext: boolean;
}

export type ProvisionType = 'DISABLED' | 'ALLOW_CREATE_NEW_DEVICES' | 'CHECK_PRE_PROVISIONED_DEVICES' | 'X509_CERTIFICATE_CHAIN';

export interface DeviceProfile {
  id?: EntityId;
  createdTime?: number;
  name: string;
  description?: string | null;
  type?: string;
  transportType?: string;
  default?: boolean;
  provisionType: ProvisionType;
  provisionDeviceKey: string | null;
  profileData: {
    provisionConfiguration?: {
      type: ProvisionType;
      provisionDeviceSecret: string | null;
      certificateRegExPattern?: string | null;
      allowCreateNewDevicesByX509Certificate?: boolean | null;
    } | null;
    [key: string]: unknown;
  } | null;
}

export interface Device {
  id: EntityId;
  createdTime: number;
  name: string;
  type: string;
  label: string | null;
  deviceProfileId: EntityId;
  additionalInfo: Record<string, unknown> | null;
  /** DeviceInfo only (GET /api/tenant/deviceInfos). */
  deviceProfileName?: string;
  active?: boolean;
}

export interface DeviceCredentials {
  id: { id: string };
  deviceId: EntityId;
  credentialsType: 'ACCESS_TOKEN' | 'MQTT_BASIC' | 'X509_CERTIFICATE' | 'LWM2M_CREDENTIALS';
  credentialsId: string;
  credentialsValue: string | null;
}

export interface AuditLog {
  id: { id: string };
  createdTime: number;
  entityId: EntityId | null;
  entityName: string | null;
  userName: string | null;
  actionType: string;
  actionData: unknown;
  actionStatus: 'SUCCESS' | 'FAILURE';
  actionFailureDetails: string | null;
}

export interface ImportResult {
  created: number;
  skipped: number;
  rejected: number;
  duplicates: { line: number; name: string | null }[];
  errors: { line: number; name: string | null; error: string }[];
}

/** An export rule as /api/export/rule(s) answer it: secrets are masked by the server (`********`). */
export type ExportKind = 'telemetry' | 'attributes' | 'provisioning' | 'connectivity' | 'rpc';

export type ExportDestination =
  | { type: 'webhook'; url: string; secret: string | null; headers: Record<string, string>; batchSize: number; timeoutMs: number }
  | { type: 'redis-stream'; url: string; stream: string; maxLen: number; batchSize: number; timeoutMs: number };

export interface ExportRule {
  id: EntityId;
  createdTime: number;
  name: string;
  deviceProfileId: EntityId | null;
  kinds: ExportKind[];
  destination: ExportDestination;
  enabled: boolean;
  pending: number;
  /** Delivery lanes, 1..16. */
  lanes: number;
  /** GET /api/export/rule/{id} only: each delivery lane's state. */
  laneStates?: { partition: number; attempts: number; nextAttemptTime: number; lastError: string | null; leased: boolean }[];
}

export interface DeadLetter {
  seq: number;
  ruleId: string;
  kind: string;
  deviceId: string | null;
  createdTime: number;
  deadTime: number;
  attempts: number;
  lastError: string | null;
  data: unknown;
}
