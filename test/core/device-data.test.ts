import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createTestCore, type TestCore } from '../support/core.ts';
import { TEST_ACTOR } from '../support/harness.ts';
import { DEFAULT_TENANT_ID as T, type Device } from '../../src/core/model.ts';
import type { AttributeUpdate, DeviceIdentity, RpcDelivery } from '../../src/core/api.ts';
import { FleetgateError } from '../../src/core/errors.ts';
import { Telemetry } from '../../src/core/telemetry.ts';

let t: TestCore;
let device: Device;
let identity: DeviceIdentity;

before(async () => {
  t = await createTestCore({ rpcDefaultTimeout: 500 });
  device = await t.core.devices.save(T, { name: 'data-dev' }, TEST_ACTOR, 'DATA_TOKEN');
  identity = (await t.core.auth.byAccessToken('DATA_TOKEN'))!;
});
after(() => t.close());

describe('telemetry ingestion', () => {
  test('acknowledged telemetry is committed and readable, latest value moves forward only', async () => {
    await t.core.telemetry.ingestJson(identity, '[{"ts":1000,"values":{"temp":20}},{"ts":3000,"values":{"temp":22.5}}]');
    await t.core.telemetry.ingestJson(identity, '{"ts":2000,"values":{"temp":21}}');
    const all = await t.core.timeseries.get(device.id, { keys: ['temp'], startTs: 0, endTs: 10_000 });
    assert.deepEqual(all.temp.map((p) => [p.ts, p.value.value]), [
      [3000, 22.5],
      [2000, 21],
      [1000, 20],
    ]);
    const latest = await t.core.timeseries.latest(device.id, ['temp']);
    assert.deepEqual(latest.temp.map((p) => [p.ts, p.value.value]), [[3000, 22.5]]);
  });
  test('a repeated (device, key, ts) is stored once, last value wins', async () => {
    await t.core.telemetry.ingestJson(identity, '{"ts":5000,"values":{"dup":1}}');
    await t.core.telemetry.ingestJson(identity, '{"ts":5000,"values":{"dup":2}}');
    const rows = await t.core.timeseries.get(device.id, { keys: ['dup'], startTs: 0, endTs: 10_000 });
    assert.deepEqual(rows.dup.map((p) => p.value.value), [2]);
  });
  test('concurrent submissions are group-committed in fewer transactions than requests', async () => {
    const before = t.core.committer.stats.batches;
    await Promise.all(Array.from({ length: 200 }, (_, i) => t.core.telemetry.ingestJson(identity, `{"ts":${10_000 + i},"values":{"g":${i}}}`)));
    const batches = t.core.committer.stats.batches - before;
    assert.ok(batches >= 1 && batches < 200, `expected grouping, got ${batches} batches`);
    const rows = await t.core.timeseries.get(device.id, { keys: ['g'], startTs: 0, endTs: 20_000, limit: 1000 });
    assert.equal(rows.g.length, 200);
  });
  test('a batch that fails for one submission does not fail its neighbours', async () => {
    const ghost: DeviceIdentity = { ...identity, deviceId: 'no-such-device' };
    const results = await Promise.allSettled([
      t.core.telemetry.ingestJson(identity, '{"ts":7000,"values":{"n":1}}'),
      t.core.telemetry.saveClientAttributesJson(ghost, '{"a":1}'),
      t.core.telemetry.ingestJson(identity, '{"ts":7001,"values":{"n":2}}'),
    ]);
    assert.deepEqual(results.map((r) => r.status), ['fulfilled', 'rejected', 'fulfilled']);
  });
  test('malformed telemetry is rejected before it is queued', async () => {
    await assert.rejects(t.core.telemetry.ingestJson(identity, '{"a":'), FleetgateError);
    await assert.rejects(t.core.telemetry.saveClientAttributesJson(identity, '[1]'), FleetgateError);
  });
  test('the observer hears of each committed telemetry message with its point count, before the caller', async () => {
    await t.core.devices.save(T, { name: 'observed-dev' }, TEST_ACTOR, 'OBSERVED_TOKEN');
    const observed = (await t.core.auth.byAccessToken('OBSERVED_TOKEN'))!;
    const heard: (number | string)[] = [];
    const telemetry = new Telemetry(t.store, t.core.committer, { telemetryCommitted: (points) => heard.push(points) });
    await Promise.all([
      telemetry.ingestJson(observed, '{"a":1,"b":2}').then(() => heard.push('resolved')),
      telemetry.ingestJson(observed, Buffer.from('[{"ts":1,"values":{"c":3}},{"ts":2,"values":{"c":4}}]')),
      telemetry.ingestJson(observed, '{}'),
      telemetry.saveClientAttributesJson(observed, '{"attr":1}'),
      assert.rejects(telemetry.ingestJson(observed, 'nope'), FleetgateError),
    ]);
    assert.deepEqual(heard, [0, 2, 2, 'resolved']);
  });
});

describe('attributes', () => {
  test('client attributes from the device and shared ones from the admin, as the device sees them', async () => {
    await t.core.telemetry.saveClientAttributesJson(identity, '{"fw":"1.0.3","n":3}');
    await t.core.attributes.save(device, 'SHARED_SCOPE', { mode: 'eco', limit: 10 });
    assert.deepEqual(await t.core.attributes.getForDevice(device.id), { client: { fw: '1.0.3', n: 3 }, shared: { limit: 10, mode: 'eco' } });
    assert.deepEqual(await t.core.attributes.getForDevice(device.id, ['fw'], ['mode']), { client: { fw: '1.0.3' }, shared: { mode: 'eco' } });
    assert.deepEqual(await t.core.attributes.getForDevice(device.id, ['fw']), { client: { fw: '1.0.3' } });
    assert.deepEqual(await t.core.attributes.getForDevice(device.id, ['nope'], ['nope']), {});
  });
  test('shared updates and deletions reach every session that asked for them', async () => {
    const a: AttributeUpdate[] = [];
    const b: AttributeUpdate[] = [];
    const s1 = t.core.sessions.open(identity, { onAttributes: (u) => a.push(u) });
    const s2 = t.core.sessions.open(identity, { onAttributes: (u) => b.push(u) });
    const s3 = t.core.sessions.open(identity, {});
    await new Promise((r) => setImmediate(r));
    await t.core.attributes.save(device, 'SHARED_SCOPE', { target: 21 });
    await t.core.attributes.save(device, 'SERVER_SCOPE', { hidden: 1 });
    await t.core.attributes.delete(device, 'SHARED_SCOPE', ['target', 'never-existed']);
    await new Promise((r) => setImmediate(r));
    assert.deepEqual(a, [{ target: 21 }, { deleted: ['target'] }]);
    assert.deepEqual(b, a);
    s1.close();
    s2.close();
    s3.close();
    assert.equal(t.core.sessions.count(), 0);
  });
});

describe('server-side RPC', () => {
  test('two-way: delivered to the subscribed session, answered with the reply', async () => {
    const got: RpcDelivery[] = [];
    const session = t.core.sessions.open(identity, {
      onRpc: async (rpc) => {
        got.push(rpc);
        setImmediate(() => void t.core.rpc.reply(device.id, rpc.requestId, '{"ok":true}'));
      },
    });
    try {
      const result = await t.core.rpc.send(device, { method: 'setGpio', params: { pin: 4 }, oneway: false, timeout: 2000 });
      assert.deepEqual(result.response, { ok: true });
      assert.equal(got.length, 1);
      assert.deepEqual(got[0].params, { pin: 4 });
      assert.equal(got[0].method, 'setGpio');
      assert.equal((await t.store.getRpc(result.rpc.id))?.status, 'SUCCESSFUL');
    } finally {
      session.close();
    }
  });
  test('one-way: resolves once delivered', async () => {
    const session = t.core.sessions.open(identity, { onRpc: async () => {} });
    try {
      const result = await t.core.rpc.send(device, { method: 'reboot', params: null, oneway: true, timeout: 2000 });
      assert.equal(result.response, undefined);
    } finally {
      session.close();
    }
  });
  test('no session: times out with TIMEOUT and is not delivered later', async () => {
    await assert.rejects(t.core.rpc.send(device, { method: 'late', params: {}, oneway: false, timeout: 100 }), (e: unknown) => e instanceof FleetgateError && e.code === 'TIMEOUT');
    const got: RpcDelivery[] = [];
    const session = t.core.sessions.open(identity, { onRpc: async (r) => void got.push(r) });
    await new Promise((r) => setTimeout(r, 20));
    session.close();
    assert.deepEqual(got.map((r) => r.method).filter((m) => m === 'late'), []);
  });
  test('an RPC sent while offline is delivered when the device subscribes', async () => {
    const pending = t.core.rpc.send(device, { method: 'whenBack', params: { n: 1 }, oneway: false, timeout: 3000 });
    await new Promise((r) => setTimeout(r, 30));
    const session = t.core.sessions.open(identity, {});
    session.update({
      onRpc: async (rpc) => {
        if (rpc.method === 'whenBack') setImmediate(() => void t.core.rpc.reply(device.id, rpc.requestId, '"done"'));
      },
    });
    try {
      assert.equal((await pending).response, 'done');
    } finally {
      session.close();
    }
  });
  test('a failed delivery leaves the RPC pending for the next session', async () => {
    const failing = t.core.sessions.open(identity, { onRpc: async () => Promise.reject(new Error('socket gone')) });
    const pending = t.core.rpc.send(device, { method: 'retryMe', params: {}, oneway: true, timeout: 3000 });
    await new Promise((r) => setTimeout(r, 30));
    failing.close();
    const ok = t.core.sessions.open(identity, { onRpc: async () => {} });
    try {
      await pending;
    } finally {
      ok.close();
    }
  });
  test('a bad method is rejected', async () => {
    await assert.rejects(t.core.rpc.send(device, { method: '', params: {}, oneway: false }), FleetgateError);
  });
});
