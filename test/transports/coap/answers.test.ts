/**
 * How the transport answers (RFC 7252 §5.2): small answers it sends itself, piggybacked in the ACK or as a NON,
 * byte for byte as node-coap would; late answers as node-coap's separate response (empty ACK, then a CON); large
 * answers through node-coap's Block2. Also: every request the socket holds reaches one group commit (not libuv's 32
 * per event-loop turn), the socket's receive buffer, and access tokens kept out of the logs.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { createSocket } from 'node:dgram';
import { generate, parse, type ParsedPacket } from 'coap-packet';
import { loadConfig, ConfigError } from '../../../src/config.ts';
import { ExchangeCache } from '../../../src/transports/coap/exchanges.ts';
import { startCoapTransport } from '../../../src/transports/coap/index.ts';
import type { WriteBatch } from '../../../src/core/ports/store.ts';
import { createTestCore } from '../../support/core.ts';
import { T, device, provisionProfile, RawClient, startCoap, type CoapFixture } from './support.ts';

let f: CoapFixture;
let deviceId: string;
const TOKEN = 'answers-token';
const PIGGYBACK_MS = 150;

before(async () => {
  f = await startCoap({ piggybackReplyMs: PIGGYBACK_MS });
  const p = await provisionProfile(f, 'answers', 'DISABLED', null, null);
  deviceId = (await device(f, 'answers device', p.id, TOKEN)).id;
});
after(() => f.close());

const uri = (...segments: string[]) => segments.map((s) => ({ name: 'Uri-Path' as const, value: Buffer.from(s) }));
const telemetry = (messageId: number, token: Buffer, payload: string, confirmable = true) =>
  generate({ code: 'POST', messageId, token, confirmable, options: uri('api', 'v1', TOKEN, 'telemetry'), payload: Buffer.from(payload) });
const latest = async (key: string) => (await f.core.timeseries.latest(deviceId, [key]))[key]?.[0]?.value.value;

async function withClient<R>(run: (raw: RawClient) => Promise<R>): Promise<R> {
  const raw = await new RawClient().open();
  try {
    return await run(raw);
  } finally {
    await raw.close();
  }
}

async function nextPacket(raw: RawClient, ms = 5000): Promise<ParsedPacket & { bytes: Buffer }> {
  const bytes = await raw.next(ms);
  assert.ok(bytes, 'an answer arrives');
  return { ...parse(bytes), bytes };
}

/** Delays every commit by `ms` (fault injection on the store); returns the undo. */
function slowCommits(ms: number): () => void {
  const store = f.store as unknown as { writeBatch(batch: WriteBatch): Promise<void> };
  const original = store.writeBatch;
  store.writeBatch = async function (this: unknown, batch: WriteBatch) {
    await new Promise((r) => setTimeout(r, ms));
    return original.call(this, batch);
  };
  return () => {
    store.writeBatch = original;
  };
}

describe('RFC 7252 §5.2.1 answers the transport sends itself', () => {
  test('a CON telemetry request gets exactly ACK 2.01 with its Message ID and token, nothing else', async () => {
    await withClient(async (raw) => {
      const token = Buffer.from([1, 2, 3, 4]);
      raw.send(f.port, telemetry(0x1234, token, '{"exact":1}'));
      const answer = await nextPacket(raw);
      assert.deepEqual(answer.bytes, Buffer.from([0x64, 0x41, 0x12, 0x34, 1, 2, 3, 4]));
      assert.equal(await latest('exact'), 1); // committed before the answer
    });
  });
  test('a NON request gets a NON with its Message ID', async () => {
    await withClient(async (raw) => {
      raw.send(f.port, telemetry(0x2345, Buffer.from([9]), '{"nonAnswer":1}', false));
      assert.deepEqual((await nextPacket(raw)).bytes, Buffer.from([0x51, 0x41, 0x23, 0x45, 9]));
    });
  });
  test('an answer with a diagnostic is byte for byte what node-coap renders for the same request', async () => {
    await withClient(async (raw) => {
      // GET on telemetry is 4.00 with a diagnostic. Without Observe the transport answers it itself; with Observe=1
      // (deregistration, processed as a plain GET) the request goes through node-coap first and node-coap renders.
      const get = (token: Buffer, observe?: Buffer) =>
        generate({ code: 'GET', messageId: 0x3456, token, confirmable: true, options: [...(observe ? [{ name: 'Observe' as const, value: observe }] : []), ...uri('api', 'v1', TOKEN, 'telemetry')] });
      raw.send(f.port, get(Buffer.from([0xa1, 0xa2])));
      const own = await nextPacket(raw);
      raw.send(f.port, get(Buffer.from([0xb1, 0xb2]), Buffer.from([1])));
      const nodeCoap = await nextPacket(raw);
      assert.equal(own.code, '4.00');
      assert.ok(own.payload.length > 0, 'diagnostic payload');
      assert.deepEqual(own.bytes.subarray(0, 4), nodeCoap.bytes.subarray(0, 4));
      assert.deepEqual(own.bytes.subarray(6), nodeCoap.bytes.subarray(6), 'options and payload equal after the tokens');
    });
  });
  test('a large answer (1024 bytes or more) goes through node-coap as Block2, first block of 1024 bytes', async () => {
    const d = await f.core.devices.get(T, deviceId);
    await f.core.attributes.save(d, 'SHARED_SCOPE', { big: 'B'.repeat(2000) });
    await withClient(async (raw) => {
      raw.send(f.port, generate({ code: 'GET', messageId: 0x4567, token: Buffer.from([7]), confirmable: true, options: [...uri('api', 'v1', TOKEN, 'attributes'), { name: 'Uri-Query', value: Buffer.from('sharedKeys=big') }] }));
      const first = await nextPacket(raw);
      assert.deepEqual([first.code, first.ack, first.messageId], ['2.05', true, 0x4567]);
      const block2 = first.options.find((o) => o.name === 'Block2');
      assert.ok(block2, 'Block2 option');
      assert.equal(block2.value.readUIntBE(0, block2.value.length), 0x0e, 'NUM 0, M 1, SZX 6');
      assert.equal(first.payload.length, 1024);
    });
  });
});

describe('RFC 7252 §5.2.2 separate responses when the answer is late', () => {
  test('empty ACK when the piggyback window closes, a duplicate is acknowledged again, then a CON 2.01 after the commit', async () => {
    const undo = slowCommits(PIGGYBACK_MS * 3);
    try {
      await withClient(async (raw) => {
        const token = Buffer.from([0x5e, 0x9a]);
        const request = telemetry(0x5678, token, '{"late":1}');
        const sent = Date.now();
        raw.send(f.port, request);
        const ack = await nextPacket(raw);
        assert.deepEqual(ack.bytes, Buffer.from([0x60, 0x00, 0x56, 0x78]), 'empty ACK of the request');
        assert.ok(Date.now() - sent >= PIGGYBACK_MS - 20, 'not before the piggyback window closed');
        raw.send(f.port, request); // a retransmission while the commit is still running
        const again = await nextPacket(raw);
        assert.deepEqual(again.bytes, Buffer.from([0x60, 0x00, 0x56, 0x78]), 'the duplicate is acknowledged again');
        const response = await nextPacket(raw);
        assert.deepEqual([response.code, response.confirmable, response.token], ['2.01', true, token]);
        assert.notEqual(response.messageId, 0x5678);
        assert.equal(await latest('late'), 1, 'committed before the 2.01');
        raw.send(f.port, generate({ code: '0.00', messageId: response.messageId, ack: true, confirmable: false, token: Buffer.alloc(0) }));
        raw.send(f.port, request); // after the answer: acknowledged, not processed again
        assert.deepEqual((await nextPacket(raw)).bytes, Buffer.from([0x60, 0x00, 0x56, 0x78]));
      });
    } finally {
      undo();
    }
  });
  test('a NON request is answered whenever its commit is done, as a NON', async () => {
    const undo = slowCommits(PIGGYBACK_MS * 2);
    try {
      await withClient(async (raw) => {
        raw.send(f.port, telemetry(0x6789, Buffer.from([3]), '{"lateNon":1}', false));
        assert.deepEqual((await nextPacket(raw)).bytes, Buffer.from([0x51, 0x41, 0x67, 0x89, 3]));
      });
    } finally {
      undo();
    }
  });
});

describe('every request the socket holds reaches one group commit', () => {
  test('128 CON telemetry requests queued at once are committed in at most two transactions (libuv reads 32 per turn)', async () => {
    await withClient(async (raw) => {
      const before = f.core.committer.stats.batches;
      // All 128 sends run before the event loop polls the server's socket again, so they wait there together.
      for (let i = 0; i < 128; i++) raw.send(f.port, telemetry(0x7000 + i, Buffer.from([0x70, i]), `{"ts":${1_700_000_000_000 + i},"values":{"burst":${i}}}`));
      const codes = new Set<string>();
      for (let i = 0; i < 128; i++) codes.add((await nextPacket(raw)).code);
      assert.deepEqual([...codes], ['2.01']);
      const commits = f.core.committer.stats.batches - before;
      assert.ok(commits <= 2, `${commits} commits for 128 requests`);
      const stored = await f.core.timeseries.get(deviceId, { keys: ['burst'], startTs: 0, endTs: Date.now(), limit: 1000 });
      assert.equal(stored.burst?.length, 128);
    });
  });
});

describe('socket receive buffer (coapReceiveBufferBytes)', () => {
  const rmemMax = (() => {
    try {
      return Number(readFileSync('/proc/sys/net/core/rmem_max', 'utf8'));
    } catch {
      return 0;
    }
  })();
  const defaultSize = async () => {
    const s = createSocket('udp4');
    await new Promise<void>((r) => s.bind(0, '127.0.0.1', () => r()));
    const size = s.getRecvBufferSize();
    s.close();
    return size;
  };
  const start = async (receiveBufferBytes: number | undefined) => {
    const t = await createTestCore();
    const lines: { obj: Record<string, unknown>; msg?: string }[] = [];
    const record = (obj: object, msg?: string) => lines.push({ obj: obj as Record<string, unknown>, msg });
    const logger = { info: record, warn: record, error: record, debug: record };
    const transport = await startCoapTransport({ core: t.core, config: loadConfig({ env: {} }), logger, host: '127.0.0.1', port: 0, options: { receiveBufferBytes } });
    return { transport, lines, close: async () => (await transport.close(), await t.close()) };
  };

  test('defaults to 4 MiB, read from FLEETGATE_COAP_RECEIVE_BUFFER_BYTES, validated', () => {
    assert.equal(loadConfig({ env: {} }).coapReceiveBufferBytes, 4 * 1024 * 1024);
    assert.equal(loadConfig({ env: { FLEETGATE_COAP_RECEIVE_BUFFER_BYTES: '1048576' } }).coapReceiveBufferBytes, 1048576);
    assert.throws(() => loadConfig({ env: { FLEETGATE_COAP_RECEIVE_BUFFER_BYTES: 'lots' } }), ConfigError);
  });
  test('the socket gets the size asked for when the kernel allows it, and logs what it got', { skip: rmemMax < 1048576 && 'net.core.rmem_max below 1 MiB' }, async () => {
    const s = await start(1048576);
    try {
      assert.ok(s.transport.receiveBufferBytes >= 1048576, `${s.transport.receiveBufferBytes}`);
      assert.ok(s.transport.receiveBufferBytes > (await defaultSize()));
      const listen = s.lines.find((l) => l.obj.event === 'listen');
      assert.equal(listen?.obj.receiveBufferBytes, s.transport.receiveBufferBytes);
    } finally {
      await s.close();
    }
  });
  test('more than the kernel allows is capped, logged, and the transport works', async () => {
    const s = await start(2 ** 40);
    try {
      assert.ok(s.transport.receiveBufferBytes > 0);
      if (rmemMax > 0) assert.ok(s.transport.receiveBufferBytes <= 2 * rmemMax);
      assert.ok(s.lines.some((l) => /capped/.test(l.msg ?? '') && l.obj.obtained === s.transport.receiveBufferBytes));
    } finally {
      await s.close();
    }
  });
  test('0 keeps the system default', async () => {
    const s = await start(0);
    try {
      assert.equal(s.transport.receiveBufferBytes, await defaultSize());
    } finally {
      await s.close();
    }
  });
});

describe('secrets stay out of the logs', () => {
  test('an internal error on the device API logs the path without the access token, and answers 5.00', async () => {
    const t = await createTestCore();
    const logged: string[] = [];
    const record = (obj: object, msg?: string) => logged.push(`${msg} ${JSON.stringify(obj, (_k, v: unknown) => (v instanceof Error ? v.message : v))}`);
    const transport = await startCoapTransport({ core: t.core, config: loadConfig({ env: {} }), logger: { info: record, warn: record, error: record, debug: record }, host: '127.0.0.1', port: 0 });
    try {
      const p = await provisionProfile(t, 'secret', 'DISABLED', null, null);
      await device(t, 'secret device', p.id, 'very-secret-token');
      // Fault injection: storage fails with an unexpected error.
      (t.core.telemetry as unknown as { ingestJson: () => Promise<void> }).ingestJson = () => Promise.reject(new Error('disk on fire'));
      await withClient(async (raw) => {
        raw.send(transport.port, generate({ code: 'POST', messageId: 1, token: Buffer.from([1]), confirmable: true, options: uri('api', 'v1', 'very-secret-token', 'telemetry'), payload: Buffer.from('{"a":1}') }));
        assert.equal((await nextPacket(raw)).code, '5.00');
      });
      const errors = logged.filter((l) => l.includes('disk on fire'));
      assert.ok(errors.length > 0, 'the failure is logged');
      assert.ok(errors.some((l) => l.includes('/api/v1/{token}/telemetry')));
      assert.ok(!logged.some((l) => l.includes('very-secret-token')), logged.join('\n'));
    } finally {
      await transport.close();
      await t.close();
    }
  });
});

describe('ExchangeCache (RFC 7252 §4.5 duplicate detection state)', () => {
  test('entries expire after the exchange lifetime and the bound drops the oldest first', () => {
    let now = 1000;
    const cache = new ExchangeCache(3, 100, () => now);
    for (const k of ['a', 'b', 'c']) cache.begin(k);
    cache.finish('a', Buffer.from([1]));
    assert.deepEqual(cache.get('a')?.replay, Buffer.from([1]));
    cache.begin('d'); // over the bound: the oldest goes
    assert.equal(cache.get('a'), undefined);
    assert.equal(cache.size, 3);
    now += 50;
    cache.begin('e'); // bound again: 'b' goes
    assert.deepEqual(['b', 'c', 'd', 'e'].map((k) => cache.get(k) !== undefined), [false, true, true, true]);
    now += 60; // c and d expired (added at 1000), e (1050) lives
    assert.equal(cache.get('c'), undefined);
    cache.begin('f');
    assert.equal(cache.size, 2, 'expired entries pruned when a new one comes');
    assert.deepEqual(['e', 'f'].map((k) => cache.get(k)?.state), ['pending', 'pending']);
    cache.markSeparate('e');
    assert.equal(cache.get('e')?.separate, true);
  });
});
