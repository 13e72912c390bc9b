/**
 * WebSocket API pieces wired at integration: a time series deletion through the admin REST API pushes the key's new
 * latest value (or its deletion), a session can authenticate with an API key, and history and a windowed
 * subscription's first message can be aggregated.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { startTestServer, type TestServer } from '../../support/harness.ts';
import { adminClient, deviceWithIdentity, type AdminClient } from '../admin-client.ts';
import { openSocket, wsUrl, type TestSocket } from './ws-client.ts';

describe('WebSocket subscribers see admin API changes; API-key sessions; aggregated history', () => {
  let server: TestServer;
  let api: AdminClient;
  let token: string;
  const sockets: TestSocket[] = [];
  /** A device with access token `token`, created for one test. */
  const device = async (token: string) => (await deviceWithIdentity(server, api, token, `device ${token}`)).deviceId;

  before(async () => {
    server = await startTestServer();
    api = await adminClient(server);
    token = await server.adminToken();
  });
  after(async () => {
    for (const s of sockets) s.close();
    await server.close();
  });

  it('a deleted latest value is replaced by the one before it, then by a deletion', async () => {
    const deviceId = await device('ws-admin-token');
    for (const [ts, t] of [[1000, 1], [2000, 2]]) {
      const res = await fetch(`${server.httpUrl}/api/v1/ws-admin-token/telemetry`, { method: 'POST', body: JSON.stringify({ ts, values: { t } }) });
      assert.equal(res.status, 200);
    }
    const ws = await openSocket(wsUrl(server.httpUrl, '/api/ws'));
    sockets.push(ws);
    ws.send({ authCmd: { cmdId: 0, token }, cmds: [{ type: 'TIMESERIES', cmdId: 3, entityType: 'DEVICE', entityId: deviceId, keys: 't', scope: 'LATEST_TELEMETRY' }] });
    const snapshot = await ws.next((m) => m.subscriptionId === 3);
    assert.deepEqual(snapshot.data, { t: [[2000, '2']] });
    const del = (startTs: number, endTs: number) =>
      api.delete(`/api/plugins/telemetry/DEVICE/${deviceId}/timeseries/delete?keys=t&startTs=${startTs}&endTs=${endTs}&deleteLatest=true&rewriteLatestIfDeleted=true`);
    assert.equal((await del(1500, 2500)).status, 200);
    const rewritten = await ws.next((m) => m.subscriptionId === 3 && m.data?.t?.[0]?.[0] === 1000);
    assert.deepEqual(rewritten.data, { t: [[1000, '1']] });
    assert.equal((await del(0, 2500)).status, 200);
    const gone = await ws.next((m) => m.subscriptionId === 3 && m.data?.t?.[0]?.[0] === 0);
    assert.deepEqual(gone.data, { t: [[0, '']] });
  });

  it('subscribe with authCmd.apiKey; a disabled key is refused with 1007', async () => {
    const deviceId = await device('ws-key-token');
    const userId = (await api.get('/api/auth/user')).json.id.id;
    const created = await api.post('/api/apiKey', { userId: { entityType: 'USER', id: userId }, description: 'ws', enabled: true });
    assert.equal(created.status, 200, created.text);
    const ws = await openSocket(wsUrl(server.httpUrl, '/api/ws'));
    sockets.push(ws);
    ws.send({ authCmd: { cmdId: 0, apiKey: created.json.value }, cmds: [{ type: 'TIMESERIES', cmdId: 1, entityType: 'DEVICE', entityId: deviceId, keys: 'k', scope: 'LATEST_TELEMETRY' }] });
    await ws.next((m) => m.subscriptionId === 1);
    assert.equal((await fetch(`${server.httpUrl}/api/v1/ws-key-token/telemetry`, { method: 'POST', body: '{"ts":5,"values":{"k":7}}' })).status, 200);
    const update = await ws.next((m) => m.subscriptionId === 1 && m.data?.k?.[0]?.[0] === 5);
    assert.deepEqual(update.data, { k: [[5, '7']] });
    assert.equal((await api.call('PUT', `/api/apiKey/${created.json.id.id}/enabled/false`)).status, 200);
    const refused = await openSocket(wsUrl(server.httpUrl, '/api/ws'));
    sockets.push(refused);
    refused.send({ authCmd: { cmdId: 0, apiKey: created.json.value } });
    assert.deepEqual(await refused.waitClosed(), { code: 1007, reason: 'User account is not active' });
  });

  it('answers TIMESERIES_HISTORY with AVG and SUM buckets computed by the database, oldest first', async () => {
    const deviceId = await device('ws-agg-token');
    const points = [[1000, 1], [1500, 2], [2000, 3], [2500, 4], [3000, 100]];
    for (const [ts, v] of points) {
      assert.equal((await fetch(`${server.httpUrl}/api/v1/ws-agg-token/telemetry`, { method: 'POST', body: JSON.stringify({ ts, values: { v } }) })).status, 200);
    }
    const ws = await openSocket(wsUrl(server.httpUrl, '/api/ws'));
    sockets.push(ws);
    const history = (cmdId: number, agg: string) => ({ type: 'TIMESERIES_HISTORY', cmdId, entityType: 'DEVICE', entityId: deviceId, keys: 'v', startTs: 1000, endTs: 3000, interval: 1000, limit: 100, agg });
    ws.send({ authCmd: { cmdId: 0, token }, cmds: [history(1, 'AVG'), history(2, 'SUM')] });
    const avg = await ws.next((m) => m.subscriptionId === 1);
    const sum = await ws.next((m) => m.subscriptionId === 2);
    // [1000, 2000): 1 and 2; [2000, 3000): 3 and 4; the point at 3000 is outside [startTs, endTs). ts = bucket middle.
    assert.deepEqual(avg.data, { v: [[1500, '1.5'], [2500, '3.5']] });
    assert.deepEqual(sum.data, { v: [[1500, '3'], [2500, '7']] });
  });

  it('aggregates a windowed TIMESERIES subscription\'s first message as history is, then sends the raw updates', async () => {
    const deviceId = await device('ws-aggsub-token');
    const post = async (ts: number, v: number) => assert.equal((await fetch(`${server.httpUrl}/api/v1/ws-aggsub-token/telemetry`, { method: 'POST', body: JSON.stringify({ ts, values: { v } }) })).status, 200);
    const points = [[1000, 2], [1200, 8], [1900, 5], [2100, 7], [2999, 1], [3000, 50]];
    for (const [ts, v] of points) await post(ts, v);
    const ws = await openSocket(wsUrl(server.httpUrl, '/api/ws'));
    sockets.push(ws);
    const window = { entityType: 'DEVICE', entityId: deviceId, keys: 'v', startTs: 1000, timeWindow: 2000, interval: 1000, limit: 100 };
    ws.send({ authCmd: { cmdId: 0, token }, cmds: [{ type: 'TIMESERIES', cmdId: 1, ...window, agg: 'MAX' }, { type: 'TIMESERIES', cmdId: 2, ...window, agg: 'COUNT' }, { type: 'TIMESERIES', cmdId: 3, ...window, agg: 'AVG' }] });
    const max = await ws.next((m) => m.subscriptionId === 1);
    const count = await ws.next((m) => m.subscriptionId === 2);
    const avg = await ws.next((m) => m.subscriptionId === 3);
    // Computed here from `points`: [1000, 2000) holds 2, 8, 5; [2000, 3000) holds 7, 1; 3000 is past the window.
    const buckets = [points.filter(([ts]) => ts >= 1000 && ts < 2000).map(([, v]) => v), points.filter(([ts]) => ts >= 2000 && ts < 3000).map(([, v]) => v)];
    assert.deepEqual(max.data, { v: buckets.map((b, i) => [1500 + i * 1000, String(Math.max(...b))]) });
    assert.deepEqual(count.data, { v: buckets.map((b, i) => [1500 + i * 1000, String(b.length)]) });
    // AVG is a double, written as Java does (`5.0`); MAX and COUNT of longs stay longs (spec §3.2).
    const javaDouble = (x: number) => (Number.isInteger(x) ? `${x}.0` : String(x));
    assert.deepEqual(avg.data, { v: buckets.map((b, i) => [1500 + i * 1000, javaDouble(b.reduce((a, x) => a + x, 0) / b.length)]) });
    assert.equal(max.errorCode, 0);
    // TB: the live updates that follow are the saved points themselves, not re-aggregated (spec §3.3).
    await post(3500, 9);
    const update = await ws.next((m) => m.subscriptionId === 1 && m.data?.v?.some(([ts]) => ts === 3500) === true);
    assert.deepEqual(update.data, { v: [[3500, '9']] });
  });
});
