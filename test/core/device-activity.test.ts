/** DeviceActivityTracker over a real SQLite store: coalescing, the write gap, and later-time-wins across writers. */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { DeviceActivityTracker } from '../../src/core/device-activity.ts';
import { createTestCore, silentLogger, type TestCore } from '../support/core.ts';

describe('device activity', () => {
  let t: TestCore;
  before(async () => {
    t = await createTestCore();
  });
  after(() => t.close());

  it('writes connects at once, activity at most once per gap, and never moves a time backwards', async () => {
    const tracker = new DeviceActivityTracker(t.store, { inactivityTimeoutMs: 600_000, flushMs: 3_600_000, refreshMs: 3_600_000, writeGapMs: 3_600_000 }, silentLogger);
    const other = new DeviceActivityTracker(t.store, { inactivityTimeoutMs: 600_000, flushMs: 3_600_000, refreshMs: 3_600_000 }, silentLogger);
    try {
      tracker.touched('dev-1');
      await tracker.flush();
      const first = (await t.store.getDeviceActivity('dev-1'))!;
      assert.equal(typeof first.lastActivityTime, 'number');
      assert.equal(first.lastConnectTime, null);

      await new Promise((r) => setTimeout(r, 5));
      tracker.touched('dev-1');
      await tracker.flush();
      assert.equal((await t.store.getDeviceActivity('dev-1'))!.lastActivityTime, first.lastActivityTime, 'activity alone within the gap is not written');

      tracker.connected('dev-1');
      await tracker.flush();
      const connected = (await t.store.getDeviceActivity('dev-1'))!;
      assert.ok(connected.lastConnectTime! >= first.lastActivityTime!);
      assert.ok(connected.lastActivityTime! >= connected.lastConnectTime!);

      // another node writes an older report: stored times stay the later ones
      await t.store.recordDeviceActivity([{ deviceId: 'dev-1', lastActivityTime: 1, lastConnectTime: 1, lastDisconnectTime: 5 }]);
      const merged = (await t.store.getDeviceActivity('dev-1'))!;
      assert.equal(merged.lastActivityTime, connected.lastActivityTime);
      assert.equal(merged.lastConnectTime, connected.lastConnectTime);
      assert.equal(merged.lastDisconnectTime, 5, 'a time never written before is taken');

      other.disconnected('dev-1');
      await other.flush();
      assert.ok((await t.store.getDeviceActivity('dev-1'))!.lastDisconnectTime! >= connected.lastConnectTime!);
      assert.equal(tracker.isActive(Date.now() - 1000), true);
      assert.equal(tracker.isActive(Date.now() - 700_000), false);
      assert.equal(tracker.isActive(null), false);
    } finally {
      await tracker.close();
      await other.close();
    }
  });
});
