/**
 * ThingsBoard's own WebSocket tests (spec §5), ported where fleetgate serves the commands: WebSocketApiTest (v1
 * parts), the black-box MqttClientTest/HttpClientTest uploads, DefaultTbLocalSubscriptionServiceTest's LATEST filter
 * and DefaultWebSocketServiceTest's clean-up on close.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import mqtt from 'mqtt';
import { startTestServer, type TestServer } from '../../support/harness.ts';
import { adminClient, deviceWithIdentity } from '../admin-client.ts';
import { openSocket, poll, wsUrl, type TestSocket } from './ws-client.ts';

describe('ThingsBoard WebSocket tests, ported', () => {
  let server: TestServer;
  let token: string;
  const sockets: TestSocket[] = [];
  const post = (deviceToken: string, body: unknown) =>
    fetch(`${server.httpUrl}/api/v1/${deviceToken}/telemetry`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) }).then((r) => assert.equal(r.status, 200));

  before(async () => {
    server = await startTestServer();
    token = await server.adminToken();
  });
  after(async () => {
    for (const s of sockets) s.close();
    await server.close();
  });

  async function device(name: string): Promise<string> {
    return (await deviceWithIdentity(server, await adminClient(server), `${name}-token`, name)).deviceId;
  }

  async function general(): Promise<TestSocket> {
    const s = await openSocket(wsUrl(server.httpUrl, '/api/ws'));
    sockets.push(s);
    s.send({ authCmd: { cmdId: 0, token } });
    return s;
  }

  it('testTimeseriesSubscriptionCmd: snapshot [ts,"42"]; an older point and its duplicate send nothing; an equal ts passes (updateOldTelemetryTest)', async () => {
    const id = await device('latest-filter');
    const now = Date.now();
    await post('latest-filter-token', { ts: now, values: { temperature: 42 } });
    const ws = await general();
    ws.send({ cmds: [{ type: 'TIMESERIES', cmdId: 1, entityType: 'DEVICE', entityId: id, scope: 'LATEST_TELEMETRY' }] });
    const snapshot = await ws.next((m) => m.subscriptionId === 1);
    assert.deepEqual(snapshot, { subscriptionId: 1, errorCode: 0, errorMsg: null, data: { temperature: [[now, '42']] }, latestValues: { temperature: now } });
    await post('latest-filter-token', { ts: now - 1000, values: { temperature: 41 } });
    await post('latest-filter-token', { ts: now - 1000, values: { temperature: 41 } });
    await post('latest-filter-token', { ts: now, values: { temperature: 43 } });
    // The next update is the equal-ts point: the older ones were dropped.
    const update = await ws.next((m) => m.subscriptionId === 1, 1);
    assert.deepEqual(update.data, { temperature: [[now, '43']] });
    assert.equal(ws.messages.length, 2);
  });

  it('MqttClientTest.telemetryUploadWithTs: latestValues equal the device ts', async () => {
    const id = await device('with-ts');
    const ws = await openSocket(wsUrl(server.httpUrl, `/api/ws/plugins/telemetry?token=${token}`));
    sockets.push(ws);
    ws.send({ tsSubCmds: [{ cmdId: 42, entityType: 'DEVICE', entityId: id, scope: 'LATEST_TELEMETRY' }] });
    await ws.next((m) => m.subscriptionId === 42);
    const ts = Date.now() - 60_000;
    const client = await mqtt.connectAsync(`mqtt://127.0.0.1:${server.mqttPort}`, { username: 'with-ts-token', reconnectPeriod: 0 });
    try {
      await client.publishAsync('v1/devices/me/telemetry', JSON.stringify({ ts, values: { booleanKey: true, stringKey: 'value1', doubleKey: 42.5, longKey: 73 } }), { qos: 1 });
    } finally {
      await client.endAsync();
    }
    const update = await ws.next((m) => m.subscriptionId === 42, 1);
    assert.deepEqual(update.latestValues, { booleanKey: ts, doubleKey: ts, longKey: ts, stringKey: ts });
    assert.deepEqual(update.data, { booleanKey: [[ts, 'true']], doubleKey: [[ts, '42.5']], longKey: [[ts, '73']], stringKey: [[ts, 'value1']] });
  });

  it('MqttClientTest.requestAttributeValuesFromServer: an attribute update holds only the changed key', async () => {
    const id = await device('attr-delta');
    const ws = await openSocket(wsUrl(server.httpUrl, `/api/ws/plugins/telemetry?token=${token}`));
    sockets.push(ws);
    ws.send({ attrSubCmds: [{ cmdId: 3, entityType: 'DEVICE', entityId: id, scope: 'CLIENT_SCOPE' }] });
    await ws.next((m) => m.subscriptionId === 3);
    const client = await mqtt.connectAsync(`mqtt://127.0.0.1:${server.mqttPort}`, { username: 'attr-delta-token', reconnectPeriod: 0 });
    try {
      await client.publishAsync('v1/devices/me/attributes', '{"a":"one","b":2}', { qos: 1 });
      await ws.next((m) => m.subscriptionId === 3, 1);
      await client.publishAsync('v1/devices/me/attributes', '{"b":3}', { qos: 1 });
    } finally {
      await client.endAsync();
    }
    const second = await ws.next((m) => m.subscriptionId === 3, 2);
    assert.deepEqual(Object.keys(second.data!), ['b']);
    assert.equal(second.data!.b[0][1], '3');
  });

  it('processSessionClose: closing a socket cancels all its subscriptions (nothing left watching)', async () => {
    const id = await device('close-cleanup');
    const ws = await general();
    ws.send({ cmds: [1, 2, 3].map((cmdId) => ({ type: 'TIMESERIES', cmdId, entityType: 'DEVICE', entityId: id })) });
    await ws.next((m) => m.subscriptionId === 3);
    assert.ok(server.core.liveUpdates.watchedAnywhere(id));
    ws.close();
    await poll(() => (!server.core.liveUpdates.watchedAnywhere(id) ? true : undefined), 20_000, 'the subscriptions to end');
  });

  it('an empty entityId with unsubscribe cancels every subscription and the session stays usable', async () => {
    const id = await device('cancel-all');
    const ws = await general();
    ws.send({ cmds: [1, 2].map((cmdId) => ({ type: 'TIMESERIES', cmdId, entityType: 'DEVICE', entityId: id })) });
    await ws.next((m) => m.subscriptionId === 2);
    ws.send({ cmds: [{ type: 'TIMESERIES', cmdId: 1, entityType: 'DEVICE', entityId: '', unsubscribe: true }] });
    await poll(() => (!server.core.liveUpdates.watchedAnywhere(id) ? true : undefined), 20_000, 'the subscriptions to end');
    ws.send({ cmds: [{ type: 'TIMESERIES', cmdId: 9, entityType: 'DEVICE', entityId: id }] });
    assert.equal((await ws.next((m) => m.subscriptionId === 9)).errorCode, 0);
  });
});
