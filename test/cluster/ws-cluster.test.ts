/**
 * The WebSocket telemetry API across two nodes on one PostgreSQL and one Redis (both nodes in this process): a
 * subscriber on one node sees what is committed on the other, and a node publishes live updates only for devices
 * that some node watches.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import mqtt from 'mqtt';
import { startTestServer, type TestServer } from '../support/harness.ts';
import { skipUnlessPostgres, startPostgres, type TestPostgres } from '../support/postgres.ts';
import { skipUnlessRedis, startRedis, type TestRedis } from '../support/redis.ts';
import { adminApi, until } from './cluster-support.ts';
import { openSocket, wsUrl, type TestSocket } from '../admin/ws/ws-client.ts';

describe('WebSocket live data on two nodes (PostgreSQL + Redis)', { skip: skipUnlessPostgres() || skipUnlessRedis() }, () => {
  let pg: TestPostgres | undefined;
  let redis: TestRedis | undefined;
  let a: TestServer;
  let b: TestServer;
  let token: string;
  let deviceId: string;
  let quietDeviceId: string;
  const sockets: TestSocket[] = [];
  const published = async (node: TestServer) => Number(/fleetgate_live_updates_published_total (\d+)/.exec(await node.metrics!.render())?.[1] ?? 0);

  before(async () => {
    [pg, redis] = await Promise.all([startPostgres(), startRedis()]);
    const database = await pg.createDatabase();
    a = await startTestServer({ database, bus: redis.url, logLevel: 'warn' });
    b = await startTestServer({ database, bus: redis.url, logLevel: 'warn' });
    token = await a.adminToken();
    const api = adminApi(a.httpUrl, token);
    deviceId = (await api('POST', '/api/device?accessToken=ws-cluster-token', { name: 'WS cluster device' })).json.id.id;
    quietDeviceId = (await api('POST', '/api/device?accessToken=ws-quiet-token', { name: 'WS quiet device' })).json.id.id;
  });

  after(async () => {
    for (const s of sockets) s.close();
    await Promise.allSettled([a?.close(), b?.close()]);
    await Promise.allSettled([pg?.stop(), redis?.stop()]);
  });

  async function subscribe(node: TestServer, frame: unknown): Promise<TestSocket> {
    const ws = await openSocket(wsUrl(node.httpUrl, `/api/ws/plugins/telemetry?token=${token}`));
    sockets.push(ws);
    ws.send(frame);
    return ws;
  }

  it('publishes nothing for telemetry of a device nobody watches', async () => {
    const before = await published(a);
    const res = await fetch(`${a.httpUrl}/api/v1/ws-quiet-token/telemetry`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"t":1}' });
    assert.equal(res.status, 200); // committed
    assert.equal(await published(a), before);
    assert.equal(a.core.liveUpdates.watchedAnywhere(quietDeviceId), false);
  });

  it('delivers MQTT telemetry committed on node A to a subscriber on node B, and attributes written through A', async () => {
    const ws = await subscribe(b, {
      tsSubCmds: [{ cmdId: 1, entityType: 'DEVICE', entityId: deviceId, keys: 'temperature', scope: 'LATEST_TELEMETRY' }],
      attrSubCmds: [{ cmdId: 2, entityType: 'DEVICE', entityId: deviceId }],
    });
    await ws.next((m) => m.subscriptionId === 1);
    await ws.next((m) => m.subscriptionId === 2);
    const from = ws.messages.length; // after both snapshots (attrSubCmds run first)
    // Node A learns over the bus that B watches the device.
    await until('node A knows the device is watched', () => a.core.liveUpdates.watchedAnywhere(deviceId));
    const device = await mqtt.connectAsync(`mqtt://127.0.0.1:${a.mqttPort}`, { username: 'ws-cluster-token', reconnectPeriod: 0 });
    try {
      await device.publishAsync('v1/devices/me/telemetry', '{"temperature":21.5,"other":1}', { qos: 1 });
      await device.publishAsync('v1/devices/me/attributes', '{"firmware":"2.0"}', { qos: 1 });
    } finally {
      await device.endAsync();
    }
    const update = await ws.next((m) => m.subscriptionId === 1 && m.data !== null && 'temperature' in m.data, from);
    assert.deepEqual(Object.keys(update.data!), ['temperature']);
    assert.equal(update.data!.temperature[0][1], '21.5');
    assert.equal((await ws.next((m) => m.subscriptionId === 2 && m.data !== null && 'firmware' in m.data, from)).data!.firmware[0][1], '2.0');
    const api = adminApi(a.httpUrl, token);
    assert.equal((await api('POST', `/api/plugins/telemetry/DEVICE/${deviceId}/attributes/SHARED_SCOPE`, { mode: 'eco' })).status, 200);
    assert.equal((await ws.next((m) => m.subscriptionId === 2 && m.data !== null && 'mode' in m.data, from)).data!.mode[0][1], 'eco');
    assert.ok((await published(a)) > 0);
    assert.equal(await published(b), 0, 'node B committed nothing, so it published nothing');
  });

  it('delivers telemetry committed on node B to a subscriber on node A', async () => {
    const ws = await subscribe(a, { tsSubCmds: [{ cmdId: 5, entityType: 'DEVICE', entityId: deviceId, keys: 'humidity' }] });
    await ws.next((m) => m.subscriptionId === 5);
    await until('node B knows the device is watched', () => b.core.liveUpdates.watchedAnywhere(deviceId));
    const res = await fetch(`${b.httpUrl}/api/v1/ws-cluster-token/telemetry`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"humidity":55}' });
    assert.equal(res.status, 200);
    assert.equal((await ws.next((m) => m.subscriptionId === 5 && m.data !== null && 'humidity' in m.data, 1)).data!.humidity[0][1], '55');
  });

  it('aggregates a windowed subscription on PostgreSQL, then delivers every point of quick commits on the other node, in order', async () => {
    const api = adminApi(a.httpUrl, token);
    const id = (await api('POST', '/api/device?accessToken=ws-window-token', { name: 'WS window device' })).json.id.id;
    const post = async (node: TestServer, body: unknown) => assert.equal((await fetch(`${node.httpUrl}/api/v1/ws-window-token/telemetry`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) })).status, 200);
    for (const [ts, v] of [[1000, 1], [1400, 4], [2000, 10], [2600, 20]]) await post(a, { ts, values: { v } });
    const ws = await subscribe(b, { tsSubCmds: [{ cmdId: 7, entityType: 'DEVICE', entityId: id, keys: 'v', startTs: 1000, timeWindow: 2000, interval: 1000, agg: 'SUM' }] });
    const first = await ws.next((m) => m.subscriptionId === 7);
    assert.deepEqual(first.data, { v: [[1500, '5'], [2500, '30']] }); // 1 + 4, 10 + 20, summed by PostgreSQL
    await until('node A knows the device is watched', () => a.core.liveUpdates.watchedAnywhere(id));
    // Ten commits on A in quick succession: with wsUpdateIntervalMs (default 250) some share a frame; none is lost.
    for (let n = 1; n <= 10; n++) await post(a, { ts: 10_000 + n, values: { v: n } });
    const delivered = () => ws.messages.filter((m) => m.subscriptionId === 7).slice(1).flatMap((m) => m.data!.v);
    await until('all ten points arrive', () => delivered().length >= 10, 600);
    assert.deepEqual(delivered(), Array.from({ length: 10 }, (_, i) => [10_001 + i, String(i + 1)]));
  });

  it('stops publishing for a device once its last subscriber, on another node, is gone', async () => {
    for (const s of sockets.splice(0)) s.close();
    await until('both nodes forget the device', () => !a.core.liveUpdates.watchedAnywhere(deviceId) && !b.core.liveUpdates.watchedAnywhere(deviceId));
    const before = await published(a);
    const res = await fetch(`${a.httpUrl}/api/v1/ws-cluster-token/telemetry`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"temperature":1}' });
    assert.equal(res.status, 200);
    assert.equal(await published(a), before);
  });
});
