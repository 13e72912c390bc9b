/**
 * Observe on /attributes and /rpc (spec §8.4, RFC 7641): initial notification, updates, RPC delivery and replies,
 * cancellation (Observe=1, RST), re-registration, and observers that vanish.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { Agent, request, type IncomingMessage, type ObserveReadStream } from 'coap';
import { generate, parse, type ParsedPacket } from 'coap-packet';
import type { Device } from '../../../src/core/model.ts';
import { coapClient, coapClientSkip, coapRequest, device, eventually, provisionProfile, RawClient, startCoap, type CoapFixture } from './support.ts';

let f: CoapFixture;
let dev: Device;
const TOKEN = 'observe-token';

/** A fresh server per group, so observers one group leaves behind never count in another. */
function freshServer(): void {
  before(async () => {
    // Short notification timings so vanished observers are found quickly (RFC 7252 §4.8 values are the defaults).
    f = await startCoap({ observe: { ackTimeoutMs: 30, maxRetransmit: 2, nonObserverTtlMs: 1500 } });
    const p = await provisionProfile(f, 'obs', 'DISABLED', null, null);
    dev = await device(f, 'observed', p.id, TOKEN);
    await f.core.attributes.save(dev, 'SHARED_SCOPE', { color: 'red' });
  });
  after(() => f.close());
}

const pathOptions = (...segments: string[]) => segments.map((s) => ({ name: 'Uri-Path' as const, value: Buffer.from(s) }));
const observeOpt = (v: number) => ({ name: 'Observe' as const, value: v === 0 ? Buffer.alloc(0) : Buffer.from([v]) });
function observeGet(feature: string, token: Buffer, messageId: number, value = 0, confirmable = true): Buffer {
  return generate({ code: 'GET', messageId, token, confirmable, options: [observeOpt(value), ...pathOptions('api', 'v1', TOKEN, feature)] });
}
async function nextPacket(raw: RawClient): Promise<ParsedPacket> {
  const m = await raw.next();
  assert.ok(m, 'a datagram arrived');
  return parse(m);
}
const observeOf = (p: ParsedPacket) => p.options.find((o) => o.name === 'Observe')?.value;

describe('node-coap observer', () => {
  freshServer();
  test('/attributes: initial notification is the current shared attributes, then each update and deletion', async () => {
    const agent = new Agent({ type: 'udp4' });
    const req = request({ hostname: '127.0.0.1', port: f.port, pathname: `/api/v1/${TOKEN}/attributes`, method: 'GET', observe: true, agent });
    const res = await new Promise<ObserveReadStream>((resolve, reject) => {
      req.on('response', (r: IncomingMessage) => resolve(r as unknown as ObserveReadStream));
      req.on('error', reject);
      req.end();
    });
    const seen: unknown[] = [JSON.parse(res.payload.toString())];
    res.on('data', (chunk: Buffer) => seen.push(JSON.parse(chunk.toString())));
    assert.equal(res.code, '2.05');
    assert.deepEqual(seen[0], { color: 'red' });
    await f.core.attributes.save(dev, 'SHARED_SCOPE', { color: 'blue', size: 2 });
    await eventually(() => seen.some((s) => JSON.stringify(s) === '{"color":"blue","size":2}'), 'update notification');
    await f.core.attributes.delete(dev, 'SHARED_SCOPE', ['size']);
    await eventually(() => seen.some((s) => JSON.stringify(s) === '{"deleted":["size"]}'), 'deletion notification');
    res.close(); // node-coap's agent closes itself once its last observation ends
  });

  test('/rpc: 2.03 first, then a server RPC as 2.05 {"id","method","params"}; POST /rpc/{id} answers it', async () => {
    const agent = new Agent({ type: 'udp4' });
    const req = request({ hostname: '127.0.0.1', port: f.port, pathname: `/api/v1/${TOKEN}/rpc`, method: 'GET', observe: true, agent });
    const rpcs: { id: number; method: string; params: unknown }[] = [];
    const res = await new Promise<ObserveReadStream>((resolve) => {
      req.on('response', (r: IncomingMessage) => resolve(r as unknown as ObserveReadStream));
      req.end();
    });
    assert.equal(res.code, '2.03');
    res.on('data', (chunk: Buffer) => {
      if (chunk.length > 0) rpcs.push(JSON.parse(chunk.toString()));
    });
    const sent = f.core.rpc.send(dev, { method: 'setLed', params: { on: true }, oneway: false, timeout: 10000 });
    await eventually(() => rpcs.length === 1, 'rpc notification');
    assert.equal(rpcs[0].method, 'setLed');
    assert.deepEqual(rpcs[0].params, { on: true });
    const reply = await coapRequest(f.port, `/api/v1/${TOKEN}/rpc/${rpcs[0].id}`, { payload: '{"led":"on"}' });
    assert.equal(reply.code, '2.01');
    assert.deepEqual((await sent).response, { led: 'on' });
    res.close(); // node-coap's agent closes itself once its last observation ends
  });
});

describe('raw observers (message layer)', () => {
  freshServer();
  test('CON registration: piggybacked initial with Observe; CON notification ACKed resolves the RPC delivery', async () => {
    const raw = await new RawClient().open();
    try {
      const token = Buffer.from('a1a1', 'hex');
      raw.send(f.port, observeGet('rpc', token, 100));
      const first = await nextPacket(raw);
      assert.deepEqual([first.code, first.ack, first.messageId], ['2.03', true, 100]);
      assert.ok(observeOf(first), 'Observe option on the registration answer');
      const sent = f.core.rpc.send(dev, { method: 'oneway', params: {}, oneway: true, timeout: 10000 });
      const n = await nextPacket(raw);
      assert.deepEqual([n.code, n.confirmable, n.token.toString('hex')], ['2.05', true, 'a1a1']);
      assert.equal(JSON.parse(n.payload.toString()).method, 'oneway');
      raw.send(f.port, generate({ code: '0.00', messageId: n.messageId, ack: true }));
      await sent; // oneway: resolves once delivered, i.e. ACKed
      // RFC 7641 §3.6: GET with Observe=1 and the same token cancels.
      raw.send(f.port, observeGet('rpc', token, 101, 1));
      const cancel = await nextPacket(raw);
      assert.equal(cancel.code, '2.02');
      await eventually(() => f.transport.observerCount() === 0, 'observer removed');
    } finally {
      await raw.close();
    }
  });

  test('Observe=1 on /attributes cancels and answers as a plain GET', async () => {
    const raw = await new RawClient().open();
    try {
      raw.send(f.port, observeGet('attributes', Buffer.from([7]), 200));
      assert.equal((await nextPacket(raw)).code, '2.05');
      assert.equal(f.transport.observerCount(), 1);
      raw.send(f.port, observeGet('attributes', Buffer.from([7]), 201, 1));
      const answer = await nextPacket(raw);
      assert.equal(answer.code, '2.05');
      assert.equal(observeOf(answer), undefined);
      assert.ok(JSON.parse(answer.payload.toString()).shared);
      assert.equal(f.transport.observerCount(), 0);
    } finally {
      await raw.close();
    }
  });

  test('RST in reply to a NON notification cancels the observation (RFC 7641 §3.6)', async () => {
    const raw = await new RawClient().open();
    try {
      raw.send(f.port, observeGet('attributes', Buffer.from([8]), 300, 0, false));
      const first = await nextPacket(raw);
      assert.deepEqual([first.code, first.confirmable, first.ack], ['2.05', false, false]);
      await f.core.attributes.save(dev, 'SHARED_SCOPE', { rst: 1 });
      const n = await nextPacket(raw);
      assert.equal(n.confirmable, false);
      assert.ok(n.options.some((o) => o.name === 'Max-Age'), 'NON notifications carry Max-Age (their time-to-live)');
      raw.send(f.port, generate({ code: '0.00', messageId: n.messageId, reset: true }));
      await eventually(() => f.transport.observerCount() === 0, 'observer removed after RST');
    } finally {
      await raw.close();
    }
  });

  test('re-registering with a new token ends the old observation with 2.02 (spec §8.4)', async () => {
    const raw = await new RawClient().open();
    try {
      raw.send(f.port, observeGet('attributes', Buffer.from([1]), 400));
      await nextPacket(raw);
      raw.send(f.port, observeGet('attributes', Buffer.from([2]), 401));
      const packets = [await nextPacket(raw), await nextPacket(raw)];
      const ended = packets.find((p) => p.token.equals(Buffer.from([1])));
      assert.equal(ended?.code, '2.02');
      assert.equal(observeOf(ended!), undefined);
      assert.equal(f.transport.observerCount(), 1);
      raw.send(f.port, observeGet('attributes', Buffer.from([2]), 402, 1));
      await nextPacket(raw);
      assert.equal(f.transport.observerCount(), 0);
    } finally {
      await raw.close();
    }
  });

  test('a CON observer that never ACKs is dropped after the retransmissions (RFC 7641 §4.5)', async () => {
    const raw = await new RawClient().open();
    raw.send(f.port, observeGet('attributes', Buffer.from([9]), 500));
    await nextPacket(raw);
    await f.core.attributes.save(dev, 'SHARED_SCOPE', { vanish: 1 });
    await eventually(() => f.transport.observerCount() === 0, 'silent CON observer dropped');
    await raw.close();
  });

  test('a NON observer expires when its time-to-live runs out', async () => {
    const raw = await new RawClient().open();
    raw.send(f.port, observeGet('attributes', Buffer.from([10]), 600, 0, false));
    await nextPacket(raw);
    assert.equal(f.transport.observerCount(), 1);
    await raw.close(); // the device vanishes without a word
    await eventually(() => f.transport.observerCount() === 0, 'NON observer expired', 400, 25);
  });

  test('observe on a bad token is 4.01 without Observe', async () => {
    const raw = await new RawClient().open();
    try {
      raw.send(f.port, generate({ code: 'GET', messageId: 700, token: Buffer.from([3]), confirmable: true, options: [observeOpt(0), ...pathOptions('api', 'v1', 'bad', 'attributes')] }));
      const a = await nextPacket(raw);
      assert.deepEqual([a.code, observeOf(a), a.payload.toString()], ['4.01', undefined, 'Invalid access token']);
    } finally {
      await raw.close();
    }
  });
});

describe('coap-client-notls observe', () => {
  freshServer();
  test('-s: prints the initial notification and an update', { skip: coapClientSkip() }, async () => {
    const run = coapClient(['-m', 'get', '-s', '4', f.url(`/api/v1/${TOKEN}/attributes`)]);
    await eventually(() => f.transport.observerCount() === 1, 'libcoap registered');
    await f.core.attributes.save(dev, 'SHARED_SCOPE', { fromLibcoap: 'yes' });
    const out = await run;
    // libcoap prints each notification's payload back to back, without a separator.
    const lines = out.stdout.match(/\{[^{}]*\}/g) ?? [];
    assert.ok(lines.length >= 2, out.stdout);
    assert.ok(JSON.parse(lines[0]!).color, 'initial = current shared attributes');
    assert.ok(lines.some((l) => l.includes('"fromLibcoap":"yes"')), out.stdout);
    await eventually(() => f.transport.observerCount() === 0, 'libcoap deregistered or its observation ended');
  });
});
