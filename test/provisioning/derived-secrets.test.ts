/**
 * Derived per-device provisioning secrets (provisionConfiguration.secretDerivation HMAC_SHA256): each device sends
 * base64(HMAC-SHA256(profile secret, device name)) as provisionDeviceSecret, over HTTP (curl), MQTT (mosquitto_rr)
 * and CoAP (coap-client-notls); the factory gets the secret from the admin API, the CLI and the CSV export.
 */
import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { deriveDeviceSecret } from '../../src/core/provisioning/derived-secret.ts';
import { runCli } from '../cli/run-cli.ts';
import { ADMIN_EMAIL, ADMIN_PASSWORD, startTestServer, type TestServer } from '../support/harness.ts';
import { skipSuiteForMissingTool } from '../support/tools.ts';
import { coapRequest } from '../transports/coap/support.ts';
import { admin, createProfile, missingClients, provisionWithCoapClient, provisionWithCurl, provisionWithMosquitto } from './support.ts';

const KEY = 'derived-key';
const SECRET = 'derived-profile-secret';
const secretOf = (name: string) => createHmac('sha256', SECRET).update(name).digest('base64');

let server: TestServer;
let profileId: string;

before(async () => {
  // Loopback is not exempt here, so the per-source failure limit applies to the test's clients.
  server = await startTestServer({ logLevel: 'warn', throttleExemptAddresses: '192.0.2.1', throttleProvisionFailuresPerSource: '5:600' });
  profileId = await createProfile(server, 'Derived', 'ALLOW_CREATE_NEW_DEVICES', KEY, SECRET, { secretDerivation: 'HMAC_SHA256' });
  await createProfile(server, 'DerivedPre', 'CHECK_PRE_PROVISIONED_DEVICES', 'derived-pre-key', SECRET, { secretDerivation: 'HMAC_SHA256' });
});
after(() => server?.close());

test('the derivation is base64(HMAC-SHA256(profile secret, device name)) over UTF-8', () => {
  assert.equal(deriveDeviceSecret(SECRET, 'sensor-1'), secretOf('sensor-1'));
  assert.equal(deriveDeviceSecret('k', 'größe'), createHmac('sha256', Buffer.from('k')).update(Buffer.from('größe', 'utf8')).digest('base64'));
});

describe('a device provisions with its own derived secret', { skip: skipSuiteForMissingTool(missingClients('curl', 'mosquitto_rr', 'coap-client-notls')) }, () => {
  test('over HTTP (curl)', async () => {
    const { status, reply } = await provisionWithCurl(server, { deviceName: 'http-dev', provisionDeviceKey: KEY, provisionDeviceSecret: secretOf('http-dev') });
    assert.equal(status, 200);
    assert.equal(reply.status, 'SUCCESS', JSON.stringify(reply));
    assert.equal(reply.deviceName, 'http-dev');
  });
  test('over MQTT (mosquitto_rr)', async () => {
    const reply = await provisionWithMosquitto(server, { deviceName: 'mqtt-dev', provisionDeviceKey: KEY, provisionDeviceSecret: secretOf('mqtt-dev') });
    assert.equal(reply.status, 'SUCCESS', JSON.stringify(reply));
  });
  test('over CoAP (coap-client-notls)', async () => {
    const reply = await provisionWithCoapClient(server, { deviceName: 'coap-dev', provisionDeviceKey: KEY, provisionDeviceSecret: secretOf('coap-dev') });
    assert.equal(reply.status, 'SUCCESS', JSON.stringify(reply));
  });
  test('a pre-provisioned device claims itself with its derived secret', async () => {
    const created = await admin(server, 'POST', '/api/device', { name: 'pre-dev', type: 'DerivedPre' });
    assert.equal(created.status, 200, created.text);
    const { reply } = await provisionWithCurl(server, { deviceName: 'pre-dev', provisionDeviceKey: 'derived-pre-key', provisionDeviceSecret: SECRET });
    assert.equal(reply.reason, 'BAD_KEY_OR_SECRET', 'the profile secret itself is refused');
    const ok = await provisionWithCurl(server, { deviceName: 'pre-dev', provisionDeviceKey: 'derived-pre-key', provisionDeviceSecret: secretOf('pre-dev') });
    assert.equal(ok.reply.status, 'SUCCESS', JSON.stringify(ok.reply));
  });
});

describe('a leaked secret provisions only its own name', () => {
  test("another device's secret, the profile secret and a missing name are NOT_FOUND on every transport, and nothing is created", async () => {
    const attempts: Record<string, unknown>[] = [
      { deviceName: 'victim', provisionDeviceKey: KEY, provisionDeviceSecret: secretOf('thief') },
      { deviceName: 'victim', provisionDeviceKey: KEY, provisionDeviceSecret: SECRET },
      { provisionDeviceKey: KEY, provisionDeviceSecret: secretOf('') },
    ];
    for (const body of attempts) {
      const res = await fetch(`${server.httpUrl}/api/v1/provision`, { method: 'POST', body: JSON.stringify(body) });
      const reply = (await res.json()) as Record<string, unknown>;
      assert.deepEqual([reply.status, reply.reason], ['NOT_FOUND', 'BAD_KEY_OR_SECRET'], JSON.stringify(body));
    }
    const coap = await coapRequest(server.coapPort, '/api/v1/provision', { payload: JSON.stringify(attempts[0]) });
    assert.equal(coap.code, '4.00');
    assert.equal(JSON.parse(coap.text).reason, 'BAD_KEY_OR_SECRET');
    const found = await admin(server, 'GET', '/api/tenant/devices?deviceName=victim');
    assert.equal(found.status, 404);
  });

  test('wrong derived secrets count as failed attempts: the source is throttled (429 + Retry-After)', async () => {
    let last: Response | undefined;
    for (let i = 0; i < 8; i++) {
      last = await fetch(`${server.httpUrl}/api/v1/provision`, { method: 'POST', body: JSON.stringify({ deviceName: `guess-${i}`, provisionDeviceKey: KEY, provisionDeviceSecret: `guess-${i}` }) });
      if (last.status === 429) break;
      await last.text();
    }
    assert.equal(last?.status, 429);
    assert.ok(Number(last?.headers.get('retry-after')) > 0);
    assert.equal(((await last!.json()) as { reason: string }).reason, 'RATE_LIMITED');
  });
});

describe('the factory gets each device secret', () => {
  test('from the admin endpoint (audited without the secret)', async () => {
    const res = await admin(server, 'GET', `/api/deviceProfile/${profileId}/derivedSecret?deviceName=factory-1`);
    assert.equal(res.status, 200, res.text);
    assert.deepEqual(res.json, { deviceName: 'factory-1', provisionDeviceSecret: secretOf('factory-1') });
    const audit = await admin(server, 'GET', '/api/audit/logs?pageSize=50&page=0');
    const row = audit.json.data.find((r: any) => r.actionType === 'DERIVED_SECRET_READ');
    assert.ok(row, audit.text);
    assert.ok(!JSON.stringify(audit.json).includes(secretOf('factory-1')), 'the audit log never holds the secret');
  });
  test('the endpoint refuses a profile without derived secrets and an empty name (400)', async () => {
    const plain = await createProfile(server, 'Plain', 'ALLOW_CREATE_NEW_DEVICES', 'plain-key', 'plain-secret');
    assert.equal((await admin(server, 'GET', `/api/deviceProfile/${plain}/derivedSecret?deviceName=x`)).status, 400);
    assert.equal((await admin(server, 'GET', `/api/deviceProfile/${profileId}/derivedSecret?deviceName=`)).status, 400);
  });
  test('from `fleetgate profile derive-key PROFILE DEVICE`', async () => {
    const out = await runCli(['profile', 'derive-key', 'Derived', 'factory-2'], { FLEETGATE_URL: server.httpUrl, FLEETGATE_ADMIN_USERNAME: ADMIN_EMAIL, FLEETGATE_ADMIN_PASSWORD: ADMIN_PASSWORD });
    assert.equal(out.code, 0, out.stderr);
    assert.equal(out.stdout.trim(), secretOf('factory-2'));
  });
  test('`fleetgate profile create --derived-secrets` makes such a profile', async () => {
    const env = { FLEETGATE_URL: server.httpUrl, FLEETGATE_ADMIN_USERNAME: ADMIN_EMAIL, FLEETGATE_ADMIN_PASSWORD: ADMIN_PASSWORD };
    const out = await runCli(['profile', 'create', 'CliDerived', '--strategy', 'allow-create', '--key', 'cli-derived-key', '--secret', 'cli-derived-secret', '--derived-secrets', '--json'], env);
    assert.equal(out.code, 0, out.stderr);
    assert.equal(JSON.parse(out.stdout).profileData.provisionConfiguration.secretDerivation, 'HMAC_SHA256');
    const expected = createHmac('sha256', 'cli-derived-secret').update('cli-dev').digest('base64');
    // From an exempt address: 127.0.0.1 is blocked by the throttling test above.
    const reply = await server.core.provisioning.provision({ deviceName: 'cli-dev', provisionDeviceKey: 'cli-derived-key', provisionDeviceSecret: expected }, { transport: 'http', address: '192.0.2.1' });
    assert.equal(reply.status, 'SUCCESS', JSON.stringify(reply));
  });
  test('in the provisionDeviceSecret column of the CSV export', async () => {
    const res = await fetch(`${server.httpUrl}/api/devices/export?deviceProfileId=${profileId}`, { headers: { 'x-authorization': `Bearer ${await server.adminToken()}` } });
    const lines = (await res.text()).trim().split('\r\n');
    const header = lines[0].split(',');
    const column = header.indexOf('provisionDeviceSecret');
    assert.ok(column > 0, lines[0]);
    const httpDev = lines.find((l) => l.startsWith('http-dev,'));
    assert.ok(httpDev, 'the device provisioned over HTTP is exported');
    assert.ok(httpDev.includes(secretOf('http-dev')));
  });
});

test('a profile with an unknown secretDerivation is refused with 400 naming the field', async () => {
  const res = await admin(server, 'POST', '/api/deviceProfile', {
    name: 'Bad',
    provisionType: 'ALLOW_CREATE_NEW_DEVICES',
    provisionDeviceKey: 'bad-key',
    profileData: { provisionConfiguration: { type: 'ALLOW_CREATE_NEW_DEVICES', provisionDeviceSecret: 's', secretDerivation: 'MD5' } },
  });
  assert.equal(res.status, 400);
  assert.match(res.json.message, /secretDerivation/);
});
