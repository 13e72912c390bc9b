/**
 * The RateCounter contract (src/core/throttle/counter.ts), run against every implementation: the memory counter
 * and the Redis counter on a real redis-server. Time is passed in, so nothing here depends on the wall clock.
 */
import assert from 'node:assert/strict';
import { it } from 'node:test';
import type { RateCounter } from '../../src/core/throttle/index.ts';

const W = 60_000;
/** A moment at the very start of a fixed window, so tests control how far into it they are. */
const T0 = 1_700_000_040_000 - (1_700_000_040_000 % W);

/** Registers the contract's cases; `counter()` gives a fresh counter (or fresh key space) per case. */
export function counterContract(counter: () => RateCounter): void {
  it('counts hits of one key within a window', async () => {
    const c = counter();
    assert.equal(await c.hit('a', W, T0), 1);
    assert.equal(await c.hit('a', W, T0 + 10), 2);
    assert.equal(await c.hit('a', W, T0 + 20, 3), 5);
    assert.equal(await c.peek('a', W, T0 + 30), 5, 'peek does not add');
  });

  it('keeps keys apart', async () => {
    const c = counter();
    await c.hit('a', W, T0);
    assert.equal(await c.hit('b', W, T0), 1);
    assert.equal(await c.peek('never-hit', W, T0), 0);
  });

  it('weights the previous window by how much of it the sliding window still covers', async () => {
    const c = counter();
    for (let i = 0; i < 10; i++) await c.hit('a', W, T0 + i);
    assert.equal(await c.peek('a', W, T0 + W), 10, 'at the start of the next window all of the previous counts');
    assert.equal(await c.peek('a', W, T0 + W + W / 4), 7.5);
    assert.equal(await c.hit('a', W, T0 + W + W / 2), 6, 'half of 10, plus this hit');
  });

  it('forgets everything after two windows', async () => {
    const c = counter();
    for (let i = 0; i < 5; i++) await c.hit('a', W, T0);
    assert.equal(await c.peek('a', W, T0 + 2 * W), 0);
    assert.equal(await c.hit('a', W, T0 + 3 * W), 1);
  });

  it('counts concurrent hits exactly (no lost update)', async () => {
    const c = counter();
    await Promise.all(Array.from({ length: 200 }, () => c.hit('burst', W, T0)));
    assert.equal(await c.peek('burst', W, T0), 200);
  });

  it('counts windows of different lengths separately for one key', async () => {
    const c = counter();
    await c.hit('k', 1000, T0);
    assert.equal(await c.peek('k', 1000, T0), 1);
    assert.equal(await c.peek('k', W, T0), 0, 'same key, another window length: its own buckets');
    assert.equal(await c.peek('k', 1000, T0), 1);
  });
}
