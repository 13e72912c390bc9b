/**
 * RFC 7641 §4.5: a CON observer that hears nothing is sent a CON notification of the current state every
 * `checkIntervalMs` and dropped when it does not ACK; §4.5.2: one outstanding CON notification per client, later
 * ones wait in order. Raw datagrams.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { generate, parse, type ParsedPacket } from 'coap-packet';
import type { Device } from '../../../src/core/model.ts';
import { device, eventually, provisionProfile, RawClient, startCoap, type CoapFixture } from './support.ts';

let f: CoapFixture;
let dev: Device;
const TOKEN = 'liveness-token';

const path = (feature: string) => ['api', 'v1', TOKEN, feature].map((s) => ({ name: 'Uri-Path' as const, value: Buffer.from(s) }));
const register = (feature: string, token: number, messageId: number, confirmable = true) =>
  generate({ code: 'GET', messageId, token: Buffer.from([token]), confirmable, options: [{ name: 'Observe', value: Buffer.alloc(0) }, ...path(feature)] });
const ack = (p: ParsedPacket) => generate({ code: '0.00', messageId: p.messageId, ack: true });
async function next(raw: RawClient): Promise<ParsedPacket> {
  const m = await raw.next();
  assert.ok(m, 'a datagram arrived');
  return parse(m);
}

describe('RFC 7641 §4.5 liveness check of quiet CON observers', () => {
  before(async () => {
    // Check every 300 ms; 4 transmissions 40 ms apart and doubling before a silent observer is dropped.
    f = await startCoap({ observe: { ackTimeoutMs: 40, maxRetransmit: 3, nonObserverTtlMs: 60_000, checkIntervalMs: 300 } });
    const p = await provisionProfile(f, 'live', 'DISABLED', null, null);
    dev = await device(f, 'liveness', p.id, TOKEN);
    await f.core.attributes.save(dev, 'SHARED_SCOPE', { mode: 'eco' });
  });
  after(() => f.close());

  test('/attributes: the check is a CON 2.05 of the current shared attributes; ACKed it keeps, silent it drops', async () => {
    const raw = await new RawClient().open();
    try {
      raw.send(f.port, register('attributes', 1, 1));
      const initial = await next(raw);
      assert.deepEqual([initial.code, initial.ack], ['2.05', true]);
      let previous = -1;
      for (let round = 0; round < 2; round++) {
        let check = await next(raw);
        for (let i = 0; i < 5 && check.messageId === previous; i++) check = await next(raw); // a late retransmission
        previous = check.messageId;
        assert.deepEqual([check.code, check.confirmable, JSON.parse(check.payload.toString())], ['2.05', true, { mode: 'eco' }]);
        assert.ok(check.options.some((o) => o.name === 'Observe'), 'the check is a notification');
        raw.send(f.port, ack(check));
        assert.equal(f.transport.observerCount(), 1, 'an acknowledged check keeps the observer');
      }
      // Now the client stops acknowledging: the next check is retransmitted, then the observer is dropped.
      await eventually(() => f.transport.observerCount() === 0, 'silent CON observer dropped', 400, 25);
    } finally {
      await raw.close();
    }
  });

  test('/rpc: the check is a CON 2.03 (no RPC pending); a silent client is dropped', async () => {
    const raw = await new RawClient().open();
    try {
      raw.send(f.port, register('rpc', 2, 10));
      assert.equal((await next(raw)).code, '2.03');
      const check = await next(raw);
      assert.deepEqual([check.code, check.confirmable, check.payload.length], ['2.03', true, 0]);
      await eventually(() => f.transport.observerCount() === 0, 'silent rpc observer dropped', 400, 25);
    } finally {
      await raw.close();
    }
  });

  test('NON observers are not checked this way (their time-to-live covers them)', async () => {
    const raw = await new RawClient().open();
    try {
      raw.send(f.port, register('attributes', 3, 20, false));
      assert.equal((await next(raw)).code, '2.05');
      // A CON observer on another socket gets its check; by then the NON one has been sent nothing.
      const other = await new RawClient().open();
      other.send(f.port, register('attributes', 4, 21));
      await next(other);
      const check = await next(other);
      assert.equal(check.confirmable, true);
      await other.close();
      assert.equal(await raw.next(0), undefined, 'nothing was sent to the NON observer');
    } finally {
      await raw.close();
    }
  });
});

describe('RFC 7641 §4.5.2 one outstanding CON notification per client', () => {
  before(async () => {
    f = await startCoap({ observe: { ackTimeoutMs: 150, maxRetransmit: 4, nonObserverTtlMs: 60_000 } });
    const p = await provisionProfile(f, 'lane', 'DISABLED', null, null);
    dev = await device(f, 'lane', p.id, TOKEN);
  });
  after(() => f.close());

  test('updates wait for the ACK of the outstanding notification and arrive in order, across resources', async () => {
    const raw = await new RawClient().open();
    try {
      raw.send(f.port, register('attributes', 5, 30));
      await next(raw);
      raw.send(f.port, register('rpc', 6, 31));
      await next(raw);
      await f.core.attributes.save(dev, 'SHARED_SCOPE', { step: 1 });
      const first = await next(raw);
      assert.deepEqual(JSON.parse(first.payload.toString()), { step: 1 });
      await f.core.attributes.save(dev, 'SHARED_SCOPE', { step: 2 });
      const rpc = f.core.rpc.send(dev, { method: 'afterTwo', params: {}, oneway: true, timeout: 10000 });
      // Unacknowledged, the first notification is retransmitted; nothing newer is sent meanwhile.
      const retransmission = await next(raw);
      assert.deepEqual([retransmission.messageId, JSON.parse(retransmission.payload.toString())], [first.messageId, { step: 1 }]);
      raw.send(f.port, ack(first));
      const bodies: unknown[] = [];
      for (let i = 0; i < 10 && bodies.length < 2; i++) {
        const p = await next(raw);
        if (p.messageId === first.messageId) continue; // a retransmission already on its way
        bodies.push(JSON.parse(p.payload.toString()));
        raw.send(f.port, ack(p));
      }
      assert.deepEqual(bodies[0], { step: 2 });
      assert.equal((bodies[1] as { method: string }).method, 'afterTwo');
      await rpc;
    } finally {
      await raw.close();
    }
  });
});
