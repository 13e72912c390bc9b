import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { channels } from '../../src/core/ports/bus.ts';
import { MemoryBus } from '../../src/bus/memory-bus.ts';
import { LiveInterest } from '../../src/core/live-interest.ts';
import { livePointValue, LiveUpdates, type LiveChange } from '../../src/core/live-updates.ts';
import { until } from '../cluster/cluster-support.ts';

const quiet = { info() {}, warn() {}, error() {}, debug() {} };

describe('live interest: which devices some node watches', () => {
  it('tells other nodes when a node starts and stops watching, and a starting node learns the current set', async () => {
    const bus = new MemoryBus();
    const x = new LiveInterest(bus, quiet, { nodeId: 'x' });
    const y = new LiveInterest(bus, quiet, { nodeId: 'y' });
    await Promise.all([x.start(), y.start()]);
    assert.equal(y.empty, true);
    await x.watch('d1');
    await until('y learns d1', () => y.has('d1'));
    const z = new LiveInterest(bus, quiet, { nodeId: 'z' });
    await z.start(); // asks the others: x answers with its whole set
    await until('z learns d1', () => z.has('d1'));
    await x.unwatch('d1');
    await until('y and z forget d1', () => !y.has('d1') && !z.has('d1'));
    assert.equal(y.empty, true);
    await Promise.all([x.close(), y.close(), z.close()]);
  });

  it('forgets a node that stops refreshing (it died) after the TTL, and keeps one that refreshes', async () => {
    const bus = new MemoryBus();
    const y = new LiveInterest(bus, quiet, { nodeId: 'y', ttlMs: 300 });
    const alive = new LiveInterest(bus, quiet, { nodeId: 'alive', ttlMs: 300 });
    await Promise.all([y.start(), alive.start()]);
    await alive.watch('kept');
    // A node that announced once and then vanished without a word.
    await bus.publish(channels.liveInterest, { kind: 'live-interest', nodeId: 'dead', deviceIds: ['gone'], watching: true, full: false });
    await until('y learns both', () => y.has('gone') && y.has('kept'));
    await until('y forgets the dead node', () => !y.has('gone'), 200, 50);
    assert.equal(y.has('kept'), true);
    await Promise.all([y.close(), alive.close()]);
  });

  it('publishes committed changes only for watched devices, and delivers them with values intact', async () => {
    const bus = new MemoryBus();
    const interest = new LiveInterest(bus, quiet);
    await interest.start();
    const live = new LiveUpdates(bus, interest, quiet);
    let published = 0;
    live.onPublished = (n) => (published += n);
    const point = (deviceId: string, value: bigint) => ({ deviceId, ts: 1, key: 'k', value: { type: 'LONG' as const, value } });
    live.committed({ telemetry: [point('a', 1n)], attributes: [] });
    assert.equal(published, 0);
    const seen: LiveChange[] = [];
    const stop = await live.watch('a', (c) => seen.push(c));
    live.committed({ telemetry: [point('a', 9007199254740993n), point('b', 2n)], attributes: [{ deviceId: 'a', scope: 'CLIENT_SCOPE', ts: 5, entries: [{ key: 'fw', value: { type: 'STRING', value: '1' } }] }] });
    assert.equal(published, 1); // device b is not watched
    await until('the change arrives', () => seen.length === 1);
    assert.deepEqual(seen[0].telemetry, [1, 'k', 'LONG', '9007199254740993']);
    assert.deepEqual(livePointValue(seen[0].telemetry, 0), { type: 'LONG', value: 9007199254740993n });
    assert.deepEqual(seen[0].attributes, [{ scope: 'CLIENT_SCOPE', ts: 5, entries: [{ key: 'fw', value: { type: 'STRING', value: '1' } }] }]);
    live.telemetryDeleted('a', [{ key: 'k', now: null }, { key: 'j', now: { ts: 7, value: { type: 'DOUBLE', value: 1.5 } } }]);
    await until('the deletion arrives', () => seen.length === 2);
    assert.equal(livePointValue(seen[1].telemetry, 0), null);
    assert.deepEqual(livePointValue(seen[1].telemetry, 4), { type: 'DOUBLE', value: 1.5 });
    stop();
    live.committed({ telemetry: [point('a', 3n)], attributes: [] });
    assert.equal(published, 2);
    await live.close();
  });
});
