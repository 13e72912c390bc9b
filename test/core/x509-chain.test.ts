/**
 * X.509 certificate-chain provisioning in core (spec §7 steps 3-4): the chain check, the device name from the leaf's
 * CN, creation, certificate rotation, and the refusals. Certificates are made with openssl at test time.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { X509ChainResult } from '../../src/core/api.ts';
import { sha3Hex, stripCertificate } from '../../src/core/credentials.ts';
import { DEFAULT_TENANT_ID, type DeviceProfile } from '../../src/core/model.ts';
import { commonName, deviceNameFromCn, parseChain } from '../../src/core/provisioning/x509-certificates.ts';
import { certificateAuthority, deviceCertificate, impersonatorOf, pemChain, skipUnlessOpenssl, type Authority, type KeyPair } from '../hardening/certificates.ts';
import { createTestCore, type TestCore } from '../support/core.ts';
import { TEST_ACTOR } from '../support/harness.ts';

const T = DEFAULT_TENANT_ID;
const src = { transport: 'mqtt' as const, address: '127.0.0.1' };
const hashOf = (pair: KeyPair) => sha3Hex(stripCertificate(pair.cert));

describe('X.509 chain provisioning (spec §7)', { skip: skipUnlessOpenssl() }, () => {
  let t: TestCore;
  let root: Authority;
  let fleet: Authority;
  let strictCa: Authority;
  let fleetProfile: DeviceProfile;

  /** An X509_CERTIFICATE_CHAIN profile anchored at `anchor` (spec §3.2 JSON shape). */
  const chainProfile = (name: string, anchor: KeyPair, pattern: string | undefined, allowCreate: boolean) =>
    t.core.profiles.save(
      T,
      {
        name,
        provisionType: 'X509_CERTIFICATE_CHAIN',
        profileData: {
          provisionConfiguration: { type: 'X509_CERTIFICATE_CHAIN', provisionDeviceSecret: anchor.cert, certificateRegExPattern: pattern, allowCreateNewDevicesByX509Certificate: allowCreate },
        },
      },
      TEST_ACTOR,
    );
  const provision = (...chain: KeyPair[]) => t.core.x509Provisioning.provisionByChain([pemChain(...chain)], src);
  const status = (result: X509ChainResult, expected: X509ChainResult['status'], reason?: string) => {
    assert.equal(result.status, expected, JSON.stringify(result));
    if (reason) assert.equal(result.status === 'FAILURE' ? result.reason : undefined, reason);
  };
  const deviceNamed = (name: string) => t.store.findDeviceByName(T, name);

  before(async () => {
    t = await createTestCore();
    root = certificateAuthority('Fleet Root');
    fleet = certificateAuthority('Fleet Intermediate', root);
    strictCa = certificateAuthority('Strict Intermediate', root);
    fleetProfile = await chainProfile('Fleet', fleet, '^(device-\\d+)$', true);
  });
  after(() => t.close());

  test('the profile key is the SHA3 of the trust anchor (spec §3.2)', () => {
    assert.equal(fleetProfile.provisionDeviceKey, hashOf(fleet));
  });

  test('a new device is created, named by group 1 of the pattern, with the leaf as X.509 credentials (spec §6 side effects)', async () => {
    const leaf = deviceCertificate('device-42', fleet);
    const result = await provision(leaf, fleet, root);
    status(result, 'CREATED');
    const device = await deviceNamed('device-42');
    assert.ok(device && result.status === 'CREATED' && result.deviceId === device.id);
    assert.equal(device.profileId, fleetProfile.id);
    assert.equal(device.type, 'Fleet');
    const creds = await t.store.getCredentialsOfDevice(device.id);
    assert.equal(creds?.credentialsType, 'X509_CERTIFICATE');
    assert.equal(creds?.credentialsId, hashOf(leaf));
    const [state] = await t.core.attributes.get(device.id, 'SERVER_SCOPE', ['provisionState']);
    assert.deepEqual(state?.value, { type: 'STRING', value: 'provisioned' });
    const audit = await t.core.audit.list(T, { page: 0, pageSize: 100 });
    const row = audit.data.find((e) => e.entityId === device.id && e.actionType === 'PROVISION_SUCCESS');
    assert.ok(row, 'PROVISION_SUCCESS audit row');
    assert.equal((row.actionData as { strategy?: string }).strategy, 'X509_CERTIFICATE_CHAIN');
    // The same chain again: the leaf is registered now, nothing changes.
    status(await provision(leaf, fleet, root), 'REGISTERED');
  });

  test('the chain without its root, or with only the leaf and the anchor, provisions too', async () => {
    status(await provision(deviceCertificate('device-43', fleet), fleet), 'CREATED');
  });

  test('a profile anchored at the root matches a chain that presents the root', async () => {
    const otherRoot = certificateAuthority('Other Root');
    const otherCa = certificateAuthority('Other Intermediate', otherRoot);
    await chainProfile('Rooted', otherRoot, '(.*)', true);
    status(await provision(deviceCertificate('rooted-1', otherCa), otherCa, otherRoot), 'CREATED');
    assert.equal((await deviceNamed('rooted-1'))?.type, 'Rooted');
  });

  test('a new leaf with the same CN replaces the X.509 credentials (rotation, no provisionState); the old hash is gone', async () => {
    const old = deviceCertificate('device-7', fleet);
    const device = await t.core.devices.save(T, { name: 'device-7', deviceProfileId: fleetProfile.id }, TEST_ACTOR);
    await t.core.devices.saveCredentials(T, { deviceId: device.id, credentialsType: 'X509_CERTIFICATE', credentialsValue: old.cert }, TEST_ACTOR);
    assert.ok(await t.core.auth.byX509Hash(hashOf(old)));
    const renewed = deviceCertificate('device-7', fleet);
    status(await provision(renewed, fleet), 'ROTATED');
    assert.equal((await t.store.getCredentialsOfDevice(device.id))?.credentialsId, hashOf(renewed));
    assert.equal(await t.core.auth.byX509Hash(hashOf(old)), undefined);
    assert.equal((await t.core.auth.byX509Hash(hashOf(renewed)))?.deviceId, device.id);
    assert.deepEqual(await t.core.attributes.get(device.id, 'SERVER_SCOPE', ['provisionState']), []);
  });

  test('a device of the profile with other credentials keeps them: FAILURE DEVICE_EXISTS', async () => {
    const device = await t.core.devices.save(T, { name: 'device-8', deviceProfileId: fleetProfile.id }, TEST_ACTOR, 'device-8-token');
    status(await provision(deviceCertificate('device-8', fleet), fleet), 'FAILURE', 'DEVICE_EXISTS');
    assert.equal((await t.store.getCredentialsOfDevice(device.id))?.credentialsId, 'device-8-token');
  });

  test('a device of that name in another profile is not touched: FAILURE DEVICE_EXISTS', async () => {
    await t.core.devices.save(T, { name: 'device-9' }, TEST_ACTOR, 'device-9-token');
    status(await provision(deviceCertificate('device-9', fleet), fleet), 'FAILURE', 'DEVICE_EXISTS');
  });

  test('a CN the pattern does not match is FAILURE CN_NOT_MATCHED, and nothing is created', async () => {
    status(await provision(deviceCertificate('sensor-1', fleet), fleet), 'FAILURE', 'CN_NOT_MATCHED');
    assert.equal(await deviceNamed('sensor-1'), undefined);
  });

  test('without allowCreateNewDevicesByX509Certificate an unknown device is FAILURE; a known one still rotates', async () => {
    const profile = await chainProfile('Strict', strictCa, '(.*)', false);
    status(await provision(deviceCertificate('strict-1', strictCa), strictCa), 'FAILURE', 'NOT_PRE_PROVISIONED');
    assert.equal(await deviceNamed('strict-1'), undefined);
    const device = await t.core.devices.save(T, { name: 'strict-2', deviceProfileId: profile.id }, TEST_ACTOR);
    await t.core.devices.saveCredentials(T, { deviceId: device.id, credentialsType: 'X509_CERTIFICATE', credentialsValue: deviceCertificate('strict-2', strictCa).cert }, TEST_ACTOR);
    status(await provision(deviceCertificate('strict-2', strictCa), strictCa), 'ROTATED');
  });

  test('two connections of the same new device at once end with one device', async () => {
    const leaf = deviceCertificate('device-77', fleet);
    const results = await Promise.all([provision(leaf, fleet), provision(leaf, fleet), provision(leaf, fleet)]);
    assert.deepEqual(results.map((r) => r.status).sort(), ['CREATED', 'REGISTERED', 'REGISTERED']);
    const devices = await t.core.devices.list(T, { page: 0, pageSize: 100, textSearch: 'device-77' });
    assert.equal(devices.data.filter((d) => d.name === 'device-77').length, 1);
  });

  test('a miss cached a moment before does not hide the device provisioning creates', async () => {
    const leaf = deviceCertificate('device-78', fleet);
    assert.equal(await t.core.auth.byX509Hash(hashOf(leaf)), undefined);
    status(await provision(leaf, fleet), 'CREATED');
    assert.equal((await t.core.auth.byX509Hash(hashOf(leaf)))?.deviceName, 'device-78');
  });

  test('a leaf not signed by the presented intermediate is INVALID_CHAIN, and nothing is created', async () => {
    const forged = deviceCertificate('device-66', impersonatorOf(fleet));
    const result = await provision(forged, fleet, root);
    status(result, 'INVALID_CHAIN');
    assert.match(result.status === 'INVALID_CHAIN' ? result.detail : '', /certificate 0 \(CN=device-66\) is not signed by certificate 1 \(CN=Fleet Intermediate\)/);
    assert.equal(await deviceNamed('device-66'), undefined);
  });

  test('garbage, empty and over-long chains are INVALID_CHAIN, never a throw', async () => {
    for (const chain of [[], ['not a certificate'], ['-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----'], [null as unknown as string]]) {
      status(await t.core.x509Provisioning.provisionByChain(chain, src), 'INVALID_CHAIN');
    }
    const leaf = deviceCertificate('device-99', fleet);
    status(await t.core.x509Provisioning.provisionByChain(Array(11).fill(leaf.cert), src), 'INVALID_CHAIN');
  });

  test('a chain that names no profile and no registered certificate is NO_PROFILE', async () => {
    const loneRoot = certificateAuthority('Lone Root');
    status(await provision(deviceCertificate('device-5', loneRoot), loneRoot), 'NO_PROFILE');
  });

  test('key and secret provisioning against a chain profile is still FAILURE UNSUPPORTED_STRATEGY (DESIGN 4)', async () => {
    const result = await t.core.provisioning.provision({ provisionDeviceKey: fleetProfile.provisionDeviceKey!, provisionDeviceSecret: fleet.cert, deviceName: 'device-1' }, src);
    assert.equal(result.status === 'FAILURE' ? result.reason : result.status, 'UNSUPPORTED_STRATEGY');
  });

  test('bad chains from one address are throttled like bad credentials (DESIGN 6)', async () => {
    const forged = deviceCertificate('device-67', impersonatorOf(fleet));
    const remote = { transport: 'mqtt' as const, address: '192.0.2.7' };
    let last: X509ChainResult | undefined;
    for (let i = 0; i < 25 && last?.status !== 'RATE_LIMITED'; i++) last = await t.core.x509Provisioning.provisionByChain([pemChain(forged, fleet)], remote);
    status(last!, 'RATE_LIMITED');
    await assert.rejects(t.core.auth.byX509Hash(hashOf(forged), 'MQTT', remote), { code: 'AUTH_RATE_LIMITED' });
    t.core.throttle.clear();
  });
});

describe('device name from the CN (spec §7 step 4)', { skip: skipUnlessOpenssl() }, () => {
  test('group 1 of the first match; no match, no group, an invalid or missing pattern, an empty group are errors', () => {
    assert.deepEqual(deviceNameFromCn('device-42', '(.*)'), { name: 'device-42' });
    assert.deepEqual(deviceNameFromCn('acme/device-42/v2', '/(device-\\d+)/'), { name: 'device-42' });
    assert.deepEqual(deviceNameFromCn('device-42', '(?<id>\\d+)$'), { name: '42' });
    for (const [cn, pattern] of [['sensor', 'device-(\\d+)'], ['device-42', 'device-\\d+'], ['device-42', '('], ['device-42', undefined], ['', '(.*)'], [undefined, '(.*)']]) {
      assert.ok('error' in deviceNameFromCn(cn, pattern), `${cn} / ${pattern}`);
    }
  });

  test('the CN is escaped as ThingsBoard escapes it (BouncyCastle IETFUtils.valueToString)', () => {
    const ca = certificateAuthority('Escaping CA');
    const [leaf] = parseChain([deviceCertificate('dev,7;x=1', ca).cert]);
    assert.equal(commonName(leaf!), 'dev\\,7\\;x\\=1');
  });
});
