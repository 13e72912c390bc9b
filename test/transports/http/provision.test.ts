/**
 * HTTP provisioning beyond the matrix: ThingsBoard's black-box HttpClientTest cases (spec §9 K45-48), a race of 50
 * requests for one name (DESIGN 7), credentials types in the reply (spec §5.1), and lost-response retries (DESIGN 3).
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { DeviceProfile, ProvisionType } from '../../../src/core/model.ts';
import { createDevice, post, provision, provisioningProfile, randomId, startTestServer, TENANT, TEST_ACTOR, type TestServer } from './http-support.ts';

describe('spec §9 K: ThingsBoard black-box HttpClientTest', () => {
  const KEY = 'test_provision_key';
  const SECRET = 'test_provision_secret';
  let server: TestServer;
  let profile: DeviceProfile;

  /** As the black-box suite updates its default profile per test: same key and secret, another strategy. */
  async function useStrategy(type: ProvisionType): Promise<void> {
    profile = await server.core.profiles.save(
      TENANT,
      {
        id: profile.id,
        name: profile.name,
        provisionType: type,
        provisionDeviceKey: KEY,
        profileData: { ...profile.profileData, provisionConfiguration: { type, provisionDeviceSecret: SECRET } },
      },
      TEST_ACTOR,
    );
  }

  before(async () => {
    server = await startTestServer({ logLevel: 'warn' });
    profile = await provisioningProfile(server, 'DISABLED', KEY, SECRET);
  });
  after(() => server.close());

  it('provisionRequestForDeviceWithPreProvisionedStrategy (K45)', async () => {
    await useStrategy('CHECK_PRE_PROVISIONED_DEVICES');
    const { device, token } = await createDevice(server, 'test_provision_device_pre', profile);
    const answer = await provision(server, { deviceName: device.name, provisionDeviceKey: KEY, provisionDeviceSecret: SECRET });
    assert.equal(answer.status, 200);
    assert.equal(answer.json.status, 'SUCCESS');
    assert.equal(answer.json.credentialsType, 'ACCESS_TOKEN');
    assert.equal(answer.json.credentialsValue, token, "the device's existing token");
  });

  it('provisionRequestForDeviceWithAllowToCreateNewDevicesStrategy (K46)', async () => {
    await useStrategy('ALLOW_CREATE_NEW_DEVICES');
    const answer = await provision(server, { deviceName: 'test_provision_device', provisionDeviceKey: KEY, provisionDeviceSecret: SECRET });
    assert.equal(answer.json.status, 'SUCCESS');
    const device = await server.core.devices.findByName(TENANT, 'test_provision_device');
    assert.equal(device.profileId, profile.id);
    assert.equal(answer.json.credentialsValue, (await server.core.devices.getCredentials(TENANT, device.id)).credentialsId);
  });

  it('provisionRequestForGatewayDeviceWithAllowToCreateNewDevicesStrategy (K47)', async () => {
    await useStrategy('ALLOW_CREATE_NEW_DEVICES');
    const answer = await provision(server, { deviceName: 'test_provision_gateway', provisionDeviceKey: KEY, provisionDeviceSecret: SECRET, gateway: true });
    assert.equal(answer.json.status, 'SUCCESS');
    const device = await server.core.devices.findByName(TENANT, 'test_provision_gateway');
    assert.deepEqual(device.additionalInfo, { gateway: true });
  });

  it('provisionRequestForDeviceWithDisabledProvisioningStrategy (K48)', async () => {
    await useStrategy('DISABLED');
    const answer = await provision(server, { provisionDeviceKey: KEY, provisionDeviceSecret: SECRET });
    assert.equal(answer.status, 200);
    assert.equal(answer.json.status, 'NOT_FOUND');
    assert.equal(answer.json.errorMsg, 'Provision data was not found!');
  });
});

describe('HTTP provisioning', () => {
  let server: TestServer;
  before(async () => (server = await startTestServer({ logLevel: 'warn', provisionRetryAfterMs: 3_600_000 })));
  after(() => server.close());

  it('50 parallel requests for one name give one SUCCESS, 49 FAILURE and one device', async () => {
    const p = await provisioningProfile(server, 'ALLOW_CREATE_NEW_DEVICES');
    const name = `race-${randomId()}`;
    const answers = await Promise.all(Array.from({ length: 50 }, () => provision(server, { deviceName: name, provisionDeviceKey: p.key, provisionDeviceSecret: p.secret })));
    assert.deepEqual(answers.map((a) => a.status), Array(50).fill(200));
    const statuses = answers.map((a) => a.json.status);
    assert.equal(statuses.filter((s) => s === 'SUCCESS').length, 1, statuses.join(','));
    assert.equal(statuses.filter((s) => s === 'FAILURE').length, 49);
    const devices = await server.core.devices.list(TENANT, { page: 0, pageSize: 100, profileId: p.id });
    assert.equal(devices.totalElements, 1);
    assert.equal(devices.data[0]!.name, name);
  });

  it('the body is read as text whatever the Content-Type, or without one (spec §5.3)', async () => {
    const p = await provisioningProfile(server, 'ALLOW_CREATE_NEW_DEVICES');
    for (const headers of [{ 'content-type': 'text/plain' }, { 'content-type': 'application/octet-stream' }, {} as Record<string, string>]) {
      const body = JSON.stringify({ deviceName: `ct-${randomId()}`, provisionDeviceKey: p.key, provisionDeviceSecret: p.secret });
      const answer = await provision(server, body, headers);
      assert.equal(answer.json?.status, 'SUCCESS', `${JSON.stringify(headers)}: ${answer.text}`);
    }
  });

  it('replies with the requested token, X.509 body or nested MQTT_BASIC object (spec §5.1)', async () => {
    const p = await provisioningProfile(server, 'ALLOW_CREATE_NEW_DEVICES');
    const base = { provisionDeviceKey: p.key, provisionDeviceSecret: p.secret };
    const token = `tok-${randomId()}`;
    const tokenAnswer = await provision(server, { ...base, deviceName: `t-${randomId()}`, credentialsType: 'ACCESS_TOKEN', token });
    assert.equal(tokenAnswer.json.credentialsValue, token);

    const cert = await provision(server, { ...base, deviceName: `x-${randomId()}`, credentialsType: 'X509_CERTIFICATE', hash: 'testHash' });
    assert.equal(cert.json.credentialsType, 'X509_CERTIFICATE');
    assert.equal(cert.json.credentialsValue, 'testHash');

    const clientId = `c-${randomId()}`;
    const basic = await provision(server, { ...base, deviceName: `m-${randomId()}`, credentialsType: 'MQTT_BASIC', clientId, username: 'u', password: 'p' });
    assert.ok(basic.text.includes(`"credentialsValue":{"clientId":"${clientId}","userName":"u","password":"p"}`), basic.text);
  });

  it('JSON null means absent, as the Python SDK sends it (DESIGN 1)', async () => {
    const p = await provisioningProfile(server, 'ALLOW_CREATE_NEW_DEVICES');
    const answer = await provision(server, {
      deviceName: `n-${randomId()}`, provisionDeviceKey: p.key, provisionDeviceSecret: p.secret,
      credentialsType: 'MQTT_BASIC', clientId: null, username: `u-${randomId()}`, password: 'pw', token: null, hash: null, gateway: null,
    });
    assert.equal(answer.status, 200, answer.text);
    assert.equal(answer.json.status, 'SUCCESS', answer.text);
    assert.equal(answer.json.credentialsType, 'MQTT_BASIC');
  });

  it('X509_CERTIFICATE_CHAIN through the key/secret path answers FAILURE at once (DESIGN 4)', async () => {
    const p = await provisioningProfile(server, 'X509_CERTIFICATE_CHAIN');
    const answer = await provision(server, { deviceName: `c-${randomId()}`, provisionDeviceKey: p.key, provisionDeviceSecret: p.secret });
    assert.equal(answer.status, 200);
    assert.equal(answer.json.status, 'FAILURE');
  });
});

describe('lost-response retries over HTTP (DESIGN 3)', () => {
  let server: TestServer;
  before(async () => (server = await startTestServer({ logLevel: 'warn', provisionRetryAfterMs: 0 })));
  after(() => server.close());

  it('a repeat gets the same token until the token is first used, then FAILURE', async () => {
    const p = await provisioningProfile(server, 'ALLOW_CREATE_NEW_DEVICES');
    const req = { deviceName: `retry-${randomId()}`, provisionDeviceKey: p.key, provisionDeviceSecret: p.secret };
    const first = await provision(server, req);
    assert.equal(first.json.status, 'SUCCESS');
    const again = await provision(server, req);
    assert.equal(again.json.status, 'SUCCESS');
    assert.equal(again.json.credentialsValue, first.json.credentialsValue);
    assert.equal((await post(server, first.json.credentialsValue, 'telemetry', '{"t":1}')).status, 200, 'the device connects');
    const late = await provision(server, req);
    assert.equal(late.json.status, 'FAILURE');
  });
});
