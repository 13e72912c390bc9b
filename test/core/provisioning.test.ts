import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createTestCore, type TestCore } from '../support/core.ts';
import { TEST_ACTOR } from '../support/harness.ts';
import type { ProvisionRequest, ProvisionResult } from '../../src/core/api.ts';
import type { ProvisionType } from '../../src/core/model.ts';
import { DEFAULT_TENANT_ID } from '../../src/core/model.ts';
import { sha3Hex, sha3Join } from '../../src/core/credentials.ts';
import { renderProvisionJson } from '../../src/core/provisioning/render.ts';
import { channels } from '../../src/core/ports/bus.ts';

const T = DEFAULT_TENANT_ID;
const src = { transport: 'http' as const, address: '127.0.0.1' };

let t: TestCore;
const keys: Record<string, { key: string; secret: string; profileId: string }> = {};

async function profile(name: string, type: ProvisionType, secret: string | null = `${name}-secret`) {
  const key = `${name}-key`;
  const p = await t.core.profiles.save(
    T,
    { name, provisionType: type, provisionDeviceKey: key, profileData: { provisionConfiguration: { type, provisionDeviceSecret: secret } } },
    TEST_ACTOR,
  );
  keys[name] = { key, secret: secret ?? '', profileId: p.id };
  return p;
}

function req(profileName: string, extra: Partial<ProvisionRequest> = {}): ProvisionRequest {
  return { provisionDeviceKey: keys[profileName].key, provisionDeviceSecret: keys[profileName].secret, ...extra };
}

const provision = (r: ProvisionRequest) => t.core.provisioning.provision(r, src);

function assertStatus(result: ProvisionResult, status: ProvisionResult['status'], reason?: string) {
  assert.equal(result.status, status, JSON.stringify(result));
  if (reason && result.status !== 'SUCCESS') assert.equal(result.reason, reason);
}

before(async () => {
  t = await createTestCore();
  await profile('allow', 'ALLOW_CREATE_NEW_DEVICES');
  await profile('check', 'CHECK_PRE_PROVISIONED_DEVICES');
  await profile('disabled', 'DISABLED');
  await profile('nullsecret', 'ALLOW_CREATE_NEW_DEVICES', null);
  await profile('x509chain', 'CHECK_PRE_PROVISIONED_DEVICES');
  // An X.509 chain profile whose key the admin set by hand (the certificate path sets the key to a SHA3).
  const p = await t.core.profiles.get(T, keys.x509chain.profileId);
  await t.core.profiles.save(T, { ...p, provisionType: 'X509_CERTIFICATE_CHAIN', profileData: { provisionConfiguration: { type: 'CHECK_PRE_PROVISIONED_DEVICES', provisionDeviceSecret: 'x509chain-secret' } } }, TEST_ACTOR);
  await t.core.devices.save(T, { name: 'pre-1', deviceProfileId: keys.check.profileId }, TEST_ACTOR, 'pre-1-token');
  await t.core.devices.save(T, { name: 'pre-2', deviceProfileId: keys.check.profileId }, TEST_ACTOR);
  await t.core.devices.save(T, { name: 'in-allow-profile', deviceProfileId: keys.allow.profileId }, TEST_ACTOR);
});
after(() => t.close());

describe('spec §4.1 outcome matrix: key and secret', () => {
  for (const name of ['allow', 'check', 'disabled']) {
    test(`${name}: unknown key is NOT_FOUND`, async () => assertStatus(await provision({ ...req(name), provisionDeviceKey: 'nope' }), 'NOT_FOUND', 'BAD_KEY_OR_SECRET'));
    test(`${name}: empty key is NOT_FOUND`, async () => assertStatus(await provision({ ...req(name), provisionDeviceKey: '' }), 'NOT_FOUND'));
    test(`${name}: empty secret is NOT_FOUND`, async () => assertStatus(await provision({ ...req(name), provisionDeviceSecret: '' }), 'NOT_FOUND'));
    test(`${name}: right key, wrong secret is NOT_FOUND`, async () =>
      assertStatus(await provision({ ...req(name, { deviceName: 'x' }), provisionDeviceSecret: 'wrong' }), 'NOT_FOUND', 'BAD_KEY_OR_SECRET'));
    test(`${name}: whitespace-only name is FAILURE, checked before the key`, async () => {
      assertStatus(await provision(req(name, { deviceName: '   ' })), 'FAILURE', 'EMPTY_NAME');
      assertStatus(await provision({ provisionDeviceKey: 'nope', provisionDeviceSecret: 'x', deviceName: ' ' }), 'FAILURE', 'EMPTY_NAME');
    });
  }
  test('profile whose secret is null is NOT_FOUND', async () => {
    assertStatus(await provision({ provisionDeviceKey: keys.nullsecret.key, provisionDeviceSecret: 'anything', deviceName: 'n1' }), 'NOT_FOUND');
  });
  test('X509_CERTIFICATE_CHAIN profile on the key/secret path answers FAILURE at once (DESIGN 4)', async () => {
    assertStatus(await provision(req('x509chain', { deviceName: 'chain-dev' })), 'FAILURE', 'UNSUPPORTED_STRATEGY');
  });
});

describe('spec §4.1 outcome matrix: DISABLED', () => {
  test('new name, absent name, existing device: all NOT_FOUND', async () => {
    assertStatus(await provision(req('disabled', { deviceName: 'dis-new' })), 'NOT_FOUND', 'PROVISIONING_DISABLED');
    assertStatus(await provision(req('disabled')), 'NOT_FOUND');
    assertStatus(await provision(req('disabled', { deviceName: 'pre-1' })), 'NOT_FOUND');
    await assert.rejects(t.core.devices.findByName(T, 'dis-new'));
  });
});

describe('spec §4.1 outcome matrix: ALLOW_CREATE_NEW_DEVICES', () => {
  test('a new name creates the device with a 20-char token, provisionState and type = profile name', async () => {
    const r = await provision(req('allow', { deviceName: '  new-1  ' }));
    assertStatus(r, 'SUCCESS');
    assert.ok(r.status === 'SUCCESS');
    assert.equal(r.deviceName, 'new-1');
    assert.equal(r.credentialsType, 'ACCESS_TOKEN');
    assert.match(r.credentialsValue as string, /^[A-Za-z0-9]{20}$/);
    const device = await t.core.devices.findByName(T, 'new-1');
    assert.equal(device.type, 'allow');
    assert.equal(device.id, r.deviceId);
    const state = await t.core.attributes.get(device.id, 'SERVER_SCOPE', ['provisionState']);
    assert.deepEqual(state.map((a) => a.value), [{ type: 'STRING', value: 'provisioned' }]);
    const creds = await t.core.devices.getCredentials(T, device.id);
    assert.equal(creds.credentialsId, r.credentialsValue);
  });
  test('an absent name gets a random 20-char name', async () => {
    const r = await provision(req('allow'));
    assert.ok(r.status === 'SUCCESS');
    assert.match(r.deviceName, /^[A-Za-z0-9]{20}$/);
    assert.equal((await t.core.devices.get(T, r.deviceId)).name, r.deviceName);
  });
  test('an existing device (other profile) is FAILURE', async () => {
    assertStatus(await provision(req('allow', { deviceName: 'pre-1' })), 'FAILURE', 'DEVICE_EXISTS');
  });
  test('an existing device created by admin in the same profile is FAILURE', async () => {
    assertStatus(await provision(req('allow', { deviceName: 'in-allow-profile' })), 'FAILURE', 'DEVICE_EXISTS');
  });
  test('gateway flag sets additionalInfo.gateway', async () => {
    const r = await provision(req('allow', { deviceName: 'gw-1', gateway: true }));
    assert.ok(r.status === 'SUCCESS');
    assert.deepEqual((await t.core.devices.get(T, r.deviceId)).additionalInfo, { gateway: true });
  });
  test('device-supplied ACCESS_TOKEN is stored as given', async () => {
    const r = await provision(req('allow', { deviceName: 'tok-1', credentialsType: 'ACCESS_TOKEN', token: 'test_token' }));
    assert.ok(r.status === 'SUCCESS');
    assert.equal(r.credentialsValue, 'test_token');
    assert.equal((await t.core.devices.getCredentials(T, r.deviceId)).credentialsId, 'test_token');
  });
  test('X509_CERTIFICATE: value is the certificate, id its SHA3-256 (spec §9 A6)', async () => {
    const r = await provision(req('allow', { deviceName: 'cert-1', credentialsType: 'X509_CERTIFICATE', hash: 'testHash' }));
    assert.ok(r.status === 'SUCCESS');
    assert.equal(r.credentialsValue, 'testHash');
    const creds = await t.core.devices.getCredentials(T, r.deviceId);
    assert.equal(creds.credentialsId, sha3Hex('testHash'));
    assert.equal(creds.credentialsId, '57f6600424d6553263f1f32e0117012894a36fbf07e3e9c3c556272f86b7d985');
  });
  test('MQTT_BASIC: id SHA3(clientId|username), value JSON exactly (spec §9 A7)', async () => {
    const r = await provision(req('allow', { deviceName: 'basic-1', credentialsType: 'MQTT_BASIC', clientId: 'test_clientId', username: 'test_username', password: 'test_password' }));
    assert.ok(r.status === 'SUCCESS');
    assert.deepEqual(r.credentialsValue, { clientId: 'test_clientId', userName: 'test_username', password: 'test_password' });
    const creds = await t.core.devices.getCredentials(T, r.deviceId);
    assert.equal(creds.credentialsId, sha3Join('test_clientId', 'test_username'));
    assert.equal(creds.credentialsValue, '{"clientId":"test_clientId","userName":"test_username","password":"test_password"}');
    assert.equal(
      renderProvisionJson(r),
      `{"credentialsValue":{"clientId":"test_clientId","userName":"test_username","password":"test_password"},"credentialsType":"MQTT_BASIC","status":"SUCCESS","deviceId":"${r.deviceId}","deviceName":"basic-1"}`,
    );
  });
  test('MQTT_BASIC with client id and password but no user name is FAILURE; nothing is left behind', async () => {
    assertStatus(await provision(req('allow', { deviceName: 'basic-2', credentialsType: 'MQTT_BASIC', clientId: 'c', password: 'p' })), 'FAILURE', 'INVALID_CREDENTIALS');
    assertStatus(await provision(req('allow', { deviceName: 'basic-3', credentialsType: 'MQTT_BASIC', password: 'p' })), 'FAILURE', 'INVALID_CREDENTIALS');
    await assert.rejects(t.core.devices.findByName(T, 'basic-2'));
    await assert.rejects(t.core.devices.findByName(T, 'basic-3'));
  });
  test('credentials already used by another device: FAILURE and the device is not created (rollback)', async () => {
    assertStatus(await provision(req('allow', { deviceName: 'dup-token-dev', token: 'pre-1-token' })), 'FAILURE', 'CREDENTIALS_IN_USE');
    await assert.rejects(t.core.devices.findByName(T, 'dup-token-dev'));
  });
  test('only a hash with no credentialsType means ACCESS_TOKEN with an empty token: FAILURE (spec §6)', async () => {
    assertStatus(await provision(req('allow', { deviceName: 'hash-only', hash: 'abc' })), 'FAILURE', 'INVALID_CREDENTIALS');
  });
  test('50 concurrent requests for one new name: one SUCCESS, 49 FAILURE, one device', async () => {
    const results = await Promise.all(Array.from({ length: 50 }, () => provision(req('allow', { deviceName: 'race-1' }))));
    assert.equal(results.filter((r) => r.status === 'SUCCESS').length, 1);
    assert.equal(results.filter((r) => r.status === 'FAILURE').length, 49);
    const page = await t.core.devices.list(T, { pageSize: 10, page: 0, textSearch: 'race-1' });
    assert.equal(page.totalElements, 1);
  });
  test('the failure is audited without the secret', async () => {
    const page = await t.core.audit.list(T, { pageSize: 1000, page: 0 });
    const text = JSON.stringify(page.data);
    assert.ok(page.data.some((e) => e.actionType === 'PROVISION_FAILURE'));
    assert.ok(page.data.some((e) => e.actionType === 'PROVISION_SUCCESS'));
    assert.ok(!text.includes('allow-secret'), 'audit log must not contain the provision secret');
    assert.ok(!text.includes('test_password'), 'audit log must not contain a device password');
  });
});

describe('spec §4.1 outcome matrix: CHECK_PRE_PROVISIONED_DEVICES', () => {
  test('a pre-provisioned device gets its existing credentials once, then FAILURE', async () => {
    const r = await provision(req('check', { deviceName: 'pre-1', token: 'ignored' }));
    assert.ok(r.status === 'SUCCESS');
    assert.equal(r.credentialsValue, 'pre-1-token');
    assertStatus(await provision(req('check', { deviceName: 'pre-1' })), 'FAILURE', 'ALREADY_PROVISIONED');
  });
  test('provisionState with another value is FAILURE', async () => {
    const device = await t.core.devices.findByName(T, 'pre-2');
    await t.core.attributes.save(device, 'SERVER_SCOPE', { provisionState: 'non-valid' });
    assertStatus(await provision(req('check', { deviceName: 'pre-2' })), 'FAILURE', 'ALREADY_PROVISIONED');
  });
  test('unknown name, absent name, device of another profile: FAILURE', async () => {
    assertStatus(await provision(req('check', { deviceName: 'not-there' })), 'FAILURE', 'NOT_PRE_PROVISIONED');
    assertStatus(await provision(req('check')), 'FAILURE');
    assertStatus(await provision(req('check', { deviceName: 'in-allow-profile' })), 'FAILURE', 'NOT_PRE_PROVISIONED');
  });
  test('concurrent requests for one pre-provisioned device: exactly one SUCCESS', async () => {
    await t.core.devices.save(T, { name: 'pre-race', deviceProfileId: keys.check.profileId }, TEST_ACTOR);
    const results = await Promise.all(Array.from({ length: 20 }, () => provision(req('check', { deviceName: 'pre-race' }))));
    assert.equal(results.filter((r) => r.status === 'SUCCESS').length, 1);
  });
});

describe('DESIGN 3: lost-response retry', () => {
  test('a repeat for a never-connected device returns the same credentials; after first use it is FAILURE', async () => {
    const tc = await createTestCore({ provisionRetryAfterMs: 0 });
    try {
      await tc.core.profiles.save(T, { name: 'p', provisionType: 'ALLOW_CREATE_NEW_DEVICES', provisionDeviceKey: 'k', profileData: { provisionConfiguration: { type: 'ALLOW_CREATE_NEW_DEVICES', provisionDeviceSecret: 's' } } }, TEST_ACTOR);
      const r1 = await tc.core.provisioning.provision({ provisionDeviceKey: 'k', provisionDeviceSecret: 's', deviceName: 'lost' }, src);
      await new Promise((r) => setTimeout(r, 5));
      const r2 = await tc.core.provisioning.provision({ provisionDeviceKey: 'k', provisionDeviceSecret: 's', deviceName: 'lost' }, src);
      assert.ok(r1.status === 'SUCCESS' && r2.status === 'SUCCESS');
      assert.equal(r2.credentialsValue, r1.credentialsValue);
      assert.equal(r2.deviceId, r1.deviceId);
      const audited = (await tc.core.audit.list(T, { pageSize: 10, page: 0 })).data.filter((e) => e.actionType === 'PROVISION_SUCCESS' && e.entityId === r1.deviceId);
      assert.equal(audited.length, 2, 'the repeat is audited too');
      assert.ok(audited.some((e) => e.actionData.note === 'repeat of a request whose answer was lost'));
      const wrongSecret = await tc.core.provisioning.provision({ provisionDeviceKey: 'k', provisionDeviceSecret: 'x', deviceName: 'lost' }, src);
      assert.equal(wrongSecret.status, 'NOT_FOUND');
      assert.ok(await tc.core.auth.byAccessToken(r1.credentialsValue as string));
      const r3 = await tc.core.provisioning.provision({ provisionDeviceKey: 'k', provisionDeviceSecret: 's', deviceName: 'lost' }, src);
      assertStatus(r3, 'FAILURE', 'DEVICE_EXISTS');
    } finally {
      await tc.close();
    }
  });
  test('a repeat that asks for different credentials is FAILURE', async () => {
    const tc = await createTestCore({ provisionRetryAfterMs: 0 });
    try {
      await tc.core.profiles.save(T, { name: 'p', provisionType: 'ALLOW_CREATE_NEW_DEVICES', provisionDeviceKey: 'k', profileData: { provisionConfiguration: { type: 'ALLOW_CREATE_NEW_DEVICES', provisionDeviceSecret: 's' } } }, TEST_ACTOR);
      await tc.core.provisioning.provision({ provisionDeviceKey: 'k', provisionDeviceSecret: 's', deviceName: 'd', token: 'one' }, src);
      await new Promise((r) => setTimeout(r, 5));
      assertStatus(await tc.core.provisioning.provision({ provisionDeviceKey: 'k', provisionDeviceSecret: 's', deviceName: 'd', token: 'two' }, src), 'FAILURE');
      const same = await tc.core.provisioning.provision({ provisionDeviceKey: 'k', provisionDeviceSecret: 's', deviceName: 'd', token: 'one' }, src);
      assertStatus(same, 'SUCCESS');
    } finally {
      await tc.close();
    }
  });
});

describe('spec §5.1 rendering', () => {
  test('NOT_FOUND and FAILURE bodies keep ThingsBoard keys first and add reason', () => {
    assert.equal(renderProvisionJson({ status: 'NOT_FOUND', reason: 'BAD_KEY_OR_SECRET', errorMsg: 'Provision data was not found!' }), '{"errorMsg":"Provision data was not found!","status":"NOT_FOUND","reason":"BAD_KEY_OR_SECRET"}');
    assert.equal(renderProvisionJson({ status: 'FAILURE', reason: 'DEVICE_EXISTS', errorMsg: 'Failed to provision device!' }), '{"errorMsg":"Failed to provision device!","status":"FAILURE","reason":"DEVICE_EXISTS"}');
  });
});

describe('credentials-changed after provisioning', () => {
  test('supplied credentials are announced to every node (one may have cached a miss for them); a generated token, which no one can have presented, is not, and authenticates at once', async () => {
    const tc = await createTestCore();
    try {
      await tc.core.profiles.save(T, { name: 'p', provisionType: 'ALLOW_CREATE_NEW_DEVICES', provisionDeviceKey: 'k', profileData: { provisionConfiguration: { type: 'ALLOW_CREATE_NEW_DEVICES', provisionDeviceSecret: 's' } } }, TEST_ACTOR);
      const announced: string[] = [];
      await tc.bus.subscribe(channels.credentials, (m) => void (m.kind === 'credentials-changed' && announced.push(m.credentialsId)));
      // A miss for the supplied token, cached before the device exists.
      assert.equal(await tc.core.auth.byAccessToken('own-token'), undefined);
      const own = await tc.core.provisioning.provision({ provisionDeviceKey: 'k', provisionDeviceSecret: 's', deviceName: 'own', token: 'own-token' }, src);
      const generated = await tc.core.provisioning.provision({ provisionDeviceKey: 'k', provisionDeviceSecret: 's', deviceName: 'generated' }, src);
      assertStatus(own, 'SUCCESS');
      assertStatus(generated, 'SUCCESS');
      await new Promise((r) => setTimeout(r, 20)); // bus handlers run on a later turn
      assert.deepEqual(announced, ['own-token']);
      assert.equal((await tc.core.auth.byAccessToken('own-token'))?.deviceId, own.status === 'SUCCESS' ? own.deviceId : '');
      const token = generated.status === 'SUCCESS' ? String(generated.credentialsValue) : '';
      assert.equal((await tc.core.auth.byAccessToken(token))?.deviceId, generated.status === 'SUCCESS' ? generated.deviceId : '');
    } finally {
      await tc.close();
    }
  });
});
