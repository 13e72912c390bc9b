/** Builders of valid model objects for the Store contract suite; every name is unique per call unless given. */
import { randomUUID } from 'node:crypto';
import type { AuditEntry, Device, DeviceCredentials, DeviceProfile, RpcRequest, User } from '../../src/core/model.ts';
import type { Store } from '../../src/core/ports/store.ts';

/** Tenant the contract suite writes into; a second one checks tenant separation. */
export const TENANT = '00000000-0000-4000-8000-00000000c0de';
export const OTHER_TENANT = '00000000-0000-4000-8000-00000000beef';

let counter = 0;
/** A short name unique within this process. */
export const unique = (prefix: string) => `${prefix}-${++counter}-${randomUUID().slice(0, 8)}`;

export function profile(overrides: Partial<DeviceProfile> = {}): DeviceProfile {
  return {
    id: randomUUID(),
    tenantId: TENANT,
    name: unique('profile'),
    type: 'DEFAULT',
    transportType: 'DEFAULT',
    description: null,
    isDefault: false,
    provisionType: 'ALLOW_CREATE_NEW_DEVICES',
    provisionDeviceKey: unique('key'),
    profileData: { provisionConfiguration: { type: 'ALLOW_CREATE_NEW_DEVICES', provisionDeviceSecret: 's3cret' } },
    createdTime: Date.now(),
    ...overrides,
  };
}

export function device(profileId: string, overrides: Partial<Device> = {}): Device {
  return {
    id: randomUUID(),
    tenantId: TENANT,
    profileId,
    name: unique('device'),
    type: 'default',
    label: null,
    additionalInfo: null,
    createdByProvisioning: false,
    createdTime: Date.now(),
    ...overrides,
  };
}

export function credentials(deviceId: string, overrides: Partial<DeviceCredentials> = {}): DeviceCredentials {
  return {
    id: randomUUID(),
    deviceId,
    credentialsType: 'ACCESS_TOKEN',
    credentialsId: unique('token'),
    credentialsValue: null,
    createdTime: Date.now(),
    firstUsedTime: null,
    ...overrides,
  };
}

export function rpc(deviceId: string, overrides: Partial<Omit<RpcRequest, 'requestId'>> = {}): Omit<RpcRequest, 'requestId'> {
  const now = Date.now();
  return {
    id: randomUUID(),
    deviceId,
    tenantId: TENANT,
    method: 'setGpio',
    params: '{"pin":4}',
    oneway: false,
    expirationTime: now + 60_000,
    status: 'QUEUED',
    response: null,
    createdTime: now,
    ...overrides,
  };
}

export function user(overrides: Partial<User> = {}): User {
  return { id: randomUUID(), tenantId: TENANT, email: `${unique('user')}@example.com`, authority: 'TENANT_ADMIN', passwordHash: 'hash', createdTime: Date.now(), ...overrides };
}

export function audit(overrides: Partial<AuditEntry> = {}): AuditEntry {
  return {
    id: randomUUID(),
    tenantId: TENANT,
    createdTime: Date.now(),
    entityType: 'DEVICE',
    entityId: randomUUID(),
    entityName: 'dev',
    userId: null,
    userName: 'test',
    actionType: 'ADDED',
    actionData: { note: 'x', nested: { n: 1 } },
    actionStatus: 'SUCCESS',
    actionFailureDetails: null,
    source: 'admin',
    ...overrides,
  };
}

/** Inserts a profile and one device with credentials; returns all three. */
export async function seedDevice(store: Store, deviceOverrides: Partial<Device> = {}) {
  const p = profile();
  await store.insertProfile(p);
  const d = device(p.id, deviceOverrides);
  const c = credentials(d.id);
  await store.insertDevice(d, c);
  return { profile: p, device: d, credentials: c };
}

/** Settles every promise; returns fulfilled values and rejection reasons. */
export async function settleAll<T>(promises: Promise<T>[]): Promise<{ ok: T[]; errors: unknown[] }> {
  const results = await Promise.allSettled(promises);
  return {
    ok: results.filter((r): r is PromiseFulfilledResult<Awaited<T>> => r.status === 'fulfilled').map((r) => r.value as T),
    errors: results.filter((r): r is PromiseRejectedResult => r.status === 'rejected').map((r) => r.reason),
  };
}
