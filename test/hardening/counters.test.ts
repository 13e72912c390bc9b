/**
 * Sliding-window counters (issue 7 §1): the shared contract on the memory counter and on Redis (a real redis-server,
 * so two nodes counting through it see one count), the memory counter's bound, and limit-string parsing.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { MemoryRateCounter, parseRateLimit, RateLimitSyntaxError } from '../../src/core/throttle/index.ts';
import { RedisRateCounter } from '../../src/core/throttle/redis-counter.ts';
import { skipUnlessRedis, startRedis, type TestRedis } from '../support/redis.ts';
import { counterContract } from './counter-contract.ts';

describe('MemoryRateCounter', () => {
  counterContract(() => new MemoryRateCounter());

  it('holds at most maxKeys keys, dropping the least recently touched', async () => {
    const c = new MemoryRateCounter(3);
    for (const k of ['a', 'b', 'c']) await c.hit(k, 1000, 0);
    await c.hit('a', 1000, 1); // a is now the most recent
    await c.hit('d', 1000, 2);
    assert.equal(c.size, 3);
    assert.equal(await c.peek('b', 1000, 3), 0, 'b was the least recently touched');
    assert.equal(await c.peek('a', 1000, 3), 2);
  });
});

describe('RedisRateCounter on a real redis-server', { skip: skipUnlessRedis() }, () => {
  let redis: TestRedis;
  const counters: RedisRateCounter[] = [];
  before(async () => {
    redis = await startRedis();
  });
  after(async () => {
    await Promise.all(counters.map((c) => c.close()));
    await redis.stop();
  });
  const open = (prefix: string) => {
    const c = RedisRateCounter.open(redis.url, { prefix });
    counters.push(c);
    return c;
  };

  counterContract(() => open(`test:${randomUUID()}:`));

  it('gives two nodes one count (limits hold per cluster)', async () => {
    const prefix = `shared:${randomUUID()}:`;
    const [nodeA, nodeB] = [open(prefix), open(prefix)];
    await nodeA.hit('10.0.0.1', 60_000, 120_000);
    await nodeB.hit('10.0.0.1', 60_000, 120_001);
    assert.equal(await nodeA.hit('10.0.0.1', 60_000, 120_002), 3);
  });
});

describe('rate limit strings ("capacity:seconds", spec §10)', () => {
  it('parses one or several pairs', () => {
    assert.deepEqual(parseRateLimit('10:60'), [{ capacity: 10, windowMs: 60_000 }]);
    assert.deepEqual(parseRateLimit(' 20:1, 600:60 '), [
      { capacity: 20, windowMs: 1000 },
      { capacity: 600, windowMs: 60_000 },
    ]);
  });

  it('reads empty and "0" as no limit', () => {
    assert.deepEqual(parseRateLimit(''), []);
    assert.deepEqual(parseRateLimit('0'), []);
  });

  it('rejects anything else, naming the expected form', () => {
    for (const bad of ['10', '10:', ':60', 'a:b', '10:60;5:1', '0:60', '10:0', '-1:5']) {
      assert.throws(() => parseRateLimit(bad), RateLimitSyntaxError, bad);
    }
  });
});
