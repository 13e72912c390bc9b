import { test } from 'node:test';
import assert from 'node:assert/strict';
import { chunkRows, foldPoints } from '../../src/store/kysely/sqlite-upsert.ts';
import { openSqliteStore } from '../../src/store/sqlite.ts';
import type { TsPoint } from '../../src/core/model.ts';

const pt = (deviceId: string, key: string, ts: number, value: number): TsPoint => ({ deviceId, key, ts, value: { type: 'LONG', value } });

test('foldPoints: a repeat of its series previous timestamp replaces that row; rows come grouped by series in arrival order; the newest point per series is its latest', () => {
  // Devices sending without `ts` often repeat one millisecond: those rows fold. A repeat after another timestamp
  // stays a row of its own (SQLite upserts the rows in order, so the later one still wins). Rows are grouped by series
  // (first appearance order), each series' rows in arrival order, so a direct ts_kv upsert fills pages in turn.
  const points = [pt('a', 't', 5, 1), pt('a', 'h', 5, 2), pt('b', 't', 5, 3), pt('a', 't', 5, 4), pt('a', 't', 6, 5), pt('a', 't', 5, 6), pt('a', 't', 6, 7), pt('a', 't', 6, 8)];
  const { rows, latest } = foldPoints(points);
  assert.deepEqual(rows.map((p) => p.value.value), [4, 5, 6, 8, 2, 3]);
  assert.deepEqual(latest.map((p) => p.value.value), [8, 2, 3]);
});

test('chunkRows: statements of power-of-two sizes up to 512 that add up to the batch, so few statement shapes', () => {
  const shapes = new Set<number>();
  for (let count = 1; count <= 3000; count++) {
    let sum = 0;
    for (let n = 0; sum < count; sum += n) {
      n = chunkRows(count - sum);
      assert.ok(n >= 1 && n <= 512 && (n & (n - 1)) === 0, `chunk of ${n}`);
      shapes.add(n);
    }
    assert.equal(sum, count);
  }
  assert.equal(shapes.size, 10);
});

test('a batch of any size stores every row (statements of several shapes in one batch)', async () => {
  const store = await openSqliteStore(':memory:', { synchronous: 'normal' });
  try {
    const deviceId = 'device-of-many-chunks'; // ts_kv rows need no device row
    const points: TsPoint[] = [];
    for (let ts = 1; ts <= 1337; ts++) points.push(pt(deviceId, 'k', ts, ts * 2));
    await store.writeBatch({ telemetry: points, attributes: [] });
    const rows = await store.getTimeseries({ deviceId, keys: ['k'], startTs: 0, endTs: 10_000, limit: 5000, orderBy: 'ASC' });
    const series = rows.get('k')!;
    assert.equal(series.length, 1337);
    assert.deepEqual(series.map((r) => r.ts), points.map((p) => p.ts));
    assert.deepEqual(series.at(-1)!.value, { type: 'LONG', value: 2674 });
  } finally {
    await store.close();
  }
});
