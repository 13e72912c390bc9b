/**
 * Server -> device over HTTP long polls (spec §8.3) on a whole server: shared attribute updates, server-side RPC
 * with the reply, 408 on timeout, and sessions that end with the request.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { call, createDevice, post, randomId, startTestServer, until, type HttpAnswer, type TestServer } from './http-support.ts';

describe('HTTP long polls', () => {
  let server: TestServer;
  before(async () => (server = await startTestServer({ logLevel: 'warn', httpLongPollTimeout: 200 })));
  after(() => server.close());

  /** Starts a poll and waits until its device session is open (bounded). */
  async function openPoll(path: string, signal?: AbortSignal): Promise<{ answer: Promise<HttpAnswer>; sessionsBefore: number }> {
    const sessionsBefore = server.core.sessions.count();
    const answer = call(server, path, signal ? { signal } : {});
    await until(() => server.core.sessions.count() > sessionsBefore, 'the poll session to open');
    return { answer, sessionsBefore };
  }

  it('answers /attributes/updates with a shared attribute update, then closes the session', async () => {
    const { device, token } = await createDevice(server, `u-${randomId()}`);
    const { answer, sessionsBefore } = await openPoll(`/api/v1/${token}/attributes/updates?timeout=30000`);
    await server.core.attributes.save(device, 'SHARED_SCOPE', { target: 22.5, mode: 'eco' });
    const reply = await answer;
    assert.equal(reply.status, 200);
    assert.match(reply.contentType ?? '', /^application\/json/);
    assert.deepEqual(reply.json, { target: 22.5, mode: 'eco' });
    await until(() => server.core.sessions.count() === sessionsBefore, 'the session to close');
  });

  it('answers /attributes/updates with {"deleted":[..]} on deletion', async () => {
    const { device, token } = await createDevice(server, `u-${randomId()}`);
    await server.core.attributes.save(device, 'SHARED_SCOPE', { gone: 1 });
    const { answer } = await openPoll(`/api/v1/${token}/attributes/updates?timeout=30000`);
    await server.core.attributes.delete(device, 'SHARED_SCOPE', ['gone']);
    assert.deepEqual((await answer).json, { deleted: ['gone'] });
  });

  it('answers 408 with an empty body when nothing arrives, and closes the session', async () => {
    const { token } = await createDevice(server, `u-${randomId()}`);
    const before = server.core.sessions.count();
    for (const path of ['attributes/updates?timeout=50', 'rpc?timeout=50', 'rpc', 'attributes/updates?timeout=0']) {
      const reply = await call(server, `/api/v1/${token}/${path}`);
      assert.equal(reply.status, 408, path);
      assert.equal(reply.text, '', path);
    }
    await until(() => server.core.sessions.count() === before, 'every poll session to close');
  });

  it('delivers a server-side RPC to /rpc and hands the device reply back (two-way)', async () => {
    const { device, token } = await createDevice(server, `r-${randomId()}`);
    const stored = await server.core.devices.get(device.tenantId, device.id);
    const { answer } = await openPoll(`/api/v1/${token}/rpc?timeout=30000`);
    const sent = server.core.rpc.send(stored, { method: 'setGpio', params: { pin: 4, value: 1 }, timeout: 10_000, oneway: false });
    const rpc = await answer;
    assert.equal(rpc.status, 200);
    assert.deepEqual(Object.keys(rpc.json), ['id', 'method', 'params']);
    assert.equal(rpc.json.method, 'setGpio');
    assert.deepEqual(rpc.json.params, { pin: 4, value: 1 });
    assert.ok(Number.isInteger(rpc.json.id));
    const replied = await post(server, token, `rpc/${rpc.json.id}`, '{"pin":4,"value":1,"ok":true}');
    assert.equal(replied.status, 200);
    const result = await sent;
    assert.deepEqual(result.response, { pin: 4, value: 1, ok: true });
    assert.equal(result.rpc.status, 'SUCCESSFUL');
  });

  it('delivers an RPC sent before the device polled (it stays pending)', async () => {
    const { device, token } = await createDevice(server, `r-${randomId()}`);
    const sent = server.core.rpc.send(device, { method: 'reboot', params: null, timeout: 10_000, oneway: true });
    await until(async () => (await server.store.listPendingRpc(device.id, Date.now())).length === 1, 'the RPC to be queued');
    const rpc = await call(server, `/api/v1/${token}/rpc?timeout=30000`);
    assert.equal(rpc.status, 200);
    assert.equal(rpc.json.method, 'reboot');
    const result = await sent;
    assert.equal(result.rpc.status, 'DELIVERED', 'a one-way RPC completes once written to the device');
  });

  it('closes the session when the client goes away, and a later poll still gets the RPC', async () => {
    const { device, token } = await createDevice(server, `r-${randomId()}`);
    const abort = new AbortController();
    const { answer, sessionsBefore } = await openPoll(`/api/v1/${token}/rpc?timeout=30000`, abort.signal);
    abort.abort();
    await assert.rejects(answer);
    await until(() => server.core.sessions.count() === sessionsBefore, 'the abandoned session to close');
    const sent = server.core.rpc.send(device, { method: 'afterAbort', params: {}, timeout: 10_000, oneway: false });
    const rpc = await call(server, `/api/v1/${token}/rpc?timeout=30000`);
    assert.equal(rpc.json.method, 'afterAbort');
    await post(server, token, `rpc/${rpc.json.id}`, '"done"');
    assert.equal((await sent).response, 'done');
  });

  it('answers 403 "Device was deleted!" when the device is deleted during a poll (spec §8.3)', async () => {
    for (const path of ['attributes/updates', 'rpc']) {
      const { device, token } = await createDevice(server, `del-${randomId()}`);
      const { answer, sessionsBefore } = await openPoll(`/api/v1/${token}/${path}?timeout=30000`);
      await server.core.devices.delete(device.tenantId, device.id, { userId: null, userName: 'test', source: { transport: 'admin' } });
      const reply = await answer;
      assert.equal(reply.status, 403, path);
      assert.equal((reply.json as { message: string }).message, 'Device was deleted!');
      await until(() => server.core.sessions.count() === sessionsBefore, 'the session to close');
    }
  });

  it('answers open polls with 503 when the server stops', async () => {
    const own = await startTestServer({ logLevel: 'warn' });
    try {
      const { token } = await createDevice(own, `s-${randomId()}`);
      const before = own.core.sessions.count();
      const answer = call(own, `/api/v1/${token}/attributes/updates?timeout=60000`);
      await until(() => own.core.sessions.count() > before, 'the poll session to open');
      await own.close();
      const reply = await answer;
      assert.equal(reply.status, 503);
      assert.equal(reply.json.errorCode, 2);
    } finally {
      await own.close();
    }
  });
});
