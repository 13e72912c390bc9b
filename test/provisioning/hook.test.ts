/**
 * The pre-provisioning hook against a real HTTP hook server: signed facts without the secret, allow with a label and
 * initial attributes, deny (HOOK_DENIED), and every way a hook can fail — garbage, 500, slow, never, unreachable —
 * under fail-closed (HOOK_UNAVAILABLE, nothing written) and fail-open; bounded concurrency, metrics and audit.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { startTestServer, type TestServer } from '../support/harness.ts';
import { skipSuiteForMissingTool } from '../support/tools.ts';
import { coapRequest } from '../transports/coap/support.ts';
import { json, TestHook } from './hook-server.ts';
import { admin, createProfile, missingClients, provisionWithCurl, provisionWithMosquitto } from './support.ts';

const HOOK_SECRET = 'hook-signing-secret-0123456789';
let server: TestServer;
let hook: TestHook;
let n = 0;

/** A profile of its own per test, so tests do not share hook settings. */
async function profileWithHook(hookOptions: Record<string, unknown>, type: 'ALLOW_CREATE_NEW_DEVICES' | 'CHECK_PRE_PROVISIONED_DEVICES' = 'ALLOW_CREATE_NEW_DEVICES') {
  const i = ++n;
  const key = `hook-key-${i}`;
  const secret = `hook-secret-${i}`;
  const id = await createProfile(server, `Hooked ${i}`, type, key, secret, { preProvisioningHook: { url: hook.url, secret: HOOK_SECRET, ...hookOptions } });
  return { id, key, secret, name: `Hooked ${i}` };
}

const provision = (p: { key: string; secret: string }, deviceName: string) =>
  fetch(`${server.httpUrl}/api/v1/provision`, { method: 'POST', body: JSON.stringify({ deviceName, provisionDeviceKey: p.key, provisionDeviceSecret: p.secret }) }).then(
    async (r) => (await r.json()) as Record<string, any>,
  );

async function deviceExists(name: string): Promise<boolean> {
  const res = await admin(server, 'GET', `/api/tenant/devices?deviceName=${encodeURIComponent(name)}`);
  return res.status === 200;
}

before(async () => {
  hook = await TestHook.start(HOOK_SECRET);
  server = await startTestServer({ logLevel: 'warn', provisionHookConcurrency: 2 });
});
after(async () => {
  await server?.close();
  await hook?.close();
});

describe('an allowing hook', () => {
  test('receives the signed facts of the request, never the secret, and sets the label and initial attributes', async () => {
    const p = await profileWithHook({});
    hook.respond = (_c, res) => json(res, 200, { allow: true, label: 'Line 3', serverAttributes: { batch: 'B-17' }, sharedAttributes: { interval: 30 } });
    const reply = await provision(p, 'allowed-1');
    assert.equal(reply.status, 'SUCCESS', JSON.stringify(reply));
    const call = hook.calls.at(-1)!;
    assert.equal(call.signatureValid, true, 'X-Fleetgate-Signature is HMAC-SHA256(secret, timestamp.body)');
    assert.deepEqual(
      { ...call.body, timestamp: 0, sourceAddress: 0 },
      { event: 'PRE_PROVISION', deviceName: 'allowed-1', deviceProfileId: p.id, deviceProfileName: p.name, provisionType: 'ALLOW_CREATE_NEW_DEVICES', transport: 'http', sourceAddress: 0, credentialsType: 'ACCESS_TOKEN', gateway: false, timestamp: 0 },
    );
    assert.ok(!call.raw.includes(p.secret), 'the provision secret is not sent');
    const device = await admin(server, 'GET', '/api/tenant/devices?deviceName=allowed-1');
    assert.equal(device.json.label, 'Line 3');
    const server_ = await admin(server, 'GET', `/api/plugins/telemetry/DEVICE/${reply.deviceId}/values/attributes/SERVER_SCOPE`);
    assert.ok(server_.json.some((a: any) => a.key === 'batch' && a.value === 'B-17'), server_.text);
    const shared = await admin(server, 'GET', `/api/plugins/telemetry/DEVICE/${reply.deviceId}/values/attributes/SHARED_SCOPE`);
    assert.ok(shared.json.some((a: any) => a.key === 'interval' && a.value === 30), shared.text);
  });

  test('a pre-provisioned device claimed through the hook gets its label too', async () => {
    const p = await profileWithHook({}, 'CHECK_PRE_PROVISIONED_DEVICES');
    assert.equal((await admin(server, 'POST', '/api/device', { name: 'pre-hooked', type: p.name })).status, 200);
    hook.respond = (_c, res) => json(res, 200, { allow: true, label: 'claimed' });
    assert.equal((await provision(p, 'pre-hooked')).status, 'SUCCESS');
    assert.equal((await admin(server, 'GET', '/api/tenant/devices?deviceName=pre-hooked')).json.label, 'claimed');
  });
});

describe('a denying hook', { skip: skipSuiteForMissingTool(missingClients('curl', 'mosquitto_rr')) }, () => {
  test('HOOK_DENIED on HTTP (curl), MQTT (mosquitto_rr) and CoAP, nothing written, audited and counted', async () => {
    const p = await profileWithHook({});
    hook.respond = (_c, res) => json(res, 200, { allow: false });
    const body = (name: string) => ({ deviceName: name, provisionDeviceKey: p.key, provisionDeviceSecret: p.secret });
    const http = await provisionWithCurl(server, body('denied-http'));
    assert.deepEqual([http.status, http.reply.status, http.reply.reason], [200, 'FAILURE', 'HOOK_DENIED']);
    const mqtt = await provisionWithMosquitto(server, body('denied-mqtt'));
    assert.deepEqual([mqtt.status, mqtt.reason], ['FAILURE', 'HOOK_DENIED']);
    const coap = await coapRequest(server.coapPort, '/api/v1/provision', { payload: JSON.stringify(body('denied-coap')) });
    assert.equal(coap.code, '4.00');
    assert.equal(JSON.parse(coap.text).reason, 'HOOK_DENIED');
    for (const name of ['denied-http', 'denied-mqtt', 'denied-coap']) assert.equal(await deviceExists(name), false, name);
    assert.deepEqual(hook.calls.slice(-3).map((c) => c.body.transport), ['http', 'mqtt', 'coap']);
    const audit = await admin(server, 'GET', '/api/audit/logs?pageSize=100&page=0');
    const row = audit.json.data.find((r: any) => r.actionType === 'PROVISION_FAILURE' && r.entityName === 'denied-http');
    assert.equal(row?.actionData?.reason, 'HOOK_DENIED', audit.text);
    const metrics = await (await fetch(`${server.httpUrl}/metrics`)).text();
    assert.match(metrics, /fleetgate_provision_hook_calls_total\{outcome="denied"\} [3-9]/);
  });
});

describe('a hook that fails, under fail-closed: HOOK_UNAVAILABLE and nothing written', () => {
  const failures: [string, (res: import('node:http').ServerResponse) => void][] = [
    ['answers garbage', (res) => json(res, 200, 'this is not json')],
    ['answers JSON without a boolean allow', (res) => json(res, 200, { allow: 'yes' })],
    ['answers attributes that are not an object', (res) => json(res, 200, { allow: true, serverAttributes: [1, 2] })],
    ['answers 500', (res) => json(res, 500, { allow: true })],
    ['answers a redirect', (res) => res.writeHead(302, { location: 'http://127.0.0.1:1/' }).end()],
    ['answers an endless body', (res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.write('{"allow":true,"label":"' + 'x'.repeat(70 * 1024));
    }],
    ['never answers', (res) => hook.hold(res)],
  ];
  for (const [what, respond] of failures) {
    test(`the hook ${what}`, async () => {
      const p = await profileWithHook({ timeoutMs: 500 });
      hook.respond = (_c, res) => respond(res);
      const name = `unavailable-${what.replace(/\W+/g, '-')}`;
      const reply = await provision(p, name);
      assert.deepEqual([reply.status, reply.reason], ['FAILURE', 'HOOK_UNAVAILABLE'], JSON.stringify(reply));
      assert.equal(await deviceExists(name), false);
    });
  }

  test('the hook answers slowly: after its timeout (default 2 s) the answer no longer counts', async () => {
    const p = await profileWithHook({});
    const late: import('node:http').ServerResponse[] = [];
    hook.respond = (_c, res) => late.push(res);
    const reply = await provision(p, 'slow-hook');
    for (const res of late) json(res, 200, { allow: true });
    assert.equal(reply.reason, 'HOOK_UNAVAILABLE');
    assert.equal(await deviceExists('slow-hook'), false);
  });

  test('the hook is unreachable (nothing listens on its port)', async () => {
    const i = ++n;
    await createProfile(server, `Unreachable ${i}`, 'ALLOW_CREATE_NEW_DEVICES', `unreach-key-${i}`, 'unreach-secret', {
      preProvisioningHook: { url: 'http://127.0.0.1:1/hook', secret: HOOK_SECRET },
    });
    const reply = await provision({ key: `unreach-key-${i}`, secret: 'unreach-secret' }, 'unreachable-hook');
    assert.equal(reply.reason, 'HOOK_UNAVAILABLE');
    assert.equal(await deviceExists('unreachable-hook'), false);
  });
});

test('under fail-open a failing hook does not stop provisioning (and grants nothing)', async () => {
  const p = await profileWithHook({ failOpen: true, timeoutMs: 500 });
  hook.respond = (_c, res) => json(res, 500, { allow: false, label: 'ignored' });
  const reply = await provision(p, 'failed-open');
  assert.equal(reply.status, 'SUCCESS', JSON.stringify(reply));
  assert.equal((await admin(server, 'GET', '/api/tenant/devices?deviceName=failed-open')).json.label ?? null, null);
  const metrics = await (await fetch(`${server.httpUrl}/metrics`)).text();
  assert.match(metrics, /fleetgate_provision_hook_calls_total\{outcome="failedOpen"\} [1-9]/);
});

test('calls are bounded in concurrency (provisionHookConcurrency 2): the third waits for a free slot', async () => {
  const p = await profileWithHook({ timeoutMs: 20_000 });
  hook.maxInFlight = 0;
  hook.respond = (_c, res) => hook.hold(res);
  const replies = Promise.all([1, 2, 3].map((i) => provision(p, `bounded-${i}`)));
  for (let i = 0; i < 400 && hook.inFlight < 2; i++) await new Promise((r) => setTimeout(r, 25));
  assert.equal(hook.inFlight, 2);
  await new Promise((r) => setTimeout(r, 300)); // a third call, were it not bounded, would show here
  assert.equal(hook.maxInFlight, 2);
  hook.respond = (_c, res) => json(res, 200, { allow: true });
  hook.releaseAll();
  assert.deepEqual((await replies).map((r) => r.status), ['SUCCESS', 'SUCCESS', 'SUCCESS']);
});

test('a hook URL that is not http(s), a short signing secret or a bad timeout is refused when the profile is saved', async () => {
  for (const bad of [{ url: 'ftp://x/', secret: HOOK_SECRET }, { url: hook.url, secret: 'short' }, { url: hook.url, secret: HOOK_SECRET, timeoutMs: 0 }, { url: hook.url, secret: HOOK_SECRET, failOpen: 'yes' }]) {
    const res = await admin(server, 'POST', '/api/deviceProfile', {
      name: 'BadHook',
      provisionType: 'ALLOW_CREATE_NEW_DEVICES',
      provisionDeviceKey: 'bad-hook-key',
      profileData: { provisionConfiguration: { type: 'ALLOW_CREATE_NEW_DEVICES', provisionDeviceSecret: 's', preProvisioningHook: bad } },
    });
    assert.equal(res.status, 400, JSON.stringify(bad));
    assert.match(res.json.message, /preProvisioningHook/);
  }
});
