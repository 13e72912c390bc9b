/**
 * The CoAP device API (spec §8.4): telemetry and attributes acknowledged after commit, attribute requests,
 * RPC replies, error codes with diagnostics, with node-coap and coap-client-notls.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { generate, parse } from 'coap-packet';
import { errorReply } from '../../../src/transports/coap/replies.ts';
import { T, coapClient, coapClientSkip, coapRequest, device, jsonBody, provisionProfile, RawClient, startCoap, type CoapFixture } from './support.ts';

let f: CoapFixture;
let deviceId: string;
const TOKEN = 'coap-api-token';
const tmp = mkdtempSync(join(tmpdir(), 'fleetgate-coap-'));

before(async () => {
  f = await startCoap({ maxPayload: 4096 });
  const p = await provisionProfile(f, 'api', 'DISABLED', null, null);
  deviceId = (await device(f, 'api device', p.id, TOKEN)).id;
  await device(f, 'empty device', p.id, 'empty-token');
  const d = await f.core.devices.get(T, deviceId);
  await f.core.attributes.save(d, 'SHARED_SCOPE', { mode: 'eco', level: 3 });
});
after(async () => {
  await f.close();
  rmSync(tmp, { recursive: true, force: true });
});

const latest = (keys?: string[]) => f.core.timeseries.latest(deviceId, keys);

describe('spec §8.4 telemetry and attributes', () => {
  test('POST telemetry is 2.01 and the values are committed when the answer arrives', async () => {
    const a = await coapRequest(f.port, `/api/v1/${TOKEN}/telemetry`, { payload: '{"temperature":21.5,"on":true}' });
    assert.equal(a.code, '2.01');
    const l = await latest(['temperature', 'on']); // read right after the answer, no waiting: acked after commit
    assert.equal(l.temperature?.[0].value.value, 21.5);
    assert.equal(l.on?.[0].value.value, true);
  });
  test('POST telemetry with ts/values and an array, NON', async () => {
    const a = await coapRequest(f.port, `/api/v1/${TOKEN}/telemetry`, { confirmable: false, payload: '[{"ts":1700000000000,"values":{"hum":40}},{"hum2":41}]' });
    assert.equal(a.code, '2.01');
    const series = await f.core.timeseries.get(deviceId, { keys: ['hum'], startTs: 0, endTs: Date.now() });
    assert.equal(series.hum?.[0].ts, 1700000000000);
  });
  test('POST attributes is 2.01 and stores client attributes', async () => {
    assert.equal((await coapRequest(f.port, `/api/v1/${TOKEN}/attributes`, { payload: '{"fw":"1.2.3"}' })).code, '2.01');
    const got = await f.core.attributes.get(deviceId, 'CLIENT_SCOPE', ['fw']);
    assert.equal(got[0]?.value.value, '1.2.3');
  });
  test('GET attributes with clientKeys/sharedKeys is 2.05 {"client","shared"}', async () => {
    const a = await coapRequest(f.port, `/api/v1/${TOKEN}/attributes`, { method: 'GET', query: 'clientKeys=fw&sharedKeys=mode,level' });
    assert.equal(a.code, '2.05');
    assert.equal(a.format, 'application/json');
    assert.deepEqual(jsonBody(a), { client: { fw: '1.2.3' }, shared: { mode: 'eco', level: 3 } });
  });
  test('GET attributes that match nothing is 4.04 (spec §8.4)', async () => {
    const a = await coapRequest(f.port, `/api/v1/${TOKEN}/attributes`, { method: 'GET', query: 'sharedKeys=nothing' });
    assert.equal(a.code, '4.04');
    assert.ok(a.text.length > 0, 'diagnostic payload');
    assert.equal((await coapRequest(f.port, '/api/v1/empty-token/attributes', { method: 'GET' })).code, '4.04');
  });
});

describe('spec §8.4 failure codes carry a diagnostic payload', () => {
  test('bad token is 4.01', async () => {
    const a = await coapRequest(f.port, '/api/v1/wrong-token/telemetry', { payload: '{"a":1}' });
    assert.deepEqual([a.code, a.text], ['4.01', 'Invalid access token']);
  });
  test('bad JSON telemetry is 4.00', async () => {
    const a = await coapRequest(f.port, `/api/v1/${TOKEN}/telemetry`, { payload: '{"a":' });
    assert.equal(a.code, '4.00');
    assert.ok(a.text.length > 0);
  });
  test('attributes that are not an object are 4.00', async () => {
    assert.equal((await coapRequest(f.port, `/api/v1/${TOKEN}/attributes`, { payload: '[1,2]' })).code, '4.00');
  });
  test('GET on telemetry is 4.00; a path without feature is 4.00; an unknown root is 4.04', async () => {
    assert.equal((await coapRequest(f.port, `/api/v1/${TOKEN}/telemetry`, { method: 'GET' })).code, '4.00');
    assert.equal((await coapRequest(f.port, `/api/v1/${TOKEN}`, { payload: '{}' })).code, '4.00');
    assert.equal((await coapRequest(f.port, `/api/v1/${TOKEN}/nonsense`, { payload: '{}' })).code, '4.00');
    assert.equal((await coapRequest(f.port, '/elsewhere', { method: 'GET' })).code, '4.04');
  });
  test('PUT on telemetry is 4.05', async () => {
    assert.equal((await coapRequest(f.port, `/api/v1/${TOKEN}/telemetry`, { method: 'PUT', payload: '{}' })).code, '4.05');
  });
  test('a payload over the limit is 4.13 with Size1 (RFC 7959 §2.9.3)', async () => {
    const raw = await new RawClient().open();
    try {
      const path = ['api', 'v1', TOKEN, 'telemetry'].map((p) => ({ name: 'Uri-Path' as const, value: Buffer.from(p) }));
      raw.send(f.port, generate({ code: 'POST', messageId: 4242, token: Buffer.from([1, 2]), confirmable: true, options: path, payload: Buffer.alloc(5000, 0x20) }, 65535));
      const answer = parse((await raw.next())!);
      assert.equal(answer.code, '4.13');
      assert.equal(answer.messageId, 4242);
      assert.deepEqual([...answer.options.find((o) => o.name === 'Size1')!.value], [0x10, 0x00]);
    } finally {
      await raw.close();
    }
  });
  test('internal errors map to 5.00 without details (one mapping, the error registry)', () => {
    const r = errorReply(new Error('secret detail'));
    assert.deepEqual([r.code, r.payload?.toString()], ['5.00', 'Internal server error']);
  });
  test('client-side RPC getSessionLimits is 2.05; other methods 5.01', async () => {
    const a = await coapRequest(f.port, `/api/v1/${TOKEN}/rpc`, { payload: '{"method":"getSessionLimits","params":{}}' });
    assert.equal(a.code, '2.05');
    assert.equal(jsonBody(a).maxPayloadSize, 4096);
    assert.equal((await coapRequest(f.port, `/api/v1/${TOKEN}/rpc`, { payload: '{"method":"other"}' })).code, '5.01');
  });
  test('an RPC reply to an unknown id is accepted (ThingsBoard ignores it); a non-numeric id is 4.00', async () => {
    assert.equal((await coapRequest(f.port, `/api/v1/${TOKEN}/rpc/77`, { payload: '{"ok":true}' })).code, '2.01');
    assert.equal((await coapRequest(f.port, `/api/v1/${TOKEN}/rpc/abc`, { payload: '{}' })).code, '4.00');
  });
});

describe('RFC 7959 block-wise transfer', () => {
  test('Block1 upload from node-coap (64-byte blocks) is reassembled and stored once', async () => {
    const value = 'b'.repeat(900);
    const a = await coapRequest(f.port, `/api/v1/${TOKEN}/telemetry`, { payload: JSON.stringify({ blockwise: value }), options: { Block1: Buffer.from([0x02]) } });
    assert.equal(a.code, '2.01');
    assert.equal((await latest(['blockwise'])).blockwise?.[0].value.value, value);
  });
  test('Block2: a large attribute answer comes in blocks and node-coap reassembles it', async () => {
    const d = await f.core.devices.get(T, deviceId);
    await f.core.attributes.save(d, 'SHARED_SCOPE', { large: 'L'.repeat(3000) });
    const a = await coapRequest(f.port, `/api/v1/${TOKEN}/attributes`, { method: 'GET', query: 'sharedKeys=large' });
    assert.equal(a.code, '2.05');
    assert.equal((jsonBody(a).shared as Record<string, string>).large.length, 3000);
  });
  test('coap-client-notls -b 64 uploads block-wise and downloads block-wise', { skip: coapClientSkip() }, async () => {
    const file = join(tmp, 'big.json');
    writeFileSync(file, JSON.stringify({ libcoapBlock: 'c'.repeat(700) }));
    const up = await coapClient(['-m', 'post', '-b', '64', '-f', file, f.url(`/api/v1/${TOKEN}/telemetry`)]);
    assert.equal(up.stderr, '');
    assert.equal((await latest(['libcoapBlock'])).libcoapBlock?.[0].value.value, 'c'.repeat(700));
    const down = await coapClient(['-m', 'get', '-B', '10', f.url(`/api/v1/${TOKEN}/attributes?sharedKeys=large`)]);
    assert.equal(JSON.parse(down.stdout.trim()).shared.large.length, 3000);
  });
});

describe('coap-client-notls device API', () => {
  test('telemetry with -e, then GET attributes prints JSON', { skip: coapClientSkip() }, async () => {
    const out = await coapClient(['-m', 'post', '-e', '{"libcoap":7}', f.url(`/api/v1/${TOKEN}/telemetry`)]);
    assert.equal(out.stderr, '');
    assert.equal((await latest(['libcoap'])).libcoap?.[0].value.value, 7);
    const get = await coapClient(['-m', 'get', f.url(`/api/v1/${TOKEN}/attributes?clientKeys=fw`)]);
    assert.deepEqual(JSON.parse(get.stdout.trim()), { client: { fw: '1.2.3' } });
  });
  test('bad token: libcoap shows 4.01 and the diagnostic', { skip: coapClientSkip() }, async () => {
    const out = await coapClient(['-m', 'post', '-e', '{"a":1}', f.url('/api/v1/nope/telemetry')]);
    assert.match(out.stderr, /4\.01 Invalid access token/);
  });
});
