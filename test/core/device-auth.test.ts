import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createTestCore, type TestCore } from '../support/core.ts';
import { TEST_ACTOR } from '../support/harness.ts';
import { DEFAULT_TENANT_ID as T } from '../../src/core/model.ts';
import { FleetgateError, type ErrorCode } from '../../src/core/errors.ts';

let t: TestCore;
const ids: Record<string, string> = {};

async function device(name: string, credentialsType: 'ACCESS_TOKEN' | 'MQTT_BASIC', data: { token?: string; value?: object }) {
  const d = await t.core.devices.save(T, { name }, TEST_ACTOR, credentialsType === 'ACCESS_TOKEN' ? data.token : undefined);
  if (credentialsType === 'MQTT_BASIC') {
    await t.core.devices.saveCredentials(T, { deviceId: d.id, credentialsType, credentialsValue: JSON.stringify(data.value) }, TEST_ACTOR);
  }
  ids[name] = d.id;
}

async function rejectsWith(p: Promise<unknown>, code: ErrorCode) {
  await assert.rejects(p, (err: unknown) => err instanceof FleetgateError && err.code === code);
}

before(async () => {
  t = await createTestCore();
  await device('token-dev', 'ACCESS_TOKEN', { token: 'TOKEN_1' });
  await device('cid-only', 'MQTT_BASIC', { value: { clientId: 'cid1', userName: '', password: '' } });
  await device('cid-user', 'MQTT_BASIC', { value: { clientId: 'cid2', userName: 'user2', password: '' } });
  await device('cid-user-pass', 'MQTT_BASIC', { value: { clientId: 'cid3', userName: 'user3', password: 'pass3' } });
  await device('user-pass', 'MQTT_BASIC', { value: { clientId: '', userName: 'user4', password: 'pass4' } });
});
after(() => t.close());

describe('spec §8.1 / §9 J43: accepted MQTT credentials', () => {
  test('access token as user name, any client id and password', async () => {
    assert.equal((await t.core.auth.byMqttCredentials('random-client', 'TOKEN_1', 'whatever')).deviceId, ids['token-dev']);
  });
  test('MQTT_BASIC client id only', async () => {
    assert.equal((await t.core.auth.byMqttCredentials('cid1', undefined, undefined)).deviceId, ids['cid-only']);
  });
  test('MQTT_BASIC client id + user name', async () => {
    assert.equal((await t.core.auth.byMqttCredentials('cid2', 'user2', undefined)).deviceId, ids['cid-user']);
  });
  test('MQTT_BASIC client id + user name + password', async () => {
    assert.equal((await t.core.auth.byMqttCredentials('cid3', 'user3', Buffer.from('pass3'))).deviceId, ids['cid-user-pass']);
  });
  test('MQTT_BASIC user name + password with a random client id', async () => {
    assert.equal((await t.core.auth.byMqttCredentials('anything', 'user4', 'pass4')).deviceId, ids['user-pass']);
  });
});

describe('spec §8.1 / §9 J44: rejected MQTT credentials', () => {
  test('right client id and user name, wrong password: bad user name or password, no token fallback', async () => {
    await rejectsWith(t.core.auth.byMqttCredentials('cid3', 'user3', 'wrong'), 'BAD_USERNAME_OR_PASSWORD');
    await rejectsWith(t.core.auth.byMqttCredentials('cid3', 'user3', undefined), 'BAD_USERNAME_OR_PASSWORD');
  });
  test('user name + password device with a wrong password', async () => {
    await rejectsWith(t.core.auth.byMqttCredentials('x', 'user4', 'nope'), 'BAD_USERNAME_OR_PASSWORD');
  });
  test('unknown token: bad user name or password (CONNACK 5 / 0x86)', async () => {
    await rejectsWith(t.core.auth.byMqttCredentials('c', 'unknownAccessToken', undefined), 'BAD_USERNAME_OR_PASSWORD');
  });
  test('unknown client id alone: identifier rejected (CONNACK 2 / 0x85)', async () => {
    await rejectsWith(t.core.auth.byMqttCredentials('who', undefined, undefined), 'CLIENT_ID_REJECTED');
  });
  test('nothing at all: not authorized', async () => {
    await rejectsWith(t.core.auth.byMqttCredentials('', undefined, undefined), 'UNAUTHORIZED');
  });
});

describe('access tokens and the credentials cache', () => {
  test('a token resolves to its device; MQTT_BASIC ids are not access tokens', async () => {
    assert.equal((await t.core.auth.byAccessToken('TOKEN_1'))?.deviceId, ids['token-dev']);
    assert.equal(await t.core.auth.byAccessToken('user4'), undefined);
    assert.equal(await t.core.auth.byAccessToken(''), undefined);
  });
  test('changing credentials takes effect at once despite the cache', async () => {
    const d = await t.core.devices.save(T, { name: 'rotating' }, TEST_ACTOR, 'OLD_TOKEN');
    assert.ok(await t.core.auth.byAccessToken('OLD_TOKEN'));
    assert.equal(await t.core.auth.byAccessToken('NEW_TOKEN'), undefined);
    await t.core.devices.saveCredentials(T, { deviceId: d.id, credentialsType: 'ACCESS_TOKEN', credentialsId: 'NEW_TOKEN' }, TEST_ACTOR);
    await new Promise((r) => setImmediate(r));
    assert.equal(await t.core.auth.byAccessToken('OLD_TOKEN'), undefined);
    assert.equal((await t.core.auth.byAccessToken('NEW_TOKEN'))?.deviceId, d.id);
  });
  test('a deleted device no longer authenticates', async () => {
    const d = await t.core.devices.save(T, { name: 'doomed' }, TEST_ACTOR, 'DOOMED_TOKEN');
    assert.ok(await t.core.auth.byAccessToken('DOOMED_TOKEN'));
    await t.core.devices.delete(T, d.id, TEST_ACTOR);
    assert.equal(await t.core.auth.byAccessToken('DOOMED_TOKEN'), undefined);
  });
  test('a connect storm for one token reads the store once', async () => {
    await t.core.devices.save(T, { name: 'storm' }, TEST_ACTOR, 'STORM_TOKEN');
    let reads = 0;
    const original = t.store.findCredentialsById.bind(t.store);
    t.store.findCredentialsById = async (id: string) => {
      reads++;
      return original(id);
    };
    try {
      const results = await Promise.all(Array.from({ length: 100 }, () => t.core.auth.byAccessToken('STORM_TOKEN')));
      assert.ok(results.every((r) => r?.deviceId));
      assert.ok(reads <= 1, `expected at most one store read, got ${reads}`);
    } finally {
      t.store.findCredentialsById = original;
    }
  });
});

describe('spec §8.1 step 3: the profile transport type', () => {
  test('a device of a CoAP-only profile is refused on MQTT, accepted on CoAP and without a transport', async () => {
    const profile = await t.core.profiles.save(T, { name: 'coap-only', transportType: 'COAP' }, TEST_ACTOR);
    const d = await t.core.devices.save(T, { name: 'coap-dev', deviceProfileId: profile.id }, TEST_ACTOR, 'COAP_ONLY_TOKEN');
    await rejectsWith(t.core.auth.byMqttCredentials('c', 'COAP_ONLY_TOKEN', undefined), 'SERVER_UNAVAILABLE');
    assert.equal((await t.core.auth.byAccessToken('COAP_ONLY_TOKEN', 'COAP'))?.deviceId, d.id);
    await rejectsWith(t.core.auth.byAccessToken('COAP_ONLY_TOKEN', 'HTTP'), 'SERVER_UNAVAILABLE');
    assert.equal((await t.core.auth.byAccessToken('COAP_ONLY_TOKEN'))?.deviceId, d.id);
  });
  test('changing the profile transport takes effect at once despite the cache', async () => {
    const profile = await t.core.profiles.save(T, { name: 'switching', transportType: 'DEFAULT' }, TEST_ACTOR);
    await t.core.devices.save(T, { name: 'switch-dev', deviceProfileId: profile.id }, TEST_ACTOR, 'SWITCH_TOKEN');
    assert.ok(await t.core.auth.byMqttCredentials('c', 'SWITCH_TOKEN', undefined));
    await t.core.profiles.save(T, { ...profile, transportType: 'COAP' }, TEST_ACTOR);
    await rejectsWith(t.core.auth.byMqttCredentials('c', 'SWITCH_TOKEN', undefined), 'SERVER_UNAVAILABLE');
  });
});

describe('cached logins after a device update', () => {
  test('a rename, a profile move and a gateway flag flip are seen by the next login with the same token', async () => {
    const saved = await t.core.devices.save(T, { name: 'cached-before' }, TEST_ACTOR, 'CACHED_TOKEN');
    const first = (await t.core.auth.byAccessToken('CACHED_TOKEN'))!;
    assert.equal(first.deviceName, 'cached-before');
    assert.equal((await t.core.auth.byAccessToken('CACHED_TOKEN'))!, first, 'the second login is served from the cache');
    await t.core.devices.save(T, { ...saved, name: 'cached-after' }, TEST_ACTOR);
    assert.equal((await t.core.auth.byAccessToken('CACHED_TOKEN'))!.deviceName, 'cached-after');
    const moved = await t.core.devices.save(T, { ...saved, name: 'cached-after', type: 'cached-profile' }, TEST_ACTOR);
    assert.notEqual(moved.profileId, saved.profileId);
    assert.equal((await t.core.auth.byAccessToken('CACHED_TOKEN'))!.profileId, moved.profileId);
    await t.core.devices.save(T, { ...moved, additionalInfo: { gateway: true } }, TEST_ACTOR);
    assert.equal((await t.core.auth.byAccessToken('CACHED_TOKEN'))!.gateway, true);
  });

  test('a label change keeps the cached login (nothing a session holds changed)', async () => {
    const saved = await t.core.devices.save(T, { name: 'label-only' }, TEST_ACTOR, 'LABEL_TOKEN');
    const first = (await t.core.auth.byAccessToken('LABEL_TOKEN'))!;
    await t.core.devices.save(T, { ...saved, label: 'a new label' }, TEST_ACTOR);
    assert.equal(await t.core.auth.byAccessToken('LABEL_TOKEN'), first);
  });

  test('a rotated-away token in its grace period logs in as the renamed device too', async () => {
    const saved = await t.core.devices.save(T, { name: 'grace-before' }, TEST_ACTOR, 'GRACE_RENAME_TOKEN');
    const identity = (await t.core.auth.byAccessToken('GRACE_RENAME_TOKEN'))!;
    assert.equal((await t.core.rotation.rotate(identity, { transport: 'http' })).status, 'SUCCESS');
    assert.equal((await t.core.auth.byAccessToken('GRACE_RENAME_TOKEN'))!.deviceName, 'grace-before', 'cached in its grace period');
    await t.core.devices.save(T, { ...saved, name: 'grace-after' }, TEST_ACTOR);
    assert.equal((await t.core.auth.byAccessToken('GRACE_RENAME_TOKEN'))!.deviceName, 'grace-after');
  });
});
