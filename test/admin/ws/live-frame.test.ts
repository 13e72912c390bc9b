/**
 * Live-update frames rendered straight to JSON text (src/admin/ws/live-frame.ts LiveFrame, as UTF-8 bytes) and gathered across commits
 * (`updateIntervalMs`, src/admin/ws/subscription.ts): the text equals what `JSON.stringify` gives for the reply
 * object, and gathering keeps every point in order.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { MemoryBus } from '../../../src/bus/memory-bus.ts';
import { LiveInterest } from '../../../src/core/live-interest.ts';
import { LiveUpdates } from '../../../src/core/live-updates.ts';
import { LiveFrame } from '../../../src/admin/ws/live-frame.ts';
import { ReplyData, type V1Reply } from '../../../src/admin/ws/render.ts';
import { LiveSubscription } from '../../../src/admin/ws/subscription.ts';
import { poll } from './ws-client.ts';

const quiet = { info() {}, warn() {}, error() {}, debug() {} };

describe('LiveFrame', () => {
  it('renders the same text as JSON.stringify of the reply object, values as strings, keys sorted', () => {
    const frame = new LiveFrame();
    const reply = new ReplyData();
    const points: [string, number, string, string | number | boolean][] = [
      ['temperature', 10, 'DOUBLE', 21.5],
      ['b', 11, 'DOUBLE', 1e7],
      ['b', 12, 'DOUBLE', -0],
      ['ok', 13, 'BOOLEAN', false],
      ['big', 14, 'LONG', '9223372036854775807'],
      ['n', 15, 'LONG', 40],
      ['s', 16, 'STRING', 'quote " back \\ tab \t é 😀 \u2028'],
      ['j', 17, 'JSON', '{"a":[1,2]}'],
      ['Z', 18, 'STRING', ''],
      ['key with "quote"', 19, 'STRING', 'x'],
      ['temperature', 20, 'DOUBLE', 0.0001],
    ];
    for (const [key, ts, type, value] of points) {
      frame.addFlat(key, ts, type, value);
      reply.addFlat(key, ts, type, value);
    }
    frame.addDeleted('gone');
    reply.addPair('gone', [0, '']);
    frame.add('attr', 30, { type: 'STRING', value: 'ünï' });
    reply.add('attr', 30, { type: 'STRING', value: 'ünï' });
    frame.add('missing', 31, null);
    reply.add('missing', 31, null);
    assert.equal(frame.size, points.length + 3);
    const text = frame.text(7);
    assert.equal(text, JSON.stringify(reply.reply(7)));
    const parsed = JSON.parse(text) as V1Reply;
    assert.deepEqual(parsed.data!.temperature, [[10, '21.5'], [20, '1.0E-4']]);
    assert.deepEqual(parsed.data!.b, [[11, '1.0E7'], [12, '-0.0']]);
    assert.equal(parsed.latestValues.temperature, 20);
    assert.ok(frame.empty, 'rendering empties the frame for the next one');
  });

  it('reuses its buffers frame after frame: each frame holds only its own pairs, however large the one before', () => {
    const frame = new LiveFrame();
    for (const count of [3, 20_000, 1, 5000, 2]) {
      const reply = new ReplyData();
      for (let i = 0; i < count; i++) {
        const key = i % 2 === 0 ? 'temperature' : 'clé "ü"';
        frame.addFlat(key, 1_764_870_000_000 + i, 'DOUBLE', i / 4);
        reply.addFlat(key, 1_764_870_000_000 + i, 'DOUBLE', i / 4);
      }
      const bytes = frame.bytes(count);
      assert.ok(Buffer.isBuffer(bytes));
      assert.equal(bytes.toString('utf8'), JSON.stringify(reply.reply(count)), `a frame of ${count} pairs`);
    }
    assert.equal(frame.text(9), '{"subscriptionId":9,"errorCode":0,"errorMsg":null,"data":{},"latestValues":{}}');
  });

  it('orders keys as Java\'s sorted map does, digits-only keys included', () => {
    const frame = new LiveFrame();
    const reply = new ReplyData();
    for (const key of ['b', '10', '9', '__proto__', 'a']) {
      frame.addFlat(key, 1, 'LONG', 1);
      reply.addFlat(key, 1, 'LONG', 1);
    }
    const text = frame.text(1);
    assert.match(text, /"data":\{"10":\[\[1,"1"\]\],"9":\[\[1,"1"\]\],"__proto__":\[\[1,"1"\]\],"a":\[\[1,"1"\]\],"b":\[\[1,"1"\]\]\}/);
    // The first message of a subscription (ReplyData) is rendered in the same order, __proto__ kept.
    assert.equal(reply.text(1), text);
  });
});

describe('a subscription with updateIntervalMs', () => {
  it('sends the first change at once and gathers the changes that follow into one frame, every point in order', async () => {
    const bus = new MemoryBus();
    const interest = new LiveInterest(bus, quiet);
    await interest.start();
    const live = new LiveUpdates(bus, interest, quiet);
    const replies: V1Reply[] = [];
    const sub = new LiveSubscription(1, { kind: 'TIMESERIES', target: { deviceId: 'd', keys: undefined }, latestOnly: false }, (r) => replies.push(typeof r === 'string' || Buffer.isBuffer(r) ? JSON.parse(String(r)) : r), { overflow() {}, maxHeld: 100, updateIntervalMs: 1000 });
    await sub.start(live, async () => new ReplyData());
    const commit = (n: number) => ({ telemetry: [{ deviceId: 'd', ts: 1000 + n, key: 'n', value: { type: 'LONG' as const, value: n } }, { deviceId: 'd', ts: 1000 + n, key: 'm', value: { type: 'LONG' as const, value: -n } }], attributes: [] });
    // Twenty commits in one go: the bus delivers them all (microtasks) before any timer can run.
    for (let n = 1; n <= 20; n++) live.committed(commit(n));
    await poll(() => (replies.length === 3 ? true : undefined), 20_000, 'the snapshot and two frames');
    assert.deepEqual(replies[1].data, { m: [[1001, '-1']], n: [[1001, '1']] }, 'the first change went out alone');
    const expected = (key: string, sign: number) => Array.from({ length: 19 }, (_, i) => [1002 + i, String(sign * (i + 2))]);
    assert.deepEqual(replies[2].data, { m: expected('m', -1), n: expected('n', 1) }, 'the other nineteen in one frame, in order');
    assert.deepEqual(replies[2].latestValues, { m: 1020, n: 1020 });
    // Nothing more is sent: no frame is left behind or repeated.
    live.committed(commit(21));
    await poll(() => (replies.length === 4 ? true : undefined), 20_000, 'the next change');
    assert.deepEqual(replies[3].data, { m: [[1021, '-21']], n: [[1021, '21']] });
    sub.stop();
    await live.close();
  });

  it('with 0 sends one frame per commit (ThingsBoard)', async () => {
    const bus = new MemoryBus();
    const interest = new LiveInterest(bus, quiet);
    await interest.start();
    const live = new LiveUpdates(bus, interest, quiet);
    const replies: V1Reply[] = [];
    const sub = new LiveSubscription(1, { kind: 'TIMESERIES', target: { deviceId: 'd', keys: undefined }, latestOnly: true }, (r) => replies.push(typeof r === 'string' || Buffer.isBuffer(r) ? JSON.parse(String(r)) : r), { overflow() {}, maxHeld: 100, updateIntervalMs: 0 });
    await sub.start(live, async () => new ReplyData());
    for (let n = 1; n <= 5; n++) live.committed({ telemetry: [{ deviceId: 'd', ts: n, key: 'n', value: { type: 'LONG', value: n } }], attributes: [] });
    await poll(() => (replies.length === 6 ? true : undefined), 20_000, 'five frames');
    assert.deepEqual(replies.slice(1).map((r) => r.data), [1, 2, 3, 4, 5].map((n) => ({ n: [[n, String(n)]] })));
    sub.stop();
    await live.close();
  });
});
