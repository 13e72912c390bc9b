/**
 * Telemetry values at the edges of their types, written as dense batches (the shape SQLite's chunked layout packs:
 * issue 17, kysely/ts-kv-chunk-format.ts) and read back through the Store port: what the all-rows layout gives is
 * the contract, whatever the layout. The cases are the ones the telemetry model (telemetry-model.test.ts) found
 * differing on the first chunked tree, kept as plain checks: a DOUBLE -0 reads as 0; a DOUBLE sum over ±Infinity is
 * ±Infinity, and over both SQLite's NULL (PostgreSQL's NaN); a bucket whose only DOUBLE is Infinity has it as min and
 * max; rows summing to NULL beside chunk points stay NULL; LONGs at the int64 ends stay exact, and so do their sums past
 * the int64 range.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { KvValue } from '../../src/core/model.ts';
import type { Store } from '../../src/core/ports/store.ts';
import { openPostgresStore } from '../../src/store/postgres.ts';
import { skipUnlessPostgres, startPostgres, type TestPostgres } from '../support/postgres.ts';
import { openSqliteStore } from '../../src/store/sqlite.ts';

const DEVICE = 'edge-values-device';
const D = (value: number): KvValue => ({ type: 'DOUBLE', value });
/** `n` points of one series at ts 1000, 1001, … (one dense batch's series). */
const series = (key: string, n: number, value: (i: number) => KvValue) => Array.from({ length: n }, (_, i) => ({ deviceId: DEVICE, key, ts: 1000 + i, value: value(i) }));

async function write(store: Store, points: ReturnType<typeof series>): Promise<void> {
  await store.writeBatch({ telemetry: points, attributes: [] });
}

async function bucketsOf(store: Store, key: string, buckets: [number, number][]) {
  return (await store.aggregateTimeseries({ deviceId: DEVICE, keys: [key], buckets })).get(key) ?? [];
}

/** The checks, on a fresh store; `dialect` picks what a sum over +Infinity and -Infinity is (NULL or NaN). */
function edgeCases(open: () => Promise<{ store: Store; close(): Promise<void> }>, dialect: 'sqlite' | 'postgres'): void {
  const bothInfinities = dialect === 'sqlite' ? null : NaN;

  test('a DOUBLE -0 reads as 0, in values and in minima', async () => {
    const { store, close } = await open();
    try {
      await write(store, series('zero', 32, (i) => D(i === 0 ? -0 : 1)));
      const [point] = (await store.getTimeseries({ deviceId: DEVICE, keys: ['zero'], startTs: 1000, endTs: 1000, limit: 1, orderBy: 'ASC' })).get('zero')!;
      assert.ok(Object.is(point.value.value, 0), `got ${Object.is(point.value.value, -0) ? '-0' : point.value.value}`);
      const [bucket] = await bucketsOf(store, 'zero', [[1000, 1001]]);
      assert.ok(Object.is(bucket.minDouble, 0) && Object.is(bucket.maxDouble, 0), `min ${bucket.minDouble}, max ${bucket.maxDouble}`);
    } finally {
      await close();
    }
  });

  test('DOUBLE sums over ±Infinity, and minima and maxima of buckets holding only one', async () => {
    const { store, close } = await open();
    try {
      await write(store, [...series('inf', 32, (i) => D(i === 0 ? Infinity : 1)), ...series('both', 32, (i) => D(i === 0 ? Infinity : i === 1 ? -Infinity : 1))]);
      assert.deepEqual((await bucketsOf(store, 'inf', [[0, 5000]])).map((b) => b.sumDouble), [Infinity]);
      assert.deepEqual((await bucketsOf(store, 'both', [[0, 5000]])).map((b) => b.sumDouble), [bothInfinities]);
      const extremes = (await bucketsOf(store, 'both', [[1000, 1001], [1001, 1002]])).map((b) => [b.countDouble, b.minDouble, b.maxDouble]);
      assert.deepEqual(extremes, [
        [1, Infinity, Infinity],
        [1, -Infinity, -Infinity],
      ]);
    } finally {
      await close();
    }
  });

  test('rows summing to NULL (+Infinity and -Infinity) beside a dense series of the key stay NULL', async () => {
    const { store, close } = await open();
    try {
      await write(store, series('mixed', 32, () => ({ type: 'BOOLEAN', value: true })));
      await write(store, [
        { deviceId: DEVICE, key: 'mixed', ts: 2000, value: D(Infinity) },
        { deviceId: DEVICE, key: 'mixed', ts: 2001, value: D(-Infinity) },
      ]);
      const [bucket] = await bucketsOf(store, 'mixed', [[0, 5000]]);
      assert.deepEqual([bucket.countBool, bucket.countDouble, bucket.sumDouble], [32, 2, bothInfinities]);
    } finally {
      await close();
    }
  });

  test('LONGs at the int64 ends and beyond 2^53 stay exact; their sums are the number of the exact sum', async () => {
    const { store, close } = await open();
    try {
      const ends = [2n ** 63n - 1n, -(2n ** 63n), 2n ** 53n + 1n, -(2n ** 53n) - 3n];
      await write(store, series('long', 32, (i) => ({ type: 'LONG', value: i < ends.length ? ends[i] : 2n ** 53n + BigInt(i) })));
      const got = (await store.getTimeseries({ deviceId: DEVICE, keys: ['long'], startTs: 0, endTs: 5000, limit: 100, orderBy: 'ASC' })).get('long')!;
      assert.deepEqual(
        got.slice(0, 5).map((p) => p.value.value),
        [...ends, 2n ** 53n + 4n],
      );
      // Without the two ends (their sum with the rest would overflow int64): 28 values of 2^53 + i and two more.
      const rest = [2n ** 53n + 1n, -(2n ** 53n) - 3n, ...Array.from({ length: 28 }, (_, i) => 2n ** 53n + BigInt(i + 4))];
      const [bucket] = await bucketsOf(store, 'long', [[1002, 5000]]);
      assert.deepEqual(
        [bucket.countLong, bucket.sumLong, bucket.minLong, bucket.maxLong],
        [30, Number(rest.reduce((s, v) => s + v)), Number(-(2n ** 53n) - 3n), Number(2n ** 53n + 31n)],
      );
    } finally {
      await close();
    }
  });

  test('LONG sums past the int64 range are the number of the exact sum, as rows and as chunks (SQLite answered "integer overflow")', async () => {
    const { store, close } = await open();
    try {
      const big = 2n ** 62n;
      // Rows: one point a batch (SQLite stages such batches, then merges them into ts_kv rows). Chunks: one dense batch.
      for (let i = 0; i < 6; i++) await write(store, [{ deviceId: DEVICE, key: 'rows', ts: 1000 + i, value: { type: 'LONG', value: big } }]);
      await write(store, series('chunk', 32, () => ({ type: 'LONG', value: big })));
      await write(store, [{ deviceId: DEVICE, key: 'chunk', ts: 999, value: { type: 'LONG', value: -big } }]);
      const [rows] = await bucketsOf(store, 'rows', [[0, 5000]]);
      assert.deepEqual([rows.countLong, rows.sumLong, rows.maxLong], [6, Number(6n * big), Number(big)]);
      const [chunk] = await bucketsOf(store, 'chunk', [[0, 5000]]);
      assert.deepEqual([chunk.countLong, chunk.sumLong, chunk.minLong], [33, Number(31n * big), Number(-big)]);
    } finally {
      await close();
    }
  });
}

/** A store on a fresh SQLite file, its writer thread on or off; `close` also removes the file's directory. */
const sqlite = (writerThread: boolean) => async () => {
  const dir = mkdtempSync(join(tmpdir(), 'fleetgate-edge-values-'));
  const store = await openSqliteStore(join(dir, 'db.sqlite'), { synchronous: 'normal', writerThread });
  return { store, close: async () => void (await store.close(), rmSync(dir, { recursive: true, force: true })) };
};

describe('telemetry edge values: SQLite, writer thread', () => edgeCases(sqlite(true), 'sqlite'));
describe('telemetry edge values: SQLite, in process', () => edgeCases(sqlite(false), 'sqlite'));

describe('telemetry edge values: PostgreSQL', { skip: skipUnlessPostgres() }, () => {
  let server: TestPostgres;
  before(async () => {
    server = await startPostgres();
  });
  after(() => server?.stop());
  edgeCases(async () => {
    const store = await openPostgresStore(await server.createDatabase());
    return { store, close: () => store.close() };
  }, 'postgres');
});
