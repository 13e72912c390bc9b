/** Seeds a benchmark database: one profile and `count` devices with access tokens `bench-0..count-1`. */
import { randomUUID } from 'node:crypto';
import { DEFAULT_TENANT_ID } from '../../src/core/model.ts';
import type { Store } from '../../src/core/ports/store.ts';

/** Inserts the devices; returns their ids in token order. */
export async function seedDevices(store: Store, count: number): Promise<string[]> {
  const profileId = randomUUID();
  const now = Date.now();
  await store.insertProfile({
    id: profileId,
    tenantId: DEFAULT_TENANT_ID,
    name: 'bench',
    type: 'DEFAULT',
    transportType: 'DEFAULT',
    description: null,
    isDefault: false,
    provisionType: 'ALLOW_CREATE_NEW_DEVICES',
    provisionDeviceKey: 'bench-key',
    profileData: { provisionConfiguration: { type: 'ALLOW_CREATE_NEW_DEVICES', provisionDeviceSecret: 'bench-secret' } },
    createdTime: now,
  });
  const ids: string[] = [];
  for (let i = 0; i < count; i++) {
    const id = randomUUID();
    ids.push(id);
    await store.insertDevice(
      { id, tenantId: DEFAULT_TENANT_ID, profileId, name: `bench-device-${i}`, type: 'bench', label: null, additionalInfo: null, createdByProvisioning: false, createdTime: now },
      { id: randomUUID(), deviceId: id, credentialsType: 'ACCESS_TOKEN', credentialsId: `bench-${i}`, credentialsValue: null, createdTime: now, firstUsedTime: null },
    );
  }
  return ids;
}
