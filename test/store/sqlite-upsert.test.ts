import { test } from 'node:test';
import assert from 'node:assert/strict';
import { foldPoints } from '../../src/store/kysely/sqlite-upsert.ts';
import type { TsPoint } from '../../src/core/model.ts';

const pt = (deviceId: string, key: string, ts: number, value: number): TsPoint => ({ deviceId, key, ts, value: { type: 'LONG', value } });

test('foldPoints: a repeat of its series previous timestamp replaces that row; the newest point per series is its latest', () => {
  // Devices sending without `ts` often repeat one millisecond: those rows fold. A repeat after another timestamp
  // stays a row of its own (SQLite upserts the rows in order, so the later one still wins).
  const points = [pt('a', 't', 5, 1), pt('a', 'h', 5, 2), pt('b', 't', 5, 3), pt('a', 't', 5, 4), pt('a', 't', 6, 5), pt('a', 't', 5, 6), pt('a', 't', 6, 7), pt('a', 't', 6, 8)];
  const { rows, latest } = foldPoints(points);
  assert.deepEqual(rows.map((p) => p.value.value), [4, 2, 3, 5, 6, 8]);
  assert.deepEqual(latest.map((p) => p.value.value), [8, 2, 3]);
});
