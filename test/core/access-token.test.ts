/** Generated access tokens (core/ids.ts newAccessToken): 20 alphanumerics, a clock part that groups them, a random rest. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { newAccessToken } from '../../src/core/ids.ts';

const TICK_MS = 4;
const WRAP_TICKS = 62 ** 3;

test('a generated token is 20 alphanumeric characters (spec §6)', () => {
  for (let i = 0; i < 1000; i++) assert.match(newAccessToken(), /^[A-Za-z0-9]{20}$/);
});

test('tokens made in the same tick share their first 3 characters and differ in the other 17', () => {
  const now = 1_764_900_000_000;
  const tokens = Array.from({ length: 10_000 }, () => newAccessToken(now));
  assert.equal(new Set(tokens.map((t) => t.slice(0, 3))).size, 1);
  assert.equal(new Set(tokens.map((t) => t.slice(3))).size, tokens.length, 'no two random parts alike');
  // Every character shows up at every random position (10,000 draws of 62 values: missing one is ~1e-66 likely).
  for (let position = 3; position < 20; position++) assert.equal(new Set(tokens.map((t) => t[position])).size, 62, `position ${position}`);
});

test('the clock part moves on every tick, in ASCII order, and wraps to 000', () => {
  const start = 1_764_900_000_000 - (1_764_900_000_000 % TICK_MS);
  let previous = newAccessToken(start).slice(0, 3);
  for (let tick = 1; tick < 5000; tick++) {
    const prefix = newAccessToken(start + tick * TICK_MS).slice(0, 3);
    if (prefix !== '000') assert.ok(prefix > previous, `${prefix} after ${previous}`);
    previous = prefix;
  }
  assert.equal(newAccessToken(WRAP_TICKS * TICK_MS).slice(0, 3), '000');
  assert.equal(newAccessToken(WRAP_TICKS * TICK_MS - 1).slice(0, 3), 'zzz');
  assert.equal(newAccessToken(start + 1).slice(0, 3), newAccessToken(start + TICK_MS - 1).slice(0, 3), 'one tick is 4 ms');
});
