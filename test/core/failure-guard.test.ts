/** The failure guard blocks at its capacity even when the failures straddle a boundary of the counter's fixed windows. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { MemoryRateCounter } from '../../src/core/throttle/counter.ts';
import { FailureGuard } from '../../src/core/throttle/failure-guard.ts';

test('ten failures within a second block a 10:60 guard, whichever fixed 60 s window each falls in', async () => {
  for (const start of [0, 59_500, 59_990, 120_000 - 300]) {
    const clock = { now: 1_800_000_000_000 - (1_800_000_000_000 % 60_000) + start };
    const guard = new FailureGuard('test', [{ capacity: 10, windowMs: 60_000 }], new MemoryRateCounter(), () => clock.now);
    for (let i = 0; i < 10; i++) {
      assert.equal(guard.blockedMs('source'), 0, `not blocked before failure ${i + 1} (start ${start})`);
      await guard.failed('source');
      clock.now += 100;
    }
    assert.ok(guard.blockedMs('source') > 0, `blocked after ten failures (start ${start})`);
  }
});
