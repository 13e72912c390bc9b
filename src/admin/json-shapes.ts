/**
 * Renders domain objects as ThingsBoard's REST JSON (Device, DeviceProfile, DeviceCredentials,
 * User, AuditLog, PageData), so scripts written for ThingsBoard's admin API read them unchanged.
 * Fields fleetgate does not model (firmware, dashboards, rule chains, customers) are rendered as
 * ThingsBoard renders them when unset.
 */
import type { ActiveDeviceInfo } from '../core/api.ts';
import type { ApiKey, AuditEntry, Device, DeviceCredentials, DeviceProfile, Page, User } from '../core/model.ts';

/** ThingsBoard's NULL_UUID: the customer id of a device that is not assigned to a customer. */
export const NULL_UUID = '13814000-1dd2-11b2-8080-808080808080';

/** Entity types that appear in rendered ids. */
export type EntityType = 'DEVICE' | 'DEVICE_PROFILE' | 'TENANT' | 'CUSTOMER' | 'USER' | 'RPC' | 'API_KEY';

/** An entity id as ThingsBoard renders it: `{"entityType":"DEVICE","id":"<uuid>"}`. */
export interface EntityIdJson {
  entityType: EntityType;
  id: string;
}

/** Builds an entity id object. */
export function entityId(entityType: EntityType, id: string): EntityIdJson {
  return { entityType, id };
}

/** ThingsBoard `PageData`: `{"data":[..],"totalPages":n,"totalElements":n,"hasNext":b}`. */
export function pageJson<T, R>(page: Page<T>, render: (item: T) => R): { data: R[]; totalPages: number; totalElements: number; hasNext: boolean } {
  return {
    data: page.data.map(render),
    totalPages: page.totalPages,
    totalElements: page.totalElements,
    hasNext: page.hasNext,
  };
}

/** ThingsBoard `Device` JSON. */
export function deviceJson(device: Device): Record<string, unknown> {
  return {
    id: entityId('DEVICE', device.id),
    createdTime: device.createdTime,
    additionalInfo: device.additionalInfo,
    tenantId: entityId('TENANT', device.tenantId),
    customerId: entityId('CUSTOMER', NULL_UUID),
    name: device.name,
    type: device.type,
    label: device.label,
    deviceProfileId: entityId('DEVICE_PROFILE', device.profileId),
    deviceData: { configuration: { type: 'DEFAULT' }, transportConfiguration: { type: 'DEFAULT' } },
    firmwareId: null,
    softwareId: null,
    externalId: null,
  };
}

/**
 * ThingsBoard `DeviceInfo` JSON: a Device plus `customerTitle`, `customerIsPublic` (fleetgate has no customers),
 * `deviceProfileName` and `active`; fleetgate adds the activity times ThingsBoard keeps as server attributes.
 */
export function deviceInfoJson(info: ActiveDeviceInfo): Record<string, unknown> {
  return {
    ...deviceJson(info),
    customerTitle: null,
    customerIsPublic: false,
    deviceProfileName: info.profileName,
    active: info.active,
    lastActivityTime: info.activity.lastActivityTime,
    lastConnectTime: info.activity.lastConnectTime,
    lastDisconnectTime: info.activity.lastDisconnectTime,
  };
}

/** ThingsBoard `EntitySubtype` JSON (GET /api/device/types). */
export function deviceTypeJson(tenantId: string, type: string): Record<string, unknown> {
  return { tenantId: entityId('TENANT', tenantId), entityType: 'DEVICE', type };
}

/** ThingsBoard `DeviceProfile` JSON; `profileData` as stored, with the two DEFAULT sections filled in when absent. */
export function deviceProfileJson(profile: DeviceProfile): Record<string, unknown> {
  const profileData = {
    configuration: { type: 'DEFAULT' },
    transportConfiguration: { type: 'DEFAULT' },
    ...profile.profileData,
  };
  return {
    id: entityId('DEVICE_PROFILE', profile.id),
    createdTime: profile.createdTime,
    tenantId: entityId('TENANT', profile.tenantId),
    name: profile.name,
    description: profile.description,
    image: null,
    type: profile.type,
    transportType: profile.transportType,
    provisionType: profile.provisionType,
    defaultRuleChainId: null,
    defaultDashboardId: null,
    defaultQueueName: null,
    profileData,
    provisionDeviceKey: profile.provisionDeviceKey,
    firmwareId: null,
    softwareId: null,
    defaultEdgeRuleChainId: null,
    externalId: null,
    default: profile.isDefault,
  };
}

/** ThingsBoard `DeviceProfileInfo` JSON (GET /api/deviceProfileInfo/...). */
export function deviceProfileInfoJson(profile: DeviceProfile): Record<string, unknown> {
  return {
    id: entityId('DEVICE_PROFILE', profile.id),
    tenantId: entityId('TENANT', profile.tenantId),
    name: profile.name,
    image: null,
    defaultDashboardId: null,
    type: profile.type,
    transportType: profile.transportType,
  };
}

/** ThingsBoard `DeviceCredentials` JSON; its id is a bare `{"id":..}` (DeviceCredentialsId is not an entity id). */
export function deviceCredentialsJson(credentials: DeviceCredentials): Record<string, unknown> {
  return {
    id: { id: credentials.id },
    createdTime: credentials.createdTime,
    deviceId: entityId('DEVICE', credentials.deviceId),
    credentialsType: credentials.credentialsType,
    credentialsId: credentials.credentialsId,
    credentialsValue: credentials.credentialsValue,
  };
}

/** ThingsBoard `User` JSON (GET /api/auth/user); never includes the password hash. */
export function userJson(user: User): Record<string, unknown> {
  return {
    id: entityId('USER', user.id),
    createdTime: user.createdTime,
    tenantId: entityId('TENANT', user.tenantId),
    customerId: entityId('CUSTOMER', NULL_UUID),
    email: user.email,
    authority: user.authority,
    firstName: null,
    lastName: null,
    phone: null,
    name: user.email,
    additionalInfo: {},
  };
}

const KNOWN_ENTITY_TYPES = new Set<string>(['DEVICE', 'DEVICE_PROFILE', 'TENANT', 'CUSTOMER', 'USER']);

/** ThingsBoard `AuditLog` JSON, plus `source` (where the request came from). */
export function auditLogJson(entry: AuditEntry): Record<string, unknown> {
  const type = KNOWN_ENTITY_TYPES.has(entry.entityType) ? (entry.entityType as EntityType) : null;
  return {
    id: { id: entry.id },
    createdTime: entry.createdTime,
    tenantId: entityId('TENANT', entry.tenantId),
    customerId: entityId('CUSTOMER', NULL_UUID),
    entityId: entry.entityId ? { entityType: type ?? entry.entityType, id: entry.entityId } : null,
    entityName: entry.entityName,
    userId: entry.userId ? entityId('USER', entry.userId) : null,
    userName: entry.userName,
    actionType: entry.actionType,
    actionData: entry.actionData,
    actionStatus: entry.actionStatus,
    actionFailureDetails: entry.actionFailureDetails,
    source: entry.source,
  };
}

/** ThingsBoard 4.3 `ApiKeyInfo` JSON; with `value` (a string once, at creation; else null) it is `ApiKey`. */
export function apiKeyJson(key: ApiKey, value?: string | null): Record<string, unknown> {
  return {
    id: entityId('API_KEY', key.id),
    createdTime: key.createdTime,
    tenantId: entityId('TENANT', key.tenantId),
    userId: entityId('USER', key.userId),
    expirationTime: key.expirationTime,
    description: key.description,
    enabled: key.enabled,
    expired: key.expirationTime > 0 && key.expirationTime <= Date.now(),
    ...(value !== undefined ? { value } : {}),
  };
}
