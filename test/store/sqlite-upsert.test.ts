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

test('foldPoints gives what a plain model gives when devices change the order of their keys, interleave, and send equal keys as other string objects', () => {
  // The model: series by `${device} ${key}` in first-appearance order, a point replacing its series' last row of the
  // same ts, the newest point (the later on a tie) as its latest.
  const model = (points: TsPoint[]) => {
    const series = new Map<string, { rows: TsPoint[]; latest: TsPoint }>();
    for (const p of points) {
      const id = `${p.deviceId} ${p.key}`;
      const s = series.get(id);
      if (!s) series.set(id, { rows: [p], latest: p });
      else {
        if (s.rows[s.rows.length - 1].ts === p.ts) s.rows[s.rows.length - 1] = p;
        else s.rows.push(p);
        if (s.latest.ts <= p.ts) s.latest = p;
      }
    }
    return { rows: [...series.values()].flatMap((s) => s.rows), latest: [...series.values()].map((s) => s.latest) };
  };
  let seed = 7;
  const random = (n: number) => ((seed = (seed * 1103515245 + 12345) % 2 ** 31), seed % n);
  const keys = ['t', 'h', 'p', 'q', 'r'];
  for (let round = 0; round < 200; round++) {
    const points: TsPoint[] = [];
    let value = 0;
    for (let m = 0; m < 60; m++) {
      const device = `d${random(4)}`;
      const ts = random(8);
      // Usually the same keys in the same order; sometimes another order, fewer or more keys, a key repeated.
      const order = random(4) === 0 ? keys.slice(random(3)).reverse() : keys.slice(0, 2 + random(2));
      if (random(8) === 0) order.push(order[0]);
      for (const key of order) points.push(pt(device, random(2) === 0 ? key : (' ' + key).slice(1), ts, value++));
    }
    const { rows, latest } = foldPoints(points);
    const want = model(points);
    assert.deepEqual(rows.map((p) => p.value.value), want.rows.map((p) => p.value.value), `round ${round}: rows`);
    assert.deepEqual(latest.map((p) => p.value.value), want.latest.map((p) => p.value.value), `round ${round}: latest`);
  }
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

// The ts_kv row statements: chunks off (chunkMinPoints Infinity), else these dense numeric series were chunks
// (test/store/sqlite-chunk-writes.test.ts).
const ROWS_ONLY = { chunkMinPoints: Infinity };

test('a batch of any size stores every row (statements of several shapes in one batch)', async () => {
  const store = await openSqliteStore(':memory:', { synchronous: 'normal', staging: ROWS_ONLY });
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

test('a dense batch stores each value type in its own column (statements binding only that column), and an overwrite of another type leaves the old column null', async () => {
  const store = await openSqliteStore(':memory:', { synchronous: 'normal', staging: ROWS_ONLY });
  try {
    const deviceId = 'device-of-every-type';
    const first: TsPoint['value'][] = [
      { type: 'BOOLEAN', value: true },
      { type: 'LONG', value: 9007199254740993n },
      { type: 'DOUBLE', value: 21.5 },
      { type: 'STRING', value: 'hello' },
      { type: 'JSON', value: '{"a":[1,2]}' },
    ];
    // The same ts again, each key now of a type read after its first one (values.ts fromColumns reads bool_v first):
    // a column the overwrite did not set to null would still be read.
    const second: TsPoint['value'][] = [
      { type: 'JSON', value: '[true]' },
      { type: 'STRING', value: 'was long' },
      { type: 'LONG', value: -7 },
      { type: 'DOUBLE', value: 0.25 },
      { type: 'BOOLEAN', value: false },
    ];
    const batch = (values: TsPoint['value'][]) => {
      const points: TsPoint[] = [];
      for (let k = 0; k < values.length; k++) for (let ts = 1; ts <= 40; ts++) points.push({ deviceId, key: `k${k}`, ts, value: values[k] });
      return points; // 40 rows a series: the direct path (DIRECT_ROWS_PER_SERIES)
    };
    const read = async () => {
      const keys = first.map((_, k) => `k${k}`);
      const rows = await store.getTimeseries({ deviceId, keys, startTs: 0, endTs: 100, limit: 1000, orderBy: 'ASC' });
      return keys.map((k) => rows.get(k)!);
    };
    await store.writeBatch({ telemetry: batch(first), attributes: [] });
    for (const [k, series] of (await read()).entries()) {
      assert.equal(series.length, 40);
      for (const r of series) assert.deepEqual(r.value, first[k]);
    }
    await store.writeBatch({ telemetry: batch(second), attributes: [] });
    for (const [k, series] of (await read()).entries()) {
      assert.equal(series.length, 40);
      for (const r of series) assert.deepEqual(r.value, second[k]);
    }
    const latest = await store.getLatestTimeseries(deviceId, ['k0', 'k4']);
    assert.deepEqual([latest.get('k0')!.value, latest.get('k4')!.value], [second[0], second[4]]);
  } finally {
    await store.close();
  }
});

test('a dense batch whose series mixes types keeps arrival order: the later point of a repeated ts wins', async () => {
  const store = await openSqliteStore(':memory:', { synchronous: 'normal' });
  try {
    const deviceId = 'device-of-mixed-series';
    const points: TsPoint[] = [];
    for (let ts = 1; ts <= 40; ts++) points.push({ deviceId, key: 'm', ts, value: { type: 'DOUBLE', value: ts + 0.5 } });
    // ts 3 again, now a boolean (not folded: not the series' previous ts; bool_v's statements would run before
    // dbl_v's if rows were split by column), then ts 41 a string.
    points.push({ deviceId, key: 'm', ts: 3, value: { type: 'BOOLEAN', value: false } });
    points.push({ deviceId, key: 'm', ts: 41, value: { type: 'STRING', value: 'last' } });
    await store.writeBatch({ telemetry: points, attributes: [] });
    const series = (await store.getTimeseries({ deviceId, keys: ['m'], startTs: 0, endTs: 100, limit: 1000, orderBy: 'ASC' })).get('m')!;
    assert.equal(series.length, 41);
    assert.deepEqual(series[2].value, { type: 'BOOLEAN', value: false });
    assert.deepEqual(series[3].value, { type: 'DOUBLE', value: 4.5 });
    assert.deepEqual(series[40].value, { type: 'STRING', value: 'last' });
  } finally {
    await store.close();
  }
});
