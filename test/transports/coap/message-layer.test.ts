/**
 * RFC 7252 message layer: duplicate detection, CoAP ping, and bad input (random datagrams, truncated options,
 * oversized payloads, a CON flood) while the server keeps serving others.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { generate, parse } from 'coap-packet';
import { coapRequest, device, provisionProfile, RawClient, startCoap, type CoapFixture } from './support.ts';

let f: CoapFixture;
let deviceId: string;
const TOKEN = 'msg-layer-token';

before(async () => {
  f = await startCoap({ maxPayload: 8192 });
  const p = await provisionProfile(f, 'ml', 'DISABLED', null, null);
  deviceId = (await device(f, 'ml device', p.id, TOKEN)).id;
});
after(() => f.close());

const telemetry = (messageId: number, payload: string, confirmable = true, token = Buffer.from([0xab, messageId & 0xff])) =>
  generate({ code: 'POST', messageId, token, confirmable, options: ['api', 'v1', TOKEN, 'telemetry'].map((s) => ({ name: 'Uri-Path' as const, value: Buffer.from(s) })), payload: Buffer.from(payload) });
const countOf = async (key: string) => (await f.core.timeseries.get(deviceId, { keys: [key], startTs: 0, endTs: Date.now() + 1000, limit: 100000 }))[key]?.length ?? 0;
const stillServing = async () => assert.equal((await coapRequest(f.port, `/api/v1/${TOKEN}/telemetry`, { payload: '{"alive":1}' })).code, '2.01');

describe('RFC 7252 §4.5 duplicate detection', () => {
  test('the same CON sent twice at once is stored once, and both copies get the same answer', async () => {
    const raw = await new RawClient().open();
    try {
      const msg = telemetry(1001, '{"dup":1}');
      raw.send(f.port, msg);
      raw.send(f.port, msg);
      const first = parse((await raw.next())!);
      assert.deepEqual([first.code, first.messageId, first.ack], ['2.01', 1001, true]);
      raw.send(f.port, msg); // a retransmission after the answer: replayed from the cache, not processed
      const again = parse((await raw.next())!);
      assert.deepEqual([again.code, again.messageId], ['2.01', 1001]);
      assert.equal(await countOf('dup'), 1);
    } finally {
      await raw.close();
    }
  });
  test('a repeated NON is processed once', async () => {
    const raw = await new RawClient().open();
    try {
      const msg = telemetry(2002, '{"dupNon":1}', false);
      for (let i = 0; i < 3; i++) raw.send(f.port, msg);
      assert.equal(parse((await raw.next())!).code, '2.01');
      await stillServing();
      assert.equal(await countOf('dupNon'), 1);
    } finally {
      await raw.close();
    }
  });
  test('the same Message ID from another endpoint is a different message', async () => {
    const a = await new RawClient().open();
    const b = await new RawClient().open();
    try {
      // Explicit timestamps: two points in the same millisecond would be one row, whatever the transport did.
      const ts = Date.now() - 1000;
      a.send(f.port, telemetry(3003, `{"ts":${ts},"values":{"twoEndpoints":1}}`));
      assert.equal(parse((await a.next())!).code, '2.01');
      b.send(f.port, telemetry(3003, `{"ts":${ts + 1},"values":{"twoEndpoints":2}}`));
      assert.equal(parse((await b.next())!).code, '2.01');
      assert.equal(await countOf('twoEndpoints'), 2);
    } finally {
      await a.close();
      await b.close();
    }
  });
});

describe('RFC 7252 §4.2/§4.3 empty and unprocessable messages', () => {
  test('CoAP ping (empty CON) gets RST with the same Message ID', async () => {
    const raw = await new RawClient().open();
    try {
      raw.send(f.port, Buffer.from([0x40, 0x00, 0x12, 0x34]));
      const rst = parse((await raw.next())!);
      assert.deepEqual([rst.reset, rst.messageId], [true, 0x1234]);
    } finally {
      await raw.close();
    }
  });
  test('a CON with truncated options is rejected with RST; the server keeps serving', async () => {
    const raw = await new RawClient().open();
    try {
      // Option delta 11 (Uri-Path) claiming 13+ bytes with nothing after it.
      raw.send(f.port, Buffer.from([0x41, 0x02, 0x55, 0x66, 0xaa, 0xbd]));
      const rst = parse((await raw.next())!);
      assert.deepEqual([rst.reset, rst.messageId], [true, 0x5566]);
      await stillServing();
    } finally {
      await raw.close();
    }
  });
  test('FETCH (0.05) is 4.05, a response code sent as a request is ignored with RST', async () => {
    const raw = await new RawClient().open();
    try {
      raw.send(f.port, generate({ code: '0.05', messageId: 77, confirmable: true, token: Buffer.from([1]) }));
      assert.equal(parse((await raw.next())!).code, '4.05');
      raw.send(f.port, generate({ code: '2.05', messageId: 78, confirmable: true, token: Buffer.from([1]) }));
      assert.equal(parse((await raw.next())!).reset, true);
    } finally {
      await raw.close();
    }
  });
});

describe('bad input: the server keeps serving others', () => {
  test('2,000 random datagrams', async () => {
    const raw = await new RawClient().open();
    try {
      for (let i = 0; i < 2000; i++) raw.send(f.port, randomBytes(1 + (i % 300)));
      await stillServing();
    } finally {
      await raw.close();
    }
  });
  test('oversized payloads: 4.13; a forged Block1 NUM far beyond the limit: 4.13 without allocating', async () => {
    const raw = await new RawClient().open();
    try {
      raw.send(f.port, generate({ code: 'POST', messageId: 9, confirmable: true, token: Buffer.from([9]), options: [{ name: 'Uri-Path', value: Buffer.from('api') }], payload: Buffer.alloc(60000) }, 65535));
      assert.equal(parse((await raw.next())!).code, '4.13');
      // Block1 NUM = 2^20 - 1, SZX 6 (1024 bytes), M = 0: node-coap alone would allocate ~1 GiB.
      raw.send(f.port, generate({ code: 'POST', messageId: 10, confirmable: true, token: Buffer.from([10]), options: [{ name: 'Block1', value: Buffer.from([0xff, 0xff, 0xf6]) }], payload: Buffer.from('x') }));
      assert.equal(parse((await raw.next())!).code, '4.13');
      await stillServing();
    } finally {
      await raw.close();
    }
  });
  test('a Block1 transfer with a gap is 4.08 Request Entity Incomplete', async () => {
    const raw = await new RawClient().open();
    try {
      const opts = (num: number, more: boolean) => [
        ...['api', 'v1', TOKEN, 'telemetry'].map((s) => ({ name: 'Uri-Path' as const, value: Buffer.from(s) })),
        { name: 'Block1' as const, value: Buffer.from([(num << 4) | (more ? 8 : 0) | 0]) },
      ];
      raw.send(f.port, generate({ code: 'POST', messageId: 20, confirmable: true, token: Buffer.from([20]), options: opts(0, true), payload: Buffer.alloc(16, 0x20) }));
      assert.equal(parse((await raw.next())!).code, '2.31');
      raw.send(f.port, generate({ code: 'POST', messageId: 21, confirmable: true, token: Buffer.from([21]), options: opts(2, false), payload: Buffer.from('{}') }));
      assert.equal(parse((await raw.next())!).code, '4.08');
    } finally {
      await raw.close();
    }
  });
  test('a flood of 3,000 CON telemetry requests from one client: every stored value was acknowledged, others still served', async () => {
    const raw = await new RawClient().open();
    try {
      const N = 3000;
      for (let i = 0; i < N; i++) raw.send(f.port, telemetry(10000 + i, `{"ts":${1_600_000_000_000 + i},"values":{"flood":${i}}}`, true, Buffer.from([0xf1, i >> 8, i & 0xff])));
      await stillServing();
      const acked = new Set<number>();
      for (let m = await raw.next(3000); m; m = await raw.next(3000)) {
        const p = parse(m);
        if (p.code === '2.01') acked.add(p.messageId);
        if (acked.size === N) break;
      }
      // UDP may drop datagrams under a flood; what must hold: every acknowledged value is stored (each has its own ts).
      const stored = await countOf('flood');
      assert.ok(stored <= N, `stored ${stored}`);
      assert.ok(acked.size <= stored, `acked ${acked.size} <= stored ${stored}`);
    } finally {
      await raw.close();
    }
  });
});
