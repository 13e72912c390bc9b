import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { MemoryBus } from '../../../src/bus/memory-bus.ts';
import { LiveInterest } from '../../../src/core/live-interest.ts';
import { LiveUpdates } from '../../../src/core/live-updates.ts';
import { ReplyData, type V1Reply } from '../../../src/admin/ws/render.ts';
import { LiveSubscription } from '../../../src/admin/ws/subscription.ts';
import { poll } from './ws-client.ts';

const quiet = { info() {}, warn() {}, error() {}, debug() {} };

describe('a LATEST_TELEMETRY subscription and time-series deletes (spec §3.3)', () => {
  it('sends a deleted latest value as [0, ""] and a rewritten one as itself; both pass the filter and reset it', async () => {
    const bus = new MemoryBus();
    const interest = new LiveInterest(bus, quiet);
    await interest.start();
    const live = new LiveUpdates(bus, interest, quiet);
    const replies: V1Reply[] = [];
    const sub = new LiveSubscription(1, { kind: 'TIMESERIES', target: { deviceId: 'd', keys: undefined }, latestOnly: true }, (r) => replies.push(typeof r === 'string' || Buffer.isBuffer(r) ? JSON.parse(String(r)) : r), { overflow() {}, maxHeld: 100, updateIntervalMs: 0 });
    await sub.start(live, async () => new ReplyData());
    const point = (ts: number, key: string, value: number) => ({ telemetry: [{ deviceId: 'd', ts, key, value: { type: 'LONG' as const, value } }], attributes: [] });
    live.committed(point(100, 'k', 1));
    live.committed(point(100, 'j', 1));
    await poll(() => (replies.length === 3 ? true : undefined), 5000, 'two updates');
    live.telemetryDeleted('d', [{ key: 'k', now: null }, { key: 'j', now: { ts: 40, value: { type: 'DOUBLE', value: 2 } } }]);
    await poll(() => (replies.length === 4 ? true : undefined), 5000, 'the deletion');
    assert.deepEqual(replies[3].data, { j: [[40, '2.0']], k: [[0, '']] });
    assert.deepEqual(replies[3].latestValues, { j: 40, k: 0 });
    // The filter now starts from the new latest values: older points than before the delete pass.
    live.committed(point(50, 'k', 5));
    live.committed(point(30, 'j', 5)); // older than the rewritten latest (40): dropped
    live.committed(point(60, 'j', 6));
    await poll(() => (replies.length === 6 ? true : undefined), 5000, 'the later updates');
    assert.deepEqual(replies.slice(4).map((r) => r.data), [{ k: [[50, '5']] }, { j: [[60, '6']] }]);
    sub.stop();
    await live.close();
  });
});
