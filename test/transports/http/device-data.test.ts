/**
 * Device -> server data over HTTP (spec §8.3): telemetry in every JSON form of §8.2 read back through core,
 * client attributes and the attribute read, client-side RPC, and logs that never hold a token.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { call, createDevice, post, randomId, startTestServer, TENANT, TEST_ACTOR, tbError, type TestServer } from './http-support.ts';

describe('telemetry and attributes over HTTP', () => {
  let server: TestServer;
  before(async () => (server = await startTestServer({ logLevel: 'debug' })));
  after(() => server.close());

  /** All stored points of `keys`, oldest first, as [key, ts, value] rows. */
  async function stored(deviceId: string, keys: string[]) {
    const series = await server.core.timeseries.get(deviceId, { keys, startTs: 0, endTs: Date.now() + 60_000, orderBy: 'ASC' });
    return keys.flatMap((key) => (series[key] ?? []).map((p) => [key, p.ts, p.value] as const));
  }

  it('stores {"k":v} with the server time, once committed (200, empty body)', async () => {
    const { device, token } = await createDevice(server, `t-${randomId()}`);
    const before = Date.now();
    const answer = await post(server, token, 'telemetry', '{"temperature":21.5,"humidity":40,"on":true,"mode":"eco","big":9223372036854775807,"nested":{"a":[1,2]},"skip":null}');
    assert.equal(answer.status, 200);
    assert.equal(answer.text, '');
    const rows = await stored(device.id, ['temperature', 'humidity', 'on', 'mode', 'big', 'nested', 'skip']);
    assert.deepEqual(rows.map(([k, , v]) => [k, v]), [
      ['temperature', { type: 'DOUBLE', value: 21.5 }],
      ['humidity', { type: 'LONG', value: 40 }],
      ['on', { type: 'BOOLEAN', value: true }],
      ['mode', { type: 'STRING', value: 'eco' }],
      ['big', { type: 'LONG', value: 9223372036854775807n }],
      ['nested', { type: 'JSON', value: '{"a":[1,2]}' }],
    ]);
    for (const [, ts] of rows) assert.ok(ts >= before && ts <= Date.now(), 'server timestamp');
  });

  it('stores {"ts":..,"values":{..}} at the given time', async () => {
    const { device, token } = await createDevice(server, `t-${randomId()}`);
    assert.equal((await post(server, token, 'telemetry', '{"ts":1700000000000,"values":{"pressure":1013}}')).status, 200);
    assert.deepEqual(await stored(device.id, ['pressure']), [['pressure', 1700000000000, { type: 'LONG', value: 1013 }]]);
  });

  it('stores an array mixing both forms', async () => {
    const { device, token } = await createDevice(server, `t-${randomId()}`);
    const body = '[{"ts":1700000001000,"values":{"v":1}},{"ts":1700000002000,"values":{"v":2}},{"w":"x"}]';
    assert.equal((await post(server, token, 'telemetry', body)).status, 200);
    const rows = await stored(device.id, ['v', 'w']);
    assert.deepEqual(rows.slice(0, 2), [['v', 1700000001000, { type: 'LONG', value: 1 }], ['v', 1700000002000, { type: 'LONG', value: 2 }]]);
    assert.deepEqual(rows[2]![2], { type: 'STRING', value: 'x' });
  });

  it('treats an object with only "ts" as plain values (spec §8.2: needs both ts and values)', async () => {
    const { device, token } = await createDevice(server, `t-${randomId()}`);
    assert.equal((await post(server, token, 'telemetry', '{"ts":5,"level":3}')).status, 200);
    const rows = await stored(device.id, ['ts', 'level']);
    assert.deepEqual(rows.map(([k, , v]) => [k, v]), [['ts', { type: 'LONG', value: 5 }], ['level', { type: 'LONG', value: 3 }]]);
  });

  it('round-trips client attributes, and reads shared ones (spec §8.3)', async () => {
    const { device, token } = await createDevice(server, `a-${randomId()}`);
    assert.deepEqual((await call(server, `/api/v1/${token}/attributes`)).json, {}, '{} when there is nothing');
    assert.equal((await post(server, token, 'attributes', '{"fw":"v1.2","slots":3}')).status, 200);
    await server.core.attributes.save(device, 'SHARED_SCOPE', { target: 21, label: 'kitchen' });

    const both = await call(server, `/api/v1/${token}/attributes`);
    assert.equal(both.status, 200);
    assert.match(both.contentType ?? '', /^application\/json/);
    assert.deepEqual(both.json, { client: { fw: 'v1.2', slots: 3 }, shared: { target: 21, label: 'kitchen' } });

    const some = await call(server, `/api/v1/${token}/attributes?clientKeys=fw,missing&sharedKeys=target`);
    assert.deepEqual(some.json, { client: { fw: 'v1.2' }, shared: { target: 21 } });
    const clientOnly = await call(server, `/api/v1/${token}/attributes?clientKeys=slots`);
    assert.deepEqual(clientOnly.json, { client: { slots: 3 } }, 'only the scopes asked for');
    const sharedOnly = await call(server, `/api/v1/${token}/attributes?sharedKeys=label`);
    assert.deepEqual(sharedOnly.json, { shared: { label: 'kitchen' } });

    const stored = await server.core.attributes.get(device.id, 'CLIENT_SCOPE', ['slots']);
    assert.deepEqual(stored.map((a) => a.value), [{ type: 'LONG', value: 3 }]);
  });

  it('answers getSessionLimits (spec §8.2) and 501 for client-side RPC methods nothing can answer', async () => {
    const { token } = await createDevice(server, `r-${randomId()}`);
    const limits = await post(server, token, 'rpc', '{"method":"getSessionLimits","params":{}}');
    assert.equal(limits.status, 200);
    assert.deepEqual(limits.json, {
      maxPayloadSize: server.config.httpMaxPayload,
      maxInflightMessages: 100,
      rateLimits: { messages: '', telemetryMessages: '', telemetryDataPoints: '' },
    });
    const other = await post(server, token, 'rpc', '{"method":"getCurrentTime","params":{}}');
    assert.equal(other.status, 501);
    assert.match(tbError(other).message, /getCurrentTime/);
    assert.equal((await post(server, token, 'rpc', '{"params":{}}')).status, 400, 'no method');
    assert.equal((await post(server, token, 'rpc', 'not json')).status, 400);
  });

  it('never writes a device token to the log', async () => {
    const { token } = await createDevice(server, `l-${randomId()}`, undefined, `secret-token-${randomId()}`);
    await post(server, token, 'telemetry', '{"x":1}');
    await post(server, token, 'telemetry', '{"x":');
    await call(server, `/api/v1/${token}/attributes?clientKeys=x`);
    await call(server, `/api/v1/${token}/rpc?timeout=1`);
    await call(server, `/api/v1/${token}/no-such-feature`);
    const lines = server.logLines.filter((l) => l.includes('/api/v1/'));
    assert.ok(lines.length >= 5, `request lines are logged at debug (${lines.length})`);
    assert.ok(lines.some((l) => l.includes('/api/v1/[token]/telemetry')), 'with the token redacted');
    assert.deepEqual(server.logLines.filter((l) => l.includes(token)), []);
  });

  it('authenticates every request: a deleted device is refused at once', async () => {
    const { device, token } = await createDevice(server, `d-${randomId()}`);
    assert.equal((await post(server, token, 'telemetry', '{"x":1}')).status, 200);
    await server.core.devices.delete(TENANT, device.id, TEST_ACTOR);
    assert.equal((await post(server, token, 'telemetry', '{"x":2}')).status, 401);
  });
});
