/** Store contract, part 1: profiles, devices and credentials, with the races unique indexes decide. */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { UniqueViolation, type Store } from '../../src/core/ports/store.ts';
import { credentials, device, OTHER_TENANT, profile, seedDevice, settleAll, TENANT, unique } from './fixtures.ts';

/** Asserts that `err` is a UniqueViolation naming `constraint`. */
export function assertUnique(err: unknown, constraint: UniqueViolation['constraint']): void {
  assert.ok(err instanceof UniqueViolation, `expected UniqueViolation, got ${String(err)}`);
  assert.equal(err.constraint, constraint);
}

export function profileContract(store: () => Store): void {
  describe('device profiles', () => {
    test('a profile reads back exactly as inserted, and only in its tenant', async () => {
      const p = profile({ description: 'desc', isDefault: false, profileData: { provisionConfiguration: { type: 'DISABLED', provisionDeviceSecret: null }, extra: [1, 'a'] } });
      await store().insertProfile(p);
      assert.deepEqual(await store().getProfile(TENANT, p.id), p);
      assert.equal(await store().getProfile(OTHER_TENANT, p.id), undefined);
      assert.equal(await store().getProfile(TENANT, 'missing'), undefined);
    });
    test('updateProfile replaces every field', async () => {
      const p = profile();
      await store().insertProfile(p);
      const changed = { ...p, name: unique('renamed'), provisionType: 'CHECK_PRE_PROVISIONED_DEVICES' as const, provisionDeviceKey: null, description: 'new' };
      await store().updateProfile(changed);
      assert.deepEqual(await store().getProfile(TENANT, p.id), changed);
    });
    test('findProfileByProvisionKey finds by key across tenants; unknown key is undefined', async () => {
      const p = profile({ tenantId: OTHER_TENANT });
      await store().insertProfile(p);
      assert.deepEqual(await store().findProfileByProvisionKey(p.provisionDeviceKey!), p);
      assert.equal(await store().findProfileByProvisionKey('no-such-key'), undefined);
    });
    test('findDefaultProfile returns the tenant default', async () => {
      const tenant = `tenant-${unique('t')}`;
      assert.equal(await store().findDefaultProfile(tenant), undefined);
      const p = profile({ tenantId: tenant, isDefault: true });
      await store().insertProfile(p);
      await store().insertProfile(profile({ tenantId: tenant }));
      assert.equal((await store().findDefaultProfile(tenant))?.id, p.id);
    });
    test('a second profile with the same provision key is a provision_key violation; many null keys are fine', async () => {
      const p = profile();
      await store().insertProfile(p);
      await assert.rejects(store().insertProfile(profile({ provisionDeviceKey: p.provisionDeviceKey })), (e) => (assertUnique(e, 'provision_key'), true));
      await store().insertProfile(profile({ provisionDeviceKey: null }));
      await store().insertProfile(profile({ provisionDeviceKey: null }));
    });
    test('20 concurrent profiles with one provision key: exactly one is stored', async () => {
      const key = unique('race-key');
      const { ok, errors } = await settleAll(Array.from({ length: 20 }, () => store().insertProfile(profile({ provisionDeviceKey: key }))));
      assert.equal(ok.length, 1);
      assert.equal(errors.length, 19);
      for (const e of errors) assertUnique(e, 'provision_key');
    });
    test('a second profile with the same name in a tenant is a profile_name violation; another tenant may reuse it', async () => {
      const p = profile();
      await store().insertProfile(p);
      await assert.rejects(store().insertProfile(profile({ name: p.name })), (e) => (assertUnique(e, 'profile_name'), true));
      await store().insertProfile(profile({ name: p.name, tenantId: OTHER_TENANT }));
    });
    test('listProfiles pages, sorts by name and filters by text case-insensitively', async () => {
      const tenant = `tenant-${unique('t')}`;
      for (const name of ['gamma', 'Alpha', 'beta', 'alphabet']) await store().insertProfile(profile({ tenantId: tenant, name }));
      const all = await store().listProfiles(tenant, { pageSize: 2, page: 0, sortProperty: 'name', sortOrder: 'ASC' });
      assert.equal(all.totalElements, 4);
      assert.equal(all.totalPages, 2);
      assert.equal(all.hasNext, true);
      assert.equal(all.data.length, 2);
      const second = await store().listProfiles(tenant, { pageSize: 2, page: 1, sortProperty: 'name', sortOrder: 'ASC' });
      assert.equal(second.hasNext, false);
      const names = [...all.data, ...second.data].map((p) => p.name);
      assert.deepEqual(names, ['Alpha', 'alphabet', 'beta', 'gamma']);
      const search = await store().listProfiles(tenant, { pageSize: 10, page: 0, textSearch: 'ALPHA', sortProperty: 'name', sortOrder: 'DESC' });
      assert.deepEqual(search.data.map((p) => p.name), ['alphabet', 'Alpha']);
      const empty = await store().listProfiles(tenant, { pageSize: 10, page: 5 });
      assert.equal(empty.data.length, 0);
      assert.equal(empty.totalElements, 4);
    });
    test('deleteProfile refuses while devices use it, then deletes; false when absent', async () => {
      const { profile: p, device: d } = await seedDevice(store());
      assert.equal(await store().countDevicesOfProfile(p.id), 1);
      await assert.rejects(store().deleteProfile(TENANT, p.id));
      assert.ok(await store().getProfile(TENANT, p.id));
      assert.equal(await store().deleteDevice(TENANT, d.id), true);
      assert.equal(await store().countDevicesOfProfile(p.id), 0);
      assert.equal(await store().deleteProfile(OTHER_TENANT, p.id), false);
      assert.equal(await store().deleteProfile(TENANT, p.id), true);
      assert.equal(await store().deleteProfile(TENANT, p.id), false);
    });
  });
}

export function deviceContract(store: () => Store): void {
  describe('devices and credentials', () => {
    test('a device and its credentials read back by id, tenant id and name', async () => {
      const p = profile();
      await store().insertProfile(p);
      const d = device(p.id, { label: 'lbl', additionalInfo: { gateway: true, n: 2 }, createdByProvisioning: true });
      const c = credentials(d.id, { credentialsType: 'MQTT_BASIC', credentialsValue: '{"userName":"u"}' });
      await store().insertDevice(d, c);
      assert.deepEqual(await store().getDevice(TENANT, d.id), d);
      assert.equal(await store().getDevice(OTHER_TENANT, d.id), undefined);
      assert.deepEqual(await store().getDeviceById(d.id), d);
      assert.deepEqual(await store().findDeviceByName(TENANT, d.name), d);
      assert.equal(await store().findDeviceByName(OTHER_TENANT, d.name), undefined);
      assert.deepEqual(await store().getCredentialsOfDevice(d.id), c);
      assert.deepEqual(await store().findCredentialsById(c.credentialsId), c);
      assert.equal(await store().findCredentialsById('nope'), undefined);
      assert.equal(await store().getDeviceById('nope'), undefined);
    });
    test('updateDevice replaces its fields', async () => {
      const { device: d } = await seedDevice(store());
      const changed = { ...d, name: unique('renamed'), label: 'L', additionalInfo: { a: 1 } };
      await store().updateDevice(changed);
      assert.deepEqual(await store().getDeviceById(d.id), changed);
    });
    test('renaming a device onto a taken name is a device_name violation', async () => {
      const { device: a } = await seedDevice(store());
      const { device: b } = await seedDevice(store());
      await assert.rejects(store().updateDevice({ ...b, name: a.name }), (e) => (assertUnique(e, 'device_name'), true));
    });
    test('50 concurrent inserts of one name: exactly one succeeds, the rest are device_name violations leaving nothing behind', async () => {
      const p = profile();
      await store().insertProfile(p);
      const name = unique('race-device');
      const attempts = Array.from({ length: 50 }, () => {
        const d = device(p.id, { name });
        return { d, c: credentials(d.id) };
      });
      const { ok, errors } = await settleAll(attempts.map(({ d, c }) => store().insertDevice(d, c)));
      assert.equal(ok.length, 1);
      assert.equal(errors.length, 49);
      for (const e of errors) assertUnique(e, 'device_name');
      const stored = await store().findDeviceByName(TENANT, name);
      assert.ok(stored);
      const found = await Promise.all(attempts.map(({ c }) => store().findCredentialsById(c.credentialsId)));
      assert.deepEqual(found.filter(Boolean).map((c) => c!.deviceId), [stored.id]);
    });
    test('a duplicate credentials id is a credentials_id violation and the device is not stored', async () => {
      const { credentials: taken, profile: p } = await seedDevice(store());
      const d = device(p.id);
      await assert.rejects(store().insertDevice(d, credentials(d.id, { credentialsId: taken.credentialsId })), (e) => (assertUnique(e, 'credentials_id'), true));
      assert.equal(await store().getDeviceById(d.id), undefined);
    });
    test('20 concurrent devices claiming one credentials id: exactly one is stored', async () => {
      const p = profile();
      await store().insertProfile(p);
      const token = unique('race-token');
      const { ok, errors } = await settleAll(
        Array.from({ length: 20 }, () => {
          const d = device(p.id);
          return store().insertDevice(d, credentials(d.id, { credentialsId: token }));
        }),
      );
      assert.equal(ok.length, 1);
      for (const e of errors) assertUnique(e, 'credentials_id');
      assert.equal(await store().countDevicesOfProfile(p.id), 1);
    });
    test('listDevices pages, filters by profile and text, and sorts', async () => {
      const tenant = `tenant-${unique('t')}`;
      const p1 = profile({ tenantId: tenant });
      const p2 = profile({ tenantId: tenant });
      await store().insertProfile(p1);
      await store().insertProfile(p2);
      let t = 1_000;
      for (const [name, p] of [['sensor-b', p1], ['sensor-a', p1], ['Pump-1', p2], ['sensor-c', p2]] as const) {
        const d = device(p.id, { tenantId: tenant, name, createdTime: t++ });
        await store().insertDevice(d, credentials(d.id));
      }
      const newest = await store().listDevices(tenant, { pageSize: 3, page: 0 });
      assert.deepEqual(newest.data.map((d) => d.name), ['sensor-c', 'Pump-1', 'sensor-a']);
      assert.equal(newest.totalElements, 4);
      assert.equal(newest.hasNext, true);
      const byName = await store().listDevices(tenant, { pageSize: 10, page: 0, sortProperty: 'name', sortOrder: 'ASC', textSearch: 'SENSOR' });
      assert.deepEqual(byName.data.map((d) => d.name), ['sensor-a', 'sensor-b', 'sensor-c']);
      const ofP2 = await store().listDevices(tenant, { pageSize: 10, page: 0, profileId: p2.id, sortProperty: 'name', sortOrder: 'DESC' });
      assert.deepEqual(ofP2.data.map((d) => d.name), ['sensor-c', 'Pump-1']);
      assert.equal((await store().listDevices(tenant, { pageSize: 10, page: 0, textSearch: 'zzz' })).totalElements, 0);
    });
    test('updateCredentials replaces them in place; the old id no longer finds them; a taken id is refused', async () => {
      const { device: d, credentials: c } = await seedDevice(store());
      const { credentials: other } = await seedDevice(store());
      const changed = { ...c, credentialsType: 'X509_CERTIFICATE' as const, credentialsId: unique('hash'), credentialsValue: 'PEM' };
      await store().updateCredentials(changed);
      assert.deepEqual(await store().getCredentialsOfDevice(d.id), changed);
      assert.equal(await store().findCredentialsById(c.credentialsId), undefined);
      await assert.rejects(store().updateCredentials({ ...changed, credentialsId: other.credentialsId }), (e) => (assertUnique(e, 'credentials_id'), true));
    });
    test('markCredentialsUsed sets the first use only once', async () => {
      const { credentials: c } = await seedDevice(store());
      await store().markCredentialsUsed(c.id, 111);
      await store().markCredentialsUsed(c.id, 222);
      assert.equal((await store().findCredentialsById(c.credentialsId))?.firstUsedTime, 111);
    });
    test('deleteDevice removes the device with its credentials, attributes, time series and RPCs', async () => {
      const { device: d, credentials: c } = await seedDevice(store());
      await store().saveAttributes({ deviceId: d.id, scope: 'SHARED_SCOPE', entries: [{ key: 'a', value: { type: 'LONG', value: 1 } }], ts: 1 });
      await store().writeBatch({ telemetry: [{ deviceId: d.id, key: 't', ts: 5, value: { type: 'DOUBLE', value: 1.5 } }], attributes: [] });
      const r = await store().insertRpc({ id: crypto.randomUUID(), deviceId: d.id, tenantId: TENANT, method: 'm', params: '{}', oneway: true, expirationTime: Date.now() + 1e6, status: 'QUEUED', response: null, createdTime: 1 });
      assert.equal(await store().deleteDevice(OTHER_TENANT, d.id), false);
      assert.equal(await store().deleteDevice(TENANT, d.id), true);
      assert.equal(await store().getDeviceById(d.id), undefined);
      assert.equal(await store().findCredentialsById(c.credentialsId), undefined);
      assert.deepEqual(await store().getAttributes(d.id, 'SHARED_SCOPE'), []);
      assert.deepEqual(await store().listTimeseriesKeys(d.id), []);
      assert.equal((await store().getTimeseries({ deviceId: d.id, keys: ['t'], startTs: 0, endTs: 10, limit: 10, orderBy: 'ASC' })).size, 0);
      assert.equal(await store().getRpc(r.id), undefined);
      assert.equal(await store().deleteDevice(TENANT, d.id), false);
    });
  });
}
