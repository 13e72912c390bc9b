/**
 * Changes made through the admin REST API reach WebSocket subscribers too: a time series deletion pushes the key's new
 * latest value (or its deletion), and a bulk-import attribute column pushes the saved attributes.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { startTestServer, type TestServer } from '../../support/harness.ts';
import { adminClient, deviceWithIdentity, type AdminClient } from '../admin-client.ts';
import { openSocket, wsUrl, type TestSocket } from './ws-client.ts';

describe('WebSocket subscribers see admin API changes', () => {
  let server: TestServer;
  let api: AdminClient;
  let token: string;
  let deviceId: string;
  const sockets: TestSocket[] = [];

  before(async () => {
    server = await startTestServer();
    api = await adminClient(server);
    token = await server.adminToken();
    ({ deviceId } = await deviceWithIdentity(server, api, 'ws-admin-token', 'WS admin device'));
  });
  after(async () => {
    for (const s of sockets) s.close();
    await server.close();
  });

  it('a deleted latest value is replaced by the one before it, then by a deletion', async () => {
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
});
