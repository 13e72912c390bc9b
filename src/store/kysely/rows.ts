/** Row <-> model mapping for entity tables. */
import type { AuditEntry, Device, DeviceCredentials, DeviceProfile, RpcRequest, User } from '../../core/model.ts';
import type { Selectable } from 'kysely';
import type { AuditLogTable, DeviceCredentialsTable, DeviceProfileTable, DeviceTable, RpcTable, UsersTable } from '../schema.ts';

const num = (v: unknown): number => (typeof v === 'number' ? v : Number(v));
const numOrNull = (v: unknown): number | null => (v === null || v === undefined ? null : num(v));

export function profileToRow(p: DeviceProfile): DeviceProfileTable {
  return {
    id: p.id,
    tenant_id: p.tenantId,
    name: p.name,
    type: p.type,
    transport_type: p.transportType,
    description: p.description,
    is_default: p.isDefault ? 1 : 0,
    provision_type: p.provisionType,
    provision_device_key: p.provisionDeviceKey,
    profile_data: JSON.stringify(p.profileData ?? {}),
    created_time: p.createdTime,
  };
}

export function rowToProfile(r: Selectable<DeviceProfileTable>): DeviceProfile {
  return {
    id: r.id,
    tenantId: r.tenant_id,
    name: r.name,
    type: r.type,
    transportType: r.transport_type,
    description: r.description,
    isDefault: num(r.is_default) === 1,
    provisionType: r.provision_type as DeviceProfile['provisionType'],
    provisionDeviceKey: r.provision_device_key,
    profileData: JSON.parse(r.profile_data),
    createdTime: num(r.created_time),
  };
}

export function deviceToRow(d: Device): DeviceTable {
  return {
    id: d.id,
    tenant_id: d.tenantId,
    profile_id: d.profileId,
    name: d.name,
    type: d.type,
    label: d.label,
    additional_info: d.additionalInfo === null ? null : JSON.stringify(d.additionalInfo),
    created_by_provisioning: d.createdByProvisioning ? 1 : 0,
    created_time: d.createdTime,
  };
}

export function rowToDevice(r: Selectable<DeviceTable>): Device {
  return {
    id: r.id,
    tenantId: r.tenant_id,
    profileId: r.profile_id,
    name: r.name,
    type: r.type,
    label: r.label,
    additionalInfo: r.additional_info === null ? null : JSON.parse(r.additional_info),
    createdByProvisioning: num(r.created_by_provisioning) === 1,
    createdTime: num(r.created_time),
  };
}

export function credentialsToRow(c: DeviceCredentials): DeviceCredentialsTable {
  return {
    id: c.id,
    device_id: c.deviceId,
    credentials_type: c.credentialsType,
    credentials_id: c.credentialsId,
    credentials_value: c.credentialsValue,
    created_time: c.createdTime,
    first_used_time: c.firstUsedTime,
  };
}

export function rowToCredentials(r: Selectable<DeviceCredentialsTable>): DeviceCredentials {
  return {
    id: r.id,
    deviceId: r.device_id,
    credentialsType: r.credentials_type as DeviceCredentials['credentialsType'],
    credentialsId: r.credentials_id,
    credentialsValue: r.credentials_value,
    createdTime: num(r.created_time),
    firstUsedTime: numOrNull(r.first_used_time),
  };
}

export function rowToRpc(r: Selectable<RpcTable>): RpcRequest {
  return {
    id: r.id,
    requestId: num(r.request_id),
    deviceId: r.device_id,
    tenantId: r.tenant_id,
    method: r.method,
    params: r.params,
    oneway: num(r.oneway) === 1,
    expirationTime: num(r.expiration_time),
    status: r.status as RpcRequest['status'],
    response: r.response,
    createdTime: num(r.created_time),
  };
}

export function rowToUser(r: Selectable<UsersTable>): User {
  return {
    id: r.id,
    tenantId: r.tenant_id,
    email: r.email,
    authority: r.authority,
    passwordHash: r.password_hash,
    createdTime: num(r.created_time),
    ...(num(r.tokens_valid_after ?? 0) > 0 ? { tokensValidAfter: num(r.tokens_valid_after) } : {}),
  };
}

export function auditToRow(a: AuditEntry): Omit<AuditLogTable, 'seq'> {
  return {
    id: a.id,
    tenant_id: a.tenantId,
    created_time: a.createdTime,
    entity_type: a.entityType,
    entity_id: a.entityId,
    entity_name: a.entityName,
    user_id: a.userId,
    user_name: a.userName,
    action_type: a.actionType,
    action_data: JSON.stringify(a.actionData),
    action_status: a.actionStatus,
    action_failure_details: a.actionFailureDetails,
    source: a.source,
  };
}

export function rowToAudit(r: Selectable<AuditLogTable>): AuditEntry {
  return {
    id: r.id,
    tenantId: r.tenant_id,
    createdTime: num(r.created_time),
    entityType: r.entity_type,
    entityId: r.entity_id,
    entityName: r.entity_name,
    userId: r.user_id,
    userName: r.user_name,
    actionType: r.action_type,
    actionData: JSON.parse(r.action_data),
    actionStatus: r.action_status as AuditEntry['actionStatus'],
    actionFailureDetails: r.action_failure_details,
    source: r.source,
  };
}
