/** Store contract: bulk device creation for imports (insertDevicesIfAbsent), where unique indexes decide duplicates. */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { Store } from '../../src/core/ports/store.ts';
import { credentials, device, profile, TENANT, unique } from './fixtures.ts';

export function importContract(store: () => Store): void {
  describe('bulk device insert (imports)', () => {
    const pair = (profileId: string, name = unique('bulk'), token = unique('bulk-token')) => {
      const d = device(profileId, { name });
      return { device: d, credentials: credentials(d.id, { credentialsId: token }) };
    };

    test('inserts more devices than one statement holds, each with its credentials, in order', async () => {
      const p = profile();
      await store().insertProfile(p);
      const pairs = Array.from({ length: 1201 }, () => pair(p.id));
      const outcomes = await store().insertDevicesIfAbsent(pairs);
      assert.equal(outcomes.length, pairs.length);
      assert.ok(outcomes.every((o) => o === 'created'));
      for (const i of [0, 499, 500, 1200]) {
        assert.deepEqual(await store().getDevice(TENANT, pairs[i].device.id), pairs[i].device);
        assert.deepEqual(await store().getCredentialsOfDevice(pairs[i].device.id), pairs[i].credentials);
      }
      assert.equal(await store().countDevicesOfProfile(p.id), 1201);
    });

    test('a taken name is skipped; taken credentials are refused and leave no device behind', async () => {
      const p = profile();
      await store().insertProfile(p);
      const existing = pair(p.id);
      await store().insertDevice(existing.device, existing.credentials);
      const sameName = pair(p.id, existing.device.name);
      const sameToken = pair(p.id, unique('bulk'), existing.credentials.credentialsId);
      const fresh = pair(p.id);
      const twiceName = pair(p.id, fresh.device.name); // the same name again in the same call
      const twiceToken = pair(p.id, unique('bulk'), fresh.credentials.credentialsId); // the same token again
      const outcomes = await store().insertDevicesIfAbsent([sameName, sameToken, fresh, twiceName, twiceToken]);
      assert.deepEqual(outcomes, ['device_name', 'credentials_id', 'created', 'device_name', 'credentials_id']);
      for (const refused of [sameName, sameToken, twiceName, twiceToken]) assert.equal(await store().getDevice(TENANT, refused.device.id), undefined);
      assert.equal(await store().findDeviceByName(TENANT, sameToken.device.name), undefined);
      assert.deepEqual(await store().getCredentialsOfDevice(fresh.device.id), fresh.credentials);
      assert.equal((await store().findCredentialsById(existing.credentials.credentialsId))?.deviceId, existing.device.id);
      assert.equal(await store().countDevicesOfProfile(p.id), 2);
    });

    test('two overlapping imports at once create each device exactly once', async () => {
      const p = profile();
      await store().insertProfile(p);
      const names = Array.from({ length: 300 }, () => unique('race'));
      const a = names.map((n) => pair(p.id, n));
      const b = names.map((n) => pair(p.id, n));
      const [ra, rb] = await Promise.all([store().insertDevicesIfAbsent(a), store().insertDevicesIfAbsent(b)]);
      names.forEach((_, i) => assert.deepEqual([ra[i], rb[i]].sort(), ['created', 'device_name']));
      assert.equal(await store().countDevicesOfProfile(p.id), names.length);
    });
  });
}
