import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { DeviceIdentity, RpcDelivery } from '../../src/core/api.ts';
import { startTestServer, type TestServer } from '../support/harness.ts';
import { adminClient, tbError, type AdminClient } from './admin-client.ts';

describe('server-side RPC over the admin API', () => {
  let server: TestServer;
  let api: AdminClient;
  let deviceId: string;
  let identity: DeviceIdentity;

  before(async () => {
    server = await startTestServer();
    api = await adminClient(server);
    const device = await api.post('/api/device?accessToken=rpc-device-token', { name: 'RPC device' });
    deviceId = device.json.id.id;
    const found = await server.core.auth.byAccessToken('rpc-device-token');
    assert.ok(found);
    identity = found;
  });
  after(() => server.close());

  /** Opens a device session that answers every RPC with `answer(rpc)` right after it was delivered. */
  function answeringSession(answer: (rpc: RpcDelivery) => string | undefined, seen: RpcDelivery[] = []) {
    return server.core.sessions.open(identity, {
      onRpc: async (rpc) => {
        seen.push(rpc);
        const reply = answer(rpc);
        if (reply !== undefined) setImmediate(() => void server.core.rpc.reply(deviceId, rpc.requestId, reply));
      },
    });
  }

  it('two-way: returns the device reply as JSON', async () => {
    const seen: RpcDelivery[] = [];
    const session = answeringSession(() => '{"pin":7,"value":1}', seen);
    try {
      const res = await api.post(`/api/plugins/rpc/twoway/${deviceId}`, { method: 'getGpio', params: { pin: 7 }, timeout: 5000 });
      assert.equal(res.status, 200, res.text);
      assert.match(res.headers.get('content-type') ?? '', /application\/json/);
      assert.deepEqual(res.json, { pin: 7, value: 1 });
      assert.equal(seen.length, 1);
      assert.equal(seen[0].method, 'getGpio');
      assert.deepEqual(seen[0].params, { pin: 7 });
    } finally {
      session.close();
    }
  });

  it('two-way: returns a reply that is not JSON as text', async () => {
    const session = answeringSession(() => 'pong');
    try {
      const res = await api.post(`/api/plugins/rpc/twoway/${deviceId}`, { method: 'ping', params: {}, timeout: 5000 });
      assert.equal(res.status, 200);
      assert.match(res.headers.get('content-type') ?? '', /text\/plain/);
      assert.equal(res.text, 'pong');
    } finally {
      session.close();
    }
  });

  it('one-way: answers 200 with an empty body once the device got the request', async () => {
    const seen: RpcDelivery[] = [];
    const session = answeringSession(() => undefined, seen);
    try {
      const res = await api.post(`/api/plugins/rpc/oneway/${deviceId}`, { method: 'reboot', params: { delay: 0 }, timeout: 5000 });
      assert.equal(res.status, 200);
      assert.equal(res.text, '');
      assert.equal(seen.length, 1);
      assert.equal(seen[0].method, 'reboot');
    } finally {
      session.close();
    }
  });

  it('answers 408 when the device does not answer in time', async () => {
    const res = await api.post(`/api/plugins/rpc/twoway/${deviceId}`, { method: 'noAnswer', params: {}, timeout: 300 });
    assert.equal(res.status, 408);
    assert.equal(tbError(res).status, 408);
    const oneway = await api.post(`/api/plugins/rpc/oneway/${deviceId}`, { method: 'nobodyListens', params: {}, timeout: 300 });
    assert.equal(oneway.status, 408);
  });

  it('records RPC calls in the audit log', async () => {
    const res = await api.get('/api/audit/logs?pageSize=100&page=0');
    const calls = res.json.data.filter((e: { actionType: string }) => e.actionType === 'RPC_CALL');
    assert.ok(calls.some((e: { actionStatus: string; actionData: { method: string } }) => e.actionStatus === 'SUCCESS' && e.actionData.method === 'getGpio'));
    assert.ok(calls.some((e: { actionStatus: string; actionFailureDetails: string }) => e.actionStatus === 'FAILURE' && e.actionFailureDetails === 'RPC Error: TIMEOUT'));
  });

  it('answers 400 to a malformed request and 404 for an unknown device', async () => {
    const url = `/api/plugins/rpc/twoway/${deviceId}`;
    assert.equal((await api.post(url, { params: {} })).status, 400, 'method is required');
    assert.equal((await api.post(url, { method: 'x', timeout: 'soon' })).status, 400);
    assert.equal((await api.call('POST', url, { raw: 'not json' })).status, 400);
    assert.equal((await api.post(url, [1])).status, 400);
    assert.equal((await api.post('/api/plugins/rpc/twoway/not-a-uuid', { method: 'x' })).status, 400);
    const unknown = await api.post('/api/plugins/rpc/twoway/00000000-0000-4000-8000-00000000dead', { method: 'x', timeout: 300 });
    assert.equal(unknown.status, 404);
  });

  it('needs a token', async () => {
    assert.equal((await api.post(`/api/plugins/rpc/oneway/${deviceId}`, { method: 'x' }, { token: null })).status, 401);
  });
});
