/** The per-device message rate: token buckets per rule, refused messages cost nothing, a bounded device table. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { DeviceRateLimiter } from '../../src/core/throttle/device-rate.ts';
import { parseRateLimit } from '../../src/core/throttle/limits.ts';

function limiter(rule: string, maxDevices?: number) {
  const clock = { now: 1_000_000 };
  return { clock, rate: new DeviceRateLimiter(parseRateLimit(rule), () => clock.now, maxDevices) };
}

test('a bucket passes its capacity, then says how long until the next message may pass; it refills with time', () => {
  const { clock, rate } = limiter('3:1');
  assert.deepEqual([rate.take('a'), rate.take('a'), rate.take('a')], [0, 0, 0]);
  assert.equal(rate.take('a'), 334); // one token per 333.3 ms
  assert.equal(rate.take('b'), 0, 'devices have buckets of their own');
  clock.now += 334;
  assert.equal(rate.take('a'), 0);
  assert.ok(rate.take('a') > 0);
});

test('the strictest rule decides, and a refused message takes no token from any bucket', () => {
  const { clock, rate } = limiter('100:1,2:60');
  assert.equal(rate.take('a'), 0);
  assert.equal(rate.take('a'), 0);
  assert.equal(rate.take('a'), 30_000); // the 2-per-minute rule
  for (let i = 0; i < 50; i++) rate.take('a'); // all refused: the per-second bucket keeps its tokens
  clock.now += 30_000;
  assert.equal(rate.take('a'), 0);
});

test('no rules: every message passes', () => {
  const { rate } = limiter('');
  assert.equal(rate.enabled, false);
  for (let i = 0; i < 10; i++) assert.equal(rate.take('a'), 0);
});

test('the device table is bounded; the device seen longest ago (to the second) is forgotten first', () => {
  const { clock, rate } = limiter('1:60', 3);
  rate.take('a');
  rate.take('b');
  rate.take('c');
  clock.now += 2000;
  assert.ok(rate.take('a') > 0, 'a is still limited, and is now the most recently seen');
  rate.take('d'); // evicts b, the least recently seen
  assert.ok(rate.take('a') > 0, 'a kept its bucket');
  assert.ok(rate.take('c') > 0, 'c kept its bucket');
  assert.equal(rate.take('b'), 0, 'b was forgotten: a fresh bucket');
});
