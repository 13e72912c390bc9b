/**
 * Device-initiated credentials rotation over HTTP (curl), MQTT (mosquitto_rr, MQTT.js) and CoAP (coap-client-notls),
 * with the grace period of the old token, an idempotent repeat after a lost answer, the profile-wide rotation
 * requirement as a shared attribute, and the per-profile reprovisioning policy.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { DEFAULT_TENANT_ID } from '../../src/core/model.ts';
import { createTestCore } from '../support/core.ts';
import { ADMIN_EMAIL, ADMIN_PASSWORD, startTestServer, TEST_ACTOR, type TestServer } from '../support/harness.ts';
import { runCli } from '../cli/run-cli.ts';
import { skipSuiteForMissingTool } from '../support/tools.ts';
import { mqttjs, nextMessage } from '../transports/mqtt/e2e-support.ts';
import { admin, coapClientPath, createProfile, missingClients, run } from './support.ts';

const T = DEFAULT_TENANT_ID;
let server: TestServer;

async function deviceWithToken(name: string, token: string, profileId?: string): Promise<string> {
  const device = await server.core.devices.save(T, { name, ...(profileId ? { deviceProfileId: profileId } : {}) }, TEST_ACTOR, token);
  return device.id;
}

/** HTTP telemetry with a token: the status (200 accepted, 401 refused). */
async function sendTelemetry(token: string): Promise<number> {
  const res = await fetch(`${server.httpUrl}/api/v1/${token}/telemetry`, { method: 'POST', body: '{"t":1}' });
  await res.text();
  return res.status;
}

before(async () => {
  server = await startTestServer({ logLevel: 'warn' });
});
after(() => server?.close());

describe('a device rotates its access token', { skip: skipSuiteForMissingTool(missingClients('curl', 'mosquitto_rr', 'coap-client-notls')) }, () => {
  test('over HTTP (curl): new token committed and working, old one still working, a repeat returns the same new token', async () => {
    await deviceWithToken('rot-http', 'rot-http-token-0001');
    const call = async (token: string) => {
      const out = await run('curl', ['-s', '-w', '\n%{http_code}', '-X', 'POST', `${server.httpUrl}/api/v1/${token}/credentials/rotate`]);
      const lines = out.stdout.trimEnd().split('\n');
      return { status: Number(lines.pop()), body: JSON.parse(lines.join('\n')) };
    };
    const first = await call('rot-http-token-0001');
    assert.equal(first.status, 200);
    assert.equal(first.body.status, 'SUCCESS');
    assert.equal(first.body.credentialsType, 'ACCESS_TOKEN');
    assert.match(first.body.credentialsValue, /^[A-Za-z0-9]{20}$/);
    assert.ok(first.body.previousCredentialsValidUntil > Date.now() + 3_000_000, 'default grace period of an hour');
    assert.equal(await sendTelemetry(first.body.credentialsValue), 200, 'the new token works at once');
    assert.equal(await sendTelemetry('rot-http-token-0001'), 200, 'the old token works during the grace period');
    // The answer was "lost": the device asks again with its old token and gets the same new one.
    const again = await call('rot-http-token-0001');
    assert.equal(again.body.credentialsValue, first.body.credentialsValue);
    // The new token rotates on.
    const next = await call(first.body.credentialsValue);
    assert.notEqual(next.body.credentialsValue, first.body.credentialsValue);
    const audit = await admin(server, 'GET', '/api/audit/logs?pageSize=100&page=0');
    const rows = audit.json.data.filter((r: any) => r.actionType === 'CREDENTIALS_ROTATED' && r.entityName === 'rot-http');
    assert.equal(rows.length, 2, 'two rotations, the repeat is not one');
    assert.ok(!audit.text.includes(first.body.credentialsValue), 'tokens are not audited');
  });

  test('over MQTT (mosquitto_rr): v1/devices/me/credentials/rotate/request -> .../response', async () => {
    await deviceWithToken('rot-mqtt', 'rot-mqtt-token-0001');
    const out = await run('mosquitto_rr', ['-h', '127.0.0.1', '-p', String(server.mqttPort), '-u', 'rot-mqtt-token-0001', '-q', '1', '-t', 'v1/devices/me/credentials/rotate/request', '-e', 'v1/devices/me/credentials/rotate/response', '-m', '{}', '-W', '20']);
    assert.equal(out.code, 0, out.stderr);
    const body = JSON.parse(out.stdout);
    assert.equal(body.status, 'SUCCESS');
    const pub = await run('mosquitto_pub', ['-h', '127.0.0.1', '-p', String(server.mqttPort), '-u', body.credentialsValue, '-q', '1', '-t', 'v1/devices/me/telemetry', '-m', '{"rotated":1}']);
    assert.equal(pub.code, 0, pub.stderr);
  });

  test('over CoAP (coap-client-notls): POST /api/v1/{token}/credentials/rotate answers 2.04 with the new token', async () => {
    await deviceWithToken('rot-coap', 'rot-coap-token-0001');
    const out = await run(coapClientPath()!, ['-m', 'post', '-B', '20', `coap://127.0.0.1:${server.coapPort}/api/v1/rot-coap-token-0001/credentials/rotate`]);
    assert.equal(out.code, 0, out.stderr);
    const body = JSON.parse(out.stdout.trim());
    assert.equal(body.status, 'SUCCESS');
    assert.equal(await sendTelemetry(body.credentialsValue), 200);
  });
});

describe('what rotation refuses', () => {
  test('a bad token is 401 and nothing changes', async () => {
    const res = await fetch(`${server.httpUrl}/api/v1/no-such-token/credentials/rotate`, { method: 'POST' });
    assert.equal(res.status, 401);
  });
  test('MQTT_BASIC credentials cannot be rotated by the device: FAILURE UNSUPPORTED_CREDENTIALS_TYPE', async () => {
    const device = await server.core.devices.save(T, { name: 'rot-basic' }, TEST_ACTOR);
    await server.core.devices.saveCredentials(T, { deviceId: device.id, credentialsType: 'MQTT_BASIC', credentialsValue: JSON.stringify({ clientId: 'rot-basic-c', userName: 'rot-basic-u', password: 'rot-basic-p' }) }, TEST_ACTOR);
    const client = await mqttjs(server, { clientId: 'rot-basic-c', username: 'rot-basic-u', password: 'rot-basic-p' });
    try {
      await client.subscribeAsync('v1/devices/me/credentials/rotate/response', { qos: 1 });
      const answer = nextMessage(client, 'v1/devices/me/credentials/rotate/response', 20_000);
      await client.publishAsync('v1/devices/me/credentials/rotate/request', '{}', { qos: 1 });
      const body = JSON.parse((await answer).payload.toString());
      assert.deepEqual([body.status, body.reason], ['FAILURE', 'UNSUPPORTED_CREDENTIALS_TYPE']);
    } finally {
      await client.endAsync();
    }
  });
  test('GET on the CoAP resource is 4.05 and a wrong sub-path is 4.00', async () => {
    const { coapRequest } = await import('../transports/coap/support.ts');
    await deviceWithToken('rot-coap-bad', 'rot-coap-bad-token');
    assert.equal((await coapRequest(server.coapPort, '/api/v1/rot-coap-bad-token/credentials/rotate', { method: 'GET' })).code, '4.05');
    assert.equal((await coapRequest(server.coapPort, '/api/v1/rot-coap-bad-token/credentials/other', { method: 'POST' })).code, '4.00');
  });
});

test('an administrator replacing the credentials ends the grace period of rotated-away tokens at once', async () => {
  const deviceId = await deviceWithToken('rot-admin', 'rot-admin-token-0');
  const res = await fetch(`${server.httpUrl}/api/v1/rot-admin-token-0/credentials/rotate`, { method: 'POST' });
  const rotated = (await res.json()) as { credentialsValue: string };
  assert.equal(await sendTelemetry('rot-admin-token-0'), 200, 'in its grace period');
  await server.core.devices.saveCredentials(T, { deviceId, credentialsType: 'ACCESS_TOKEN', credentialsId: 'rot-admin-token-new' }, TEST_ACTOR);
  assert.equal(await sendTelemetry('rot-admin-token-0'), 401, 'the grace token is dead');
  assert.equal(await sendTelemetry(rotated.credentialsValue), 401, 'the rotated token is dead');
  assert.equal(await sendTelemetry('rot-admin-token-new'), 200);
});

test('the old token stops working when its grace period ends (core, short grace)', async () => {
  const t = await createTestCore({ credentialsRotationGraceMs: 300 });
  try {
    await t.core.devices.save(T, { name: 'short-grace' }, TEST_ACTOR, 'short-grace-token');
    const identity = (await t.core.auth.byAccessToken('short-grace-token'))!;
    const rotated = await t.core.rotation.rotate(identity, { transport: 'http' });
    assert.equal(rotated.status, 'SUCCESS');
    assert.ok(await t.core.auth.byAccessToken('short-grace-token'), 'accepted right after the rotation');
    let refused = false;
    for (let i = 0; i < 200 && !refused; i++) {
      refused = (await t.core.auth.byAccessToken('short-grace-token')) === undefined;
      if (!refused) await new Promise((r) => setTimeout(r, 50));
    }
    assert.ok(refused, 'refused once the grace period is over (the cache never outlives it)');
    assert.ok(await t.core.auth.byAccessToken(rotated.status === 'SUCCESS' ? rotated.credentialsValue : ''), 'the new token still works');
  } finally {
    await t.close();
  }
});

test('an administrator requires rotation for a profile: devices learn it from a shared attribute, rotation clears it', async () => {
  const profileId = await createProfile(server, 'RotateMe', 'CHECK_PRE_PROVISIONED_DEVICES', 'rotate-me-key', 'rotate-me-secret');
  await deviceWithToken('must-rotate', 'must-rotate-token', profileId);
  const client = await mqttjs(server, { username: 'must-rotate-token' });
  try {
    await client.subscribeAsync('v1/devices/me/attributes', { qos: 1 });
    const pushed = nextMessage(client, 'v1/devices/me/attributes', 20_000);
    // `fleetgate profile require-rotation` calls POST /api/deviceProfile/{id}/requireCredentialsRotation.
    const cli = await runCli(['profile', 'require-rotation', 'RotateMe', '--json'], { FLEETGATE_URL: server.httpUrl, FLEETGATE_ADMIN_USERNAME: ADMIN_EMAIL, FLEETGATE_ADMIN_PASSWORD: ADMIN_PASSWORD });
    assert.equal(cli.code, 0, cli.stderr);
    assert.deepEqual(JSON.parse(cli.stdout), { devices: 1 });
    assert.deepEqual(JSON.parse((await pushed).payload.toString()), { credentialsRotationRequired: true });
    const cleared = nextMessage(client, 'v1/devices/me/attributes', 20_000);
    const answer = nextMessage(client, 'v1/devices/me/credentials/rotate/response', 20_000);
    await client.publishAsync('v1/devices/me/credentials/rotate/request', '{}', { qos: 1 });
    assert.equal(JSON.parse((await answer).payload.toString()).status, 'SUCCESS');
    assert.deepEqual(JSON.parse((await cleared).payload.toString()), { deleted: ['credentialsRotationRequired'] });
  } finally {
    await client.endAsync();
  }
});

describe('reprovisionPolicy: a repeat request for an existing device that has connected', () => {
  const provision = async (key: string, secret: string, deviceName: string) =>
    (await (await fetch(`${server.httpUrl}/api/v1/provision`, { method: 'POST', body: JSON.stringify({ deviceName, provisionDeviceKey: key, provisionDeviceSecret: secret }) })).json()) as Record<string, any>;

  for (const [policy, expect] of [
    ['NEVER', 'FAILURE'],
    ['SAME_CREDENTIALS', 'same'],
    ['NEW_CREDENTIALS', 'new'],
  ] as const) {
    test(`${policy}`, async () => {
      const key = `repro-${policy}-key`;
      await createProfile(server, `Repro ${policy}`, 'ALLOW_CREATE_NEW_DEVICES', key, 'repro-secret', { reprovisionPolicy: policy });
      const first = await provision(key, 'repro-secret', `repro-${policy}`);
      assert.equal(first.status, 'SUCCESS');
      assert.equal(await sendTelemetry(first.credentialsValue), 200, 'the device connects');
      const again = await provision(key, 'repro-secret', `repro-${policy}`);
      if (expect === 'FAILURE') {
        assert.deepEqual([again.status, again.reason], ['FAILURE', 'DEVICE_EXISTS']);
        return;
      }
      assert.equal(again.status, 'SUCCESS', JSON.stringify(again));
      assert.equal(again.deviceId, first.deviceId);
      if (expect === 'same') assert.equal(again.credentialsValue, first.credentialsValue);
      else {
        assert.notEqual(again.credentialsValue, first.credentialsValue);
        assert.equal(await sendTelemetry(first.credentialsValue), 401, 'the old token is dead at once');
        assert.equal(await sendTelemetry(again.credentialsValue), 200);
      }
    });
  }

  test('NEW_CREDENTIALS on a pre-provisioned profile replaces the claimed device token', async () => {
    const profileId = await createProfile(server, 'ReproPre', 'CHECK_PRE_PROVISIONED_DEVICES', 'repro-pre-key', 'repro-pre-secret', { reprovisionPolicy: 'NEW_CREDENTIALS' });
    await deviceWithToken('repro-pre', 'repro-pre-token', profileId);
    assert.equal((await provision('repro-pre-key', 'repro-pre-secret', 'repro-pre')).credentialsValue, 'repro-pre-token');
    const unused = await provision('repro-pre-key', 'repro-pre-secret', 'repro-pre');
    assert.equal(unused.reason, 'ALREADY_PROVISIONED', 'not connected yet: the usual answer');
    assert.equal(await sendTelemetry('repro-pre-token'), 200);
    const again = await provision('repro-pre-key', 'repro-pre-secret', 'repro-pre');
    assert.equal(again.status, 'SUCCESS');
    assert.notEqual(again.credentialsValue, 'repro-pre-token');
    assert.equal(await sendTelemetry('repro-pre-token'), 401);
  });

  test('an unknown reprovisionPolicy is refused when the profile is saved', async () => {
    const res = await admin(server, 'POST', '/api/deviceProfile', {
      name: 'ReproBad',
      provisionType: 'ALLOW_CREATE_NEW_DEVICES',
      provisionDeviceKey: 'repro-bad',
      profileData: { provisionConfiguration: { type: 'ALLOW_CREATE_NEW_DEVICES', provisionDeviceSecret: 's', reprovisionPolicy: 'ALWAYS' } },
    });
    assert.equal(res.status, 400);
    assert.match(res.json.message, /reprovisionPolicy/);
  });
});
