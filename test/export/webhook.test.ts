/**
 * Data out over a webhook, one node on SQLite: what a receiver gets for each kind of message, the signature, retries
 * (500, 429 with Retry-After, a stalled receiver), dead letters and replay, order per device, and bad rule input.
 */
import { createHmac } from 'node:crypto';
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import mqtt from 'mqtt';
import { startTestServer, type TestServer } from '../support/harness.ts';
import { adminClient, type AdminClient } from '../admin/admin-client.ts';
import { createTokenDevice } from '../support/telemetry-load.ts';
import { eventually, startReceiver, type Receiver } from './receiver.ts';

const SECRET = 'export-signing-secret';

describe('export to a webhook', () => {
  let server: TestServer;
  let api: AdminClient;
  let receiver: Receiver;

  before(async () => {
    server = await startTestServer({ exportRetryBaseMs: 100, exportDeadLetterAgeMs: 60_000 });
    api = await adminClient(server);
    receiver = await startReceiver();
  });
  after(async () => {
    await server?.close();
    await receiver?.close();
  });

  const rules: string[] = [];
  async function createRule(body: Record<string, unknown>): Promise<string> {
    const res = await api.post('/api/export/rule', body);
    assert.equal(res.status, 200, res.text);
    rules.push(res.json.id.id);
    return res.json.id.id;
  }
  async function deleteRules(): Promise<void> {
    for (const id of rules.splice(0)) assert.equal((await api.delete(`/api/export/rule/${id}`)).status, 200);
  }

  const post = (token: string, body: unknown) => fetch(`${server.httpUrl}/api/v1/${token}/telemetry`, { method: 'POST', body: JSON.stringify(body) });

  it('delivers committed telemetry and client attributes, signed, with stable ids', async () => {
    receiver.answer = () => ({ status: 200 });
    await createRule({ name: 'all', kinds: ['telemetry', 'attributes'], destination: { type: 'webhook', url: receiver.url, secret: SECRET, headers: { Authorization: 'Bearer receiver-token' } } });
    const deviceId = await createTokenDevice(server.httpUrl, await server.adminToken(), 'wh-token-1', 'wh-dev-1');
    assert.equal((await post('wh-token-1', { ts: 1000, values: { temperature: 21.5, on: true } })).status, 200);
    assert.equal((await fetch(`${server.httpUrl}/api/v1/wh-token-1/attributes`, { method: 'POST', body: '{"firmware":"1.2"}' })).status, 200);
    await eventually('telemetry and attributes delivered', () => receiver.accepted.length >= 2);
    const telemetry = receiver.accepted.find((m) => m.kind === 'telemetry')!;
    assert.deepEqual(telemetry.data.telemetry, [{ ts: 1000, values: { temperature: 21.5, on: true } }]);
    assert.equal(telemetry.deviceId, deviceId);
    assert.equal(telemetry.data.deviceName, 'wh-dev-1');
    assert.equal(telemetry.rule, 'all');
    const attributes = receiver.accepted.find((m) => m.kind === 'attributes')!;
    assert.deepEqual(attributes.data.attributes, { firmware: 1.2 }, 'as stored: ThingsBoard reads numeric strings as numbers');
    const delivery = receiver.deliveries.find((d) => d.status === 200)!;
    assert.equal(delivery.headers.authorization, 'Bearer receiver-token');
    const timestamp = String(delivery.headers['x-fleetgate-timestamp']);
    const expected = `sha256=${createHmac('sha256', SECRET).update(`${timestamp}.${delivery.body}`).digest('hex')}`;
    assert.equal(delivery.headers['x-fleetgate-signature'], expected);
    const rule = await api.get(`/api/export/rule/${rules[0]}`);
    assert.equal(rule.json.destination.secret, '********', 'the secret is never answered');
    assert.equal(rule.json.destination.headers.Authorization, '********');
    assert.ok(!rule.text.includes(SECRET));
    await deleteRules();
  });

  it('retries a failing receiver with backoff and keeps each device in order', async () => {
    receiver.accepted.length = 0;
    let calls = 0;
    receiver.answer = () => (++calls % 3 === 0 ? { status: 200 } : { status: 500 });
    await createRule({ name: 'flaky', kinds: ['telemetry'], destination: { type: 'webhook', url: receiver.url, batchSize: 5 } });
    await createTokenDevice(server.httpUrl, await server.adminToken(), 'wh-token-2', 'wh-dev-2');
    for (let i = 1; i <= 30; i++) assert.equal((await post('wh-token-2', { ts: i, values: { seq: i } })).status, 200);
    await eventually('all 30 points delivered', () => new Set(receiver.accepted.flatMap((m) => m.data.telemetry.map((p: any) => p.ts))).size === 30);
    const order = receiver.accepted.flatMap((m) => m.data.telemetry.map((p: any) => p.ts));
    assert.deepEqual(order, [...order].sort((a, b) => a - b), `one device's messages arrive in the order they were committed: ${order.join(',')}`);
    assert.ok(receiver.deliveries.some((d) => d.status === 500), 'the receiver did refuse some deliveries');
    await deleteRules();
  });

  it('keeps each device in order when a lane packs several devices per row, and still delivers a device deleted while its messages wait', async () => {
    receiver.accepted.length = 0;
    let open = false;
    receiver.answer = () => (open ? { status: 200 } : { status: 503 });
    await createRule({ name: 'packed', kinds: ['telemetry'], destination: { type: 'webhook', url: receiver.url, batchSize: 4 } });
    const adminToken = await server.adminToken();
    const devices = await Promise.all(Array.from({ length: 12 }, (_, d) => createTokenDevice(server.httpUrl, adminToken, `wh-pack-${d}`, `wh-pack-dev-${d}`)));
    // Every device posts at once, so one commit holds several devices of a lane.
    for (let ts = 1; ts <= 8; ts++) {
      const answers = await Promise.all(devices.map((_, d) => post(`wh-pack-${d}`, { ts, values: { d, ts } })));
      for (const a of answers) assert.equal(a.status, 200);
    }
    assert.equal((await api.delete(`/api/device/${devices[3]}`)).status, 200);
    open = true;
    const points = () => receiver.accepted.flatMap((m) => m.data.telemetry.map((p: any) => `${m.deviceId}/${p.ts}`));
    await eventually('every point of every device delivered', () => new Set(points()).size === 12 * 8);
    for (const deviceId of devices) {
      const order = receiver.accepted.filter((m) => m.deviceId === deviceId).flatMap((m) => m.data.telemetry.map((p: any) => p.ts));
      assert.deepEqual(order, [1, 2, 3, 4, 5, 6, 7, 8], `${deviceId}: in commit order, once each`);
    }
    const deleted = receiver.accepted.find((m) => m.deviceId === devices[3])!;
    assert.equal(deleted.data.deviceName, 'wh-pack-dev-3', 'a deleted device\'s messages keep the name it had');
    assert.equal(new Set(receiver.accepted.map((m) => m.id)).size, receiver.accepted.length, 'ids are unique');
    await deleteRules();
  });

  it('waits as long as a 429 Retry-After says', async () => {
    receiver.accepted.length = 0;
    receiver.deliveries.length = 0;
    let first = true;
    receiver.answer = () => {
      if (!first) return { status: 200 };
      first = false;
      return { status: 429, headers: { 'retry-after': '2' } };
    };
    await createRule({ name: 'limited', kinds: ['telemetry'], destination: { type: 'webhook', url: receiver.url } });
    await createTokenDevice(server.httpUrl, await server.adminToken(), 'wh-token-3', 'wh-dev-3');
    assert.equal((await post('wh-token-3', { ts: 5, values: { a: 1 } })).status, 200);
    await eventually('delivered after the 429', () => receiver.accepted.length === 1);
    const [refused, accepted] = receiver.deliveries;
    assert.equal(refused.status, 429);
    assert.ok(accepted.at - refused.at >= 1900, `retried after ${accepted.at - refused.at} ms, Retry-After was 2 s`);
    await deleteRules();
  });

  it('rejects a bad rule with a clear 400 and stores nothing', async () => {
    const cases: [Record<string, unknown>, RegExp][] = [
      [{ name: 'x', kinds: ['telemetry'], destination: { type: 'webhook', url: 'ftp://example/' } }, /must start with http/],
      [{ name: 'x', kinds: ['telemetry'], destination: { type: 'webhook', url: 'not a url' } }, /not a URL/],
      [{ name: 'x', kinds: ['everything'], destination: { type: 'webhook', url: receiver.url } }, /kinds must be/],
      [{ name: 'x', kinds: [], destination: { type: 'webhook', url: receiver.url } }, /kinds must be/],
      [{ name: '', kinds: ['telemetry'], destination: { type: 'webhook', url: receiver.url } }, /name is required/],
      [{ name: 'x', kinds: ['telemetry'], destination: { type: 'kafka' } }, /destination.type/],
      [{ name: 'x', kinds: ['telemetry'], destination: { type: 'redis-stream', url: 'redis://127.0.0.1:1' } }, /destination.stream/],
      [{ name: 'x', kinds: ['telemetry'], destination: { type: 'webhook', url: receiver.url, batchSize: 0 } }, /batchSize/],
      [{ name: 'x', kinds: ['telemetry'], destination: { type: 'webhook', url: receiver.url, headers: { 'Bad Header': 'v' } } }, /not a valid header/],
      [{ name: 'x', kinds: ['telemetry'], deviceProfileId: '0b5c6a66-59d2-4a5b-9d4c-8d3c7a4f5e61', destination: { type: 'webhook', url: receiver.url } }, /not found/],
      ...[0, 17, 2.5, 'x', '4', -1, true].map((lanes): [Record<string, unknown>, RegExp] => [{ name: 'x', kinds: ['telemetry'], lanes, destination: { type: 'webhook', url: receiver.url } }, /^lanes must be an integer from 1 to 16$/]),
    ];
    for (const [body, message] of cases) {
      const res = await api.post('/api/export/rule', body);
      assert.equal(res.status, 400, `${JSON.stringify(body)} -> ${res.text}`);
      assert.match(res.json.message, message);
    }
    assert.equal((await api.post('/api/export/rule', 'garbage', {})).status, 400);
    const list = await api.get('/api/export/rules');
    assert.deepEqual(list.json, []);
  });

  it('exports provisioning outcomes and connects/disconnects, never the secret', async () => {
    receiver.accepted.length = 0;
    receiver.answer = () => ({ status: 200 });
    await createRule({ name: 'events', kinds: ['provisioning', 'connectivity'], destination: { type: 'webhook', url: receiver.url } });
    const profile = await api.post('/api/deviceProfile', {
      name: 'Export events',
      provisionType: 'ALLOW_CREATE_NEW_DEVICES',
      provisionDeviceKey: 'export-key',
      profileData: { provisionConfiguration: { type: 'ALLOW_CREATE_NEW_DEVICES', provisionDeviceSecret: 'export-provision-secret' } },
    });
    assert.equal(profile.status, 200, profile.text);
    const provisioned = await (
      await fetch(`${server.httpUrl}/api/v1/provision`, { method: 'POST', body: JSON.stringify({ deviceName: 'ev-1', provisionDeviceKey: 'export-key', provisionDeviceSecret: 'export-provision-secret' }) })
    ).json();
    assert.equal(provisioned.status, 'SUCCESS');
    const client = await mqtt.connectAsync(`mqtt://127.0.0.1:${server.mqttPort}`, { username: provisioned.credentialsValue, reconnectPeriod: 0 });
    await client.endAsync();
    await eventually('provisioning, connect and disconnect delivered', () => receiver.accepted.length >= 3);
    const kinds = receiver.accepted.map((m) => `${m.kind}:${m.data.status ?? m.data.event}`);
    assert.deepEqual(kinds, ['provisioning:SUCCESS', 'connectivity:CONNECT', 'connectivity:DISCONNECT']);
    assert.equal(receiver.accepted[0].data.transport, 'http');
    assert.ok(!JSON.stringify(receiver.accepted).includes('export-provision-secret'));
    assert.ok(!JSON.stringify(receiver.accepted).includes(provisioned.credentialsValue));
    const refused = await (
      await fetch(`${server.httpUrl}/api/v1/provision`, { method: 'POST', body: JSON.stringify({ deviceName: 'ev-1', provisionDeviceKey: 'export-key', provisionDeviceSecret: 'export-provision-secret' }) })
    ).json();
    assert.equal(refused.status, 'FAILURE', 'the device has connected: a repeat request fails');
    await eventually('the failed provisioning delivered', () => receiver.accepted.length >= 4);
    const failure = receiver.accepted[3];
    assert.equal(failure.kind, 'provisioning');
    assert.equal(failure.deviceId, provisioned.deviceId);
    assert.equal(failure.data.status, refused.status);
    assert.equal(failure.data.reason, refused.reason);
    assert.equal(failure.data.profileId, profile.json.id.id);
    await deleteRules();
  });

  it('takes a rule\'s lanes (4 unless told), answers them, and refuses a second change while the first one\'s messages wait', async () => {
    receiver.accepted.length = 0;
    receiver.answer = () => ({ status: 503, headers: { 'retry-after': '3600' } });
    const given = await api.post('/api/export/rule', { name: 'two-lanes', kinds: ['telemetry'], lanes: 2, destination: { type: 'webhook', url: receiver.url } });
    assert.equal(given.status, 200, given.text);
    rules.push(given.json.id.id);
    assert.equal(given.json.lanes, 2);
    const shown = await api.get(`/api/export/rule/${given.json.id.id}`);
    assert.equal(shown.json.lanes, 2);
    assert.deepEqual(shown.json.laneStates.map((l: any) => l.partition), [0, 1]);
    const byDefault = await createRule({ name: 'default-lanes', kinds: ['attributes'], destination: { type: 'webhook', url: receiver.url } });
    const listed = (await api.get('/api/export/rules')).json;
    assert.deepEqual(listed.map((r: any) => [r.name, r.lanes]), [['two-lanes', 2], ['default-lanes', 4]]);
    // No message waits: a change of lanes is taken at once.
    const relaned = await api.post('/api/export/rule', { id: byDefault, lanes: 8 });
    assert.equal(relaned.status, 200, relaned.text);
    assert.equal(relaned.json.lanes, 8);
    assert.equal(relaned.json.name, 'default-lanes', 'the rest of the rule kept');
    const audit = await api.get('/api/audit/logs?pageSize=20&page=0');
    assert.ok(audit.json.data.some((e: any) => e.entityName === 'default-lanes' && e.actionType === 'UPDATED' && e.actionData?.lanes === 8), 'the change is audited with the lanes');
    // Messages waiting (the receiver says come back in an hour): the change is taken, the next one waits for them.
    await createTokenDevice(server.httpUrl, await server.adminToken(), 'wh-token-lanes', 'wh-dev-lanes');
    for (let i = 1; i <= 3; i++) assert.equal((await post('wh-token-lanes', { ts: i, values: { n: i } })).status, 200);
    await eventually('the receiver refused a delivery', () => receiver.deliveries.some((d) => d.status === 503));
    const first = await api.post('/api/export/rule', { id: given.json.id.id, lanes: 16 });
    assert.equal(first.status, 200, first.text);
    assert.equal(first.json.lanes, 16);
    const second = await api.post('/api/export/rule', { id: given.json.id.id, lanes: 1, name: 'renamed' });
    assert.equal(second.status, 400, second.text);
    assert.match(second.json.message, /^lanes of export rule 'two-lanes' cannot change yet: 3 messages from before its last change of lanes are still waiting/);
    const after = await api.get(`/api/export/rule/${given.json.id.id}`);
    assert.deepEqual([after.json.name, after.json.lanes, after.json.pending], ['two-lanes', 16, 3], 'nothing of the refused change saved, nothing lost');
    await deleteRules();
  });

  it('holds the messages of a disabled rule without starving the others', async () => {
    receiver.accepted.length = 0;
    receiver.answer = () => ({ status: 200 });
    receiver.answer = () => ({ status: 503 });
    const paused = await createRule({ name: 'paused', kinds: ['telemetry'], destination: { type: 'webhook', url: receiver.url } });
    await createTokenDevice(server.httpUrl, await server.adminToken(), 'wh-token-4', 'wh-dev-4');
    for (let i = 1; i <= 40; i++) assert.equal((await post('wh-token-4', { ts: i, values: { n: i } })).status, 200);
    assert.equal((await api.post('/api/export/rule', { id: paused, enabled: false })).status, 200);
    receiver.answer = () => ({ status: 200 });
    await createRule({ name: 'active', kinds: ['telemetry'], destination: { type: 'webhook', url: receiver.url } });
    assert.equal((await post('wh-token-4', { ts: 41, values: { n: 41 } })).status, 200);
    await eventually('the enabled rule delivers', () => receiver.accepted.some((m) => m.rule === 'active'));
    assert.ok(!receiver.accepted.some((m) => m.rule === 'paused'), 'a disabled rule delivers nothing');
    const rules = (await api.get('/api/export/rules')).json;
    assert.equal(rules.find((r: any) => r.name === 'paused').pending, 40, 'its messages wait; a disabled rule records nothing new');
    assert.equal((await api.post('/api/export/rule', { id: paused, enabled: true })).status, 200);
    await eventually('the re-enabled rule catches up', () => receiver.accepted.filter((m) => m.rule === 'paused').length === 40);
    await deleteRules();
  });
});

describe('export dead letters', () => {
  let server: TestServer;
  let api: AdminClient;
  let receiver: Receiver;

  before(async () => {
    server = await startTestServer({ exportRetryBaseMs: 50, exportDeadLetterAgeMs: 300, exportLeaseMs: 4000 });
    api = await adminClient(server);
    receiver = await startReceiver();
  });
  after(async () => {
    await server?.close();
    await receiver?.close();
  });

  it('dead-letters what keeps failing past its age, lists it with the error, and replays it', async () => {
    receiver.answer = () => 'stall';
    const rule = await api.post('/api/export/rule', { name: 'down', kinds: ['telemetry'], destination: { type: 'webhook', url: receiver.url, timeoutMs: 200 } });
    const ruleId = rule.json.id.id;
    await createTokenDevice(server.httpUrl, await server.adminToken(), 'dl-token', 'dl-dev');
    for (let i = 1; i <= 3; i++) assert.equal((await fetch(`${server.httpUrl}/api/v1/dl-token/telemetry`, { method: 'POST', body: JSON.stringify({ ts: i, values: { v: i } }) })).status, 200);
    let letters: any;
    await eventually('dead letters', async () => {
      letters = (await api.get(`/api/export/deadLetters?pageSize=10&page=0&ruleId=${ruleId}`)).json;
      return letters.totalElements >= 1;
    });
    assert.match(letters.data[0].lastError, /no answer within 200 ms/);
    assert.ok(letters.data[0].attempts >= 1);
    receiver.answer = () => ({ status: 200 });
    const replay = await api.post('/api/export/deadLetters/replay', { ruleId });
    assert.equal(replay.status, 200, replay.text);
    assert.ok(replay.json.replayed >= 1);
    await eventually('replayed letters delivered', () => new Set(receiver.accepted.flatMap((m) => m.data.telemetry.map((p: any) => p.ts))).size === 3);
    assert.equal((await api.get(`/api/export/deadLetters?pageSize=10&page=0&ruleId=${ruleId}`)).json.totalElements, 0);
    const audit = await api.get('/api/audit/logs?pageSize=20&page=0');
    assert.ok(audit.json.data.some((e: any) => e.actionType === 'DEAD_LETTERS_REPLAYED'));
  });
});
