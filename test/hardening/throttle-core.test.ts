/**
 * The throttle inside core (src/core/throttle): per provision key across many sources, the lock-out window, failing
 * open when the counter is down, and limits that hold across two nodes sharing a real Redis.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { ProvisionRequest } from '../../src/core/api.ts';
import { MemoryRateCounter, Throttle, type RateCounter } from '../../src/core/throttle/index.ts';
import { RedisRateCounter } from '../../src/core/throttle/redis-counter.ts';
import { skipUnlessRedis, startRedis, type TestRedis } from '../support/redis.ts';
import { coreWith } from './support.ts';

const guess = (i: number): ProvisionRequest => ({ provisionDeviceKey: 'key', provisionDeviceSecret: `guess-${i}` });
const from = (address: string) => ({ transport: 'http' as const, address });

describe('throttle per provision key', () => {
  it('blocks a key guessed from many addresses, while other keys still answer', async () => {
    let now = 1_000_000;
    const t = await coreWith(new Throttle({ limits: { provisionFailuresPerSource: '3:60', provisionFailuresPerKey: '5:60' }, now: () => now }));
    try {
      for (let i = 0; i < 5; i++) assert.equal((await t.core.provisioning.provision(guess(i), from(`10.0.0.${i}`))).status, 'NOT_FOUND');
      const blocked = await t.core.provisioning.provision({ provisionDeviceKey: 'key', provisionDeviceSecret: 'secret' }, from('10.0.1.1'));
      assert.deepEqual(blocked, { status: 'FAILURE', reason: 'RATE_LIMITED', errorMsg: 'Failed to provision device!', retryAfterSeconds: 60 });
      const other = await t.core.provisioning.provision({ provisionDeviceKey: 'other-key', provisionDeviceSecret: 'x' }, from('10.0.1.1'));
      assert.equal(other.status !== 'SUCCESS' && other.reason, 'BAD_KEY_OR_SECRET');
      now += 60_000; // the block lasts one window
      assert.equal((await t.core.provisioning.provision({ provisionDeviceKey: 'key', provisionDeviceSecret: 'secret' }, from('10.0.1.1'))).status, 'SUCCESS');
    } finally {
      await t.close();
    }
  });

  it('exempts loopback from the per-source limit by default (a local reverse proxy), but not from the per-key one', async () => {
    const t = await coreWith(new Throttle({ limits: { provisionFailuresPerSource: '2:60', provisionFailuresPerKey: '6:60' } }));
    try {
      for (let i = 0; i < 6; i++) assert.equal((await t.core.provisioning.provision(guess(i), from(i % 2 ? '127.0.0.1' : '::1'))).status, 'NOT_FOUND');
      const blocked = await t.core.provisioning.provision(guess(7), from('127.0.0.1'));
      assert.equal(blocked.status !== 'SUCCESS' && blocked.reason, 'RATE_LIMITED', 'the key limit holds for everyone');
    } finally {
      await t.close();
    }
  });

  it('is off with an empty limit string', async () => {
    const t = await coreWith(new Throttle({ limits: { provisionFailuresPerSource: '', provisionFailuresPerKey: '0' } }));
    try {
      for (let i = 0; i < 30; i++) assert.equal((await t.core.provisioning.provision(guess(i), from('10.0.0.1'))).status, 'NOT_FOUND');
    } finally {
      await t.close();
    }
  });

  it('fails open when the counter is unreachable, reporting the error', async () => {
    const errors: unknown[] = [];
    const broken: RateCounter = { hit: () => Promise.reject(new Error('redis down')), peek: () => Promise.reject(new Error('redis down')), close: async () => {} };
    const t = await coreWith(new Throttle({ counter: broken, limits: { provisionFailuresPerSource: '1:60' }, onError: (err) => errors.push(err) }));
    try {
      for (let i = 0; i < 3; i++) assert.equal((await t.core.provisioning.provision(guess(i), from('10.0.0.1'))).status, 'NOT_FOUND');
      assert.ok(errors.length >= 3);
    } finally {
      await t.close();
    }
  });
});

describe('throttle across two nodes sharing Redis', { skip: skipUnlessRedis() }, () => {
  let redis: TestRedis;
  before(async () => {
    redis = await startRedis();
  });
  after(() => redis.stop());

  it('a source that failed on node A is blocked on node B after one more failure there', async () => {
    const limits = { provisionFailuresPerSource: '4:60' };
    const a = await coreWith(new Throttle({ counter: RedisRateCounter.open(redis.url), limits }));
    const b = await coreWith(new Throttle({ counter: RedisRateCounter.open(redis.url), limits }));
    try {
      for (let i = 0; i < 4; i++) await a.core.provisioning.provision(guess(i), from('192.0.2.7'));
      const onA = await a.core.provisioning.provision(guess(99), from('192.0.2.7'));
      assert.equal(onA.status !== 'SUCCESS' && onA.reason, 'RATE_LIMITED');
      const firstOnB = await b.core.provisioning.provision(guess(5), from('192.0.2.7'));
      assert.equal(firstOnB.status !== 'SUCCESS' && firstOnB.reason, 'BAD_KEY_OR_SECRET', 'B has not seen the block yet');
      const secondOnB = await b.core.provisioning.provision({ provisionDeviceKey: 'key', provisionDeviceSecret: 'secret' }, from('192.0.2.7'));
      assert.equal(secondOnB.status !== 'SUCCESS' && secondOnB.reason, 'RATE_LIMITED', 'the shared count was already past the limit');
      const otherSource = await b.core.provisioning.provision({ provisionDeviceKey: 'key', provisionDeviceSecret: 'secret' }, from('192.0.2.8'));
      assert.equal(otherSource.status, 'SUCCESS');
    } finally {
      await a.close();
      await b.close();
    }
  });

  it('device authentication failures count across nodes too', async () => {
    const limits = { authFailuresPerSource: '2:60' };
    const a = await coreWith(new Throttle({ counter: RedisRateCounter.open(redis.url, { prefix: 'auth-test:' }), limits }));
    const b = await coreWith(new Throttle({ counter: RedisRateCounter.open(redis.url, { prefix: 'auth-test:' }), limits }));
    try {
      const src = { transport: 'mqtt' as const, address: '198.51.100.1' };
      await assert.rejects(a.core.auth.byMqttCredentials('c', 'nope', undefined, src), { code: 'BAD_USERNAME_OR_PASSWORD' });
      await assert.rejects(a.core.auth.byMqttCredentials('c', 'nope', undefined, src), { code: 'BAD_USERNAME_OR_PASSWORD' });
      await assert.rejects(a.core.auth.byMqttCredentials('c', 'nope', undefined, src), { code: 'AUTH_RATE_LIMITED', retryAfterSeconds: 60 });
      assert.equal(await b.core.auth.byAccessToken('nope', undefined, src), undefined);
      await assert.rejects(b.core.auth.byAccessToken('nope', undefined, src), { code: 'AUTH_RATE_LIMITED' });
    } finally {
      await a.close();
      await b.close();
    }
  });
});

describe('MemoryRateCounter used by a Throttle', () => {
  it('keeps counts bounded however many sources fail', async () => {
    const counter = new MemoryRateCounter(1000);
    const throttle = new Throttle({ counter });
    for (let i = 0; i < 5000; i++) await throttle.authBySource.failed(`10.${i >> 16}.${(i >> 8) & 255}.${i & 255}`);
    assert.ok(counter.size <= 1000);
  });
});
