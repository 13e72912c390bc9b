/**
 * RPC v2 (ThingsBoard RpcV2Controller) on a real server; the device is a real HTTP long-poll client
 * (`GET /api/v1/{token}/rpc`, reply `POST /api/v1/{token}/rpc/{id}`).
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { startTestServer, type TestServer } from '../support/harness.ts';
import { adminClient, tbError, type AdminClient } from './admin-client.ts';

const UNKNOWN = '00000000-0000-4000-8000-00000000dead';

describe('server-side RPC v2 (/api/rpc) with persistent requests', () => {
  let server: TestServer;
  let api: AdminClient;
  let counter = 0;

  before(async () => {
    server = await startTestServer({ logLevel: 'warn' });
    api = await adminClient(server);
  });
  after(() => server.close());

  async function newDevice(): Promise<{ deviceId: string; token: string }> {
    const token = `rpc-v2-${++counter}-${Date.now()}`;
    const res = await api.post(`/api/device?accessToken=${token}`, { name: `RPC v2 device ${token}` });
    assert.equal(res.status, 200, res.text);
    return { deviceId: res.json.id.id, token };
  }

  /** The device polls for one RPC over HTTP (it connects now). */
  async function poll(token: string, timeout = 5000): Promise<{ status: number; json: any }> {
    const res = await fetch(`${server.httpUrl}/api/v1/${token}/rpc?timeout=${timeout}`);
    const text = await res.text();
    return { status: res.status, json: text ? JSON.parse(text) : undefined };
  }

  async function until(check: () => Promise<boolean>, what: string): Promise<void> {
    for (let i = 0; i < 300; i++) {
      if (await check()) return;
      await new Promise((r) => setTimeout(r, 20));
    }
    assert.fail(`timed out waiting for ${what}`);
  }

  const statusOf = async (rpcId: string) => (await api.get(`/api/rpc/persistent/${rpcId}`)).json.status as string;

  it('persistent two-way to an offline device: rpcId at once (QUEUED); the device connects, replies; GET shows SUCCESSFUL', async () => {
    const { deviceId, token } = await newDevice();
    const res = await api.post(`/api/rpc/twoway/${deviceId}`, { method: 'getGpio', params: { pin: 7 }, persistent: true, timeout: 60_000, additionalInfo: { a: 1 }, retries: 2 });
    assert.equal(res.status, 200, res.text);
    assert.deepEqual(Object.keys(res.json), ['rpcId']);
    const rpcId = res.json.rpcId as string;
    const queued = await api.get(`/api/rpc/persistent/${rpcId}`);
    assert.equal(queued.status, 200);
    assert.equal(queued.json.status, 'QUEUED');
    assert.deepEqual(queued.json.id, { entityType: 'RPC', id: rpcId });
    assert.deepEqual(queued.json.deviceId, { entityType: 'DEVICE', id: deviceId });
    assert.equal(queued.json.tenantId.entityType, 'TENANT');
    assert.equal(queued.json.response, null);
    assert.ok(queued.json.expirationTime > Date.now() + 50_000);
    assert.equal(queued.json.request.oneway, false);
    assert.deepEqual(queued.json.request.body, { method: 'getGpio', params: '{"pin":7}' });
    assert.equal(queued.json.request.persisted, true);

    const rpc = await poll(token);
    assert.equal(rpc.status, 200);
    assert.equal(rpc.json.method, 'getGpio');
    assert.deepEqual(rpc.json.params, { pin: 7 });
    await until(async () => (await statusOf(rpcId)) === 'DELIVERED', 'the two-way RPC to be DELIVERED');
    const replied = await fetch(`${server.httpUrl}/api/v1/${token}/rpc/${rpc.json.id}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: '{"pin":7,"value":1}',
    });
    assert.equal(replied.status, 200);
    const done = await api.get(`/api/rpc/persistent/${rpcId}`);
    assert.equal(done.json.status, 'SUCCESSFUL');
    assert.deepEqual(done.json.response, { pin: 7, value: 1 });
  });

  it('persistent one-way becomes SUCCESSFUL once delivered; expirationTime overrides timeout', async () => {
    const { deviceId, token } = await newDevice();
    const expirationTime = Date.now() + 120_000;
    const res = await api.post(`/api/rpc/oneway/${deviceId}`, { method: 'reboot', params: { delay: 0 }, persistent: true, expirationTime });
    assert.equal(res.status, 200, res.text);
    const rpcId = res.json.rpcId as string;
    const stored = await api.get(`/api/rpc/persistent/${rpcId}`);
    assert.equal(stored.json.expirationTime, expirationTime);
    assert.equal(stored.json.request.oneway, true);
    const rpc = await poll(token);
    assert.equal(rpc.json.method, 'reboot');
    await until(async () => (await statusOf(rpcId)) === 'SUCCESSFUL', 'the one-way RPC to be SUCCESSFUL');
    assert.equal((await api.get(`/api/rpc/persistent/${rpcId}`)).json.response, null);
  });

  it('lists the device RPCs newest first, pages, and filters by rpcStatus', async () => {
    const { deviceId, token } = await newDevice();
    const ids: string[] = [];
    for (const method of ['first', 'second', 'third']) {
      const res = await api.post(`/api/rpc/oneway/${deviceId}`, { method, params: {}, persistent: true, timeout: 60_000 });
      ids.push(res.json.rpcId);
      await new Promise((r) => setTimeout(r, 5)); // distinct createdTime
    }
    const page0 = await api.get(`/api/rpc/persistent/device/${deviceId}?pageSize=2&page=0`);
    assert.equal(page0.status, 200, page0.text);
    assert.deepEqual(page0.json.data.map((r: any) => r.id.id), [ids[2], ids[1]]);
    assert.deepEqual([page0.json.totalElements, page0.json.totalPages, page0.json.hasNext], [3, 2, true]);
    const page1 = await api.get(`/api/rpc/persistent/device/${deviceId}?pageSize=2&page=1`);
    assert.deepEqual(page1.json.data.map((r: any) => r.id.id), [ids[0]]);
    assert.equal(page1.json.hasNext, false);
    const asc = await api.get(`/api/rpc/persistent/device/${deviceId}?pageSize=10&page=0&sortProperty=createdTime&sortOrder=ASC`);
    assert.deepEqual(asc.json.data.map((r: any) => r.id.id), ids);

    assert.equal((await poll(token)).json.method, 'first'); // the device takes the oldest pending one
    await until(async () => (await statusOf(ids[0])) === 'SUCCESSFUL', 'the first RPC to complete');
    const done = await api.get(`/api/rpc/persistent/device/${deviceId}?pageSize=10&page=0&rpcStatus=SUCCESSFUL`);
    assert.deepEqual(done.json.data.map((r: any) => r.id.id), [ids[0]]);
    const queued = await api.get(`/api/rpc/persistent/device/${deviceId}?pageSize=10&page=0&rpcStatus=QUEUED`);
    assert.equal(queued.json.totalElements, 2);
    assert.equal((await api.get(`/api/rpc/persistent/device/${deviceId}?pageSize=10&page=0&rpcStatus=BOGUS`)).status, 400);
    assert.equal((await api.get(`/api/rpc/persistent/device/${deviceId}?page=0`)).status, 400);
    assert.equal((await api.get(`/api/rpc/persistent/device/${UNKNOWN}?pageSize=10&page=0`)).status, 404);
  });

  it('DELETE removes a pending RPC; a device connecting afterwards does not get it', async () => {
    const { deviceId, token } = await newDevice();
    const res = await api.post(`/api/rpc/twoway/${deviceId}`, { method: 'dropMe', params: {}, persistent: true, timeout: 60_000 });
    const rpcId = res.json.rpcId as string;
    const deleted = await api.call('DELETE', `/api/rpc/persistent/${rpcId}`);
    assert.equal(deleted.status, 200, deleted.text);
    assert.equal((await api.get(`/api/rpc/persistent/${rpcId}`)).status, 404);
    assert.equal((await api.get(`/api/rpc/persistent/device/${deviceId}?pageSize=10&page=0`)).json.totalElements, 0);
    const polled = await poll(token, 300);
    assert.equal(polled.status, 408, 'nothing to deliver');
    assert.equal((await api.call('DELETE', `/api/rpc/persistent/${rpcId}`)).status, 404);
  });

  it('answers 404 for an unknown RPC id and 400 for a malformed one', async () => {
    const res = await api.get(`/api/rpc/persistent/${UNKNOWN}`);
    assert.equal(res.status, 404);
    assert.equal(tbError(res).status, 404);
    assert.equal((await api.get('/api/rpc/persistent/not-a-uuid')).status, 400);
    assert.equal((await api.call('DELETE', `/api/rpc/persistent/${UNKNOWN}`)).status, 404);
  });

  it('non-persistent POST /api/rpc/twoway waits for the reply like v1; persistent to an unknown device is 404', async () => {
    const { deviceId, token } = await newDevice();
    const answer = api.post(`/api/rpc/twoway/${deviceId}`, { method: 'ping', params: {}, timeout: 10_000 });
    const rpc = await poll(token);
    assert.equal(rpc.json.method, 'ping');
    await fetch(`${server.httpUrl}/api/v1/${token}/rpc/${rpc.json.id}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"pong":true}' });
    const res = await answer;
    assert.equal(res.status, 200, res.text);
    assert.deepEqual(res.json, { pong: true });
    assert.equal((await api.post(`/api/rpc/oneway/${deviceId}`, { method: 'x', params: {}, timeout: 200 })).status, 408);
    assert.equal((await api.post(`/api/rpc/twoway/${UNKNOWN}`, { method: 'x', persistent: true })).status, 404);
    assert.equal((await api.post(`/api/rpc/twoway/${deviceId}`, { params: {}, persistent: true })).status, 400);
  });

  it('audits persistent RPC calls', async () => {
    const res = await api.get('/api/audit/logs?pageSize=200&page=0');
    const calls = res.json.data.filter((e: { actionType: string }) => e.actionType === 'RPC_CALL');
    assert.ok(calls.some((e: { actionStatus: string; actionData: { method: string } }) => e.actionStatus === 'SUCCESS' && e.actionData.method === 'getGpio'));
  });
});
