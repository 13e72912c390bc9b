/**
 * The node-wide budget of live update frames (`wsMaxUpdateFramesPerSecond`, src/admin/ws/frame-pacer.ts): the
 * interval of busy subscriptions stretches so that their frames stay within the budget, never below
 * `wsUpdateIntervalMs`, and comes back once they are quiet; a subscription under a stretched interval still gets
 * every point, in order.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { MemoryBus } from '../../../src/bus/memory-bus.ts';
import { LiveInterest } from '../../../src/core/live-interest.ts';
import { LiveUpdates } from '../../../src/core/live-updates.ts';
import { FramePacer } from '../../../src/admin/ws/frame-pacer.ts';
import { ReplyData, type V1Reply } from '../../../src/admin/ws/render.ts';
import { LiveSubscription } from '../../../src/admin/ws/subscription.ts';
import { poll } from './ws-client.ts';

const quiet = { info() {}, warn() {}, error() {}, debug() {} };

/** `count` subscriptions (plain objects stand in for them) each sending a frame at `now`. */
function sendAll(pacer: FramePacer, subs: object[], now: number): void {
  for (const s of subs) pacer.sent(s, now);
}

describe('FramePacer', () => {
  it('keeps the configured interval while the busy subscriptions fit the budget', () => {
    const pacer = new FramePacer(250, 1000);
    const subs = Array.from({ length: 200 }, () => ({}));
    for (let t = 0; t <= 5000; t += 250) sendAll(pacer, subs, 1_000_000 + t);
    assert.equal(pacer.intervalMs, 250, '200 subscriptions x 4 frames a second = 800 <= 1000');
  });

  it('stretches the interval so that the busy subscriptions stay within the budget, and comes back when they stop', () => {
    const pacer = new FramePacer(250, 1000);
    const subs = Array.from({ length: 3000 }, () => ({}));
    let t = 1_000_000;
    for (; t <= 1_010_000; t += pacer.intervalMs) sendAll(pacer, subs, t);
    assert.equal(pacer.intervalMs, 3000, '3,000 busy subscriptions under 1,000 frames a second: one frame each every 3 s');
    // Only ten stay busy: the next window sees ten senders and the interval returns to the floor.
    for (const end = t + 10_000; t <= end; t += pacer.intervalMs) sendAll(pacer, subs.slice(0, 10), t);
    assert.equal(pacer.intervalMs, 250);
    // After a quiet spell longer than a window, the first frame finds nobody busy.
    sendAll(pacer, subs, t);
    pacer.sent(subs[0], t + 60_000);
    assert.equal(pacer.intervalMs, 250);
  });

  it('does not count stopped subscriptions: sessions replaced within one window are not counted twice', () => {
    const pacer = new FramePacer(250, 1000);
    const first = Array.from({ length: 1000 }, () => ({}));
    const second = Array.from({ length: 1000 }, () => ({}));
    let t = 1_000_000;
    sendAll(pacer, first, t);
    t += 1000;
    sendAll(pacer, first, t); // the first window closed with 1,000 busy: one frame a second each
    assert.equal(pacer.intervalMs, 1000);
    for (const s of first) pacer.forget(s); // their sessions close; others open in the same window
    sendAll(pacer, second, t + 500);
    sendAll(pacer, second, t + 1500);
    assert.equal(pacer.intervalMs, 1000, '1,000 busy, not 2,000');
  });

  it('does nothing with a budget of 0 or an interval of 0 (a frame per commit, as ThingsBoard)', () => {
    for (const pacer of [new FramePacer(250, 0), new FramePacer(0, 1000)]) {
      const floor = pacer.intervalMs;
      const subs = Array.from({ length: 5000 }, () => ({}));
      for (let t = 0; t < 10_000; t += 100) sendAll(pacer, subs, 1_000_000 + t);
      assert.equal(pacer.intervalMs, floor);
    }
  });
});

describe('a subscription under a stretched interval', () => {
  it('gathers more commits into each frame and keeps every point, in order', async () => {
    const bus = new MemoryBus();
    const interest = new LiveInterest(bus, quiet);
    await interest.start();
    const live = new LiveUpdates(bus, interest, quiet);
    const pacer = new FramePacer(10, 1000);
    // 2,000 other subscriptions were busy in the last window: each may send one frame every 2 s.
    const others = Array.from({ length: 2000 }, () => ({}));
    sendAll(pacer, others, Date.now() - 1500);
    sendAll(pacer, others, Date.now());
    assert.equal(pacer.intervalMs, 2000);
    const replies: V1Reply[] = [];
    const sub = new LiveSubscription(1, { kind: 'TIMESERIES', target: { deviceId: 'd', keys: undefined }, latestOnly: true }, (r) => replies.push(typeof r === 'string' || Buffer.isBuffer(r) ? JSON.parse(String(r)) : r), { overflow() {}, maxHeld: 100, updateIntervalMs: 10, pacer });
    await sub.start(live, async () => new ReplyData());
    const commit = (n: number) => live.committed({ telemetry: [{ deviceId: 'd', ts: 1000 + n, key: 'n', value: { type: 'LONG', value: n } }], attributes: [] });
    commit(1);
    await poll(() => (replies.length === 2 ? true : undefined), 20_000, 'the first change, at once');
    const firstAt = Date.now();
    // Commits spread over more than the configured 10 ms: they still wait for the stretched interval.
    for (let n = 2; n <= 6; n++) {
      commit(n);
      await new Promise((r) => setTimeout(r, 30));
    }
    await poll(() => (replies.length === 3 ? true : undefined), 20_000, 'the gathered frame');
    assert.ok(Date.now() - firstAt >= 1500, 'the second frame waited for the stretched interval, not 10 ms');
    assert.deepEqual(replies[2].data, { n: [2, 3, 4, 5, 6].map((n) => [1000 + n, String(n)]) }, 'every point, in order');
    sub.stop();
    await live.close();
  });
});
