/**
 * The write side of SQLite's chunked telemetry layout (src/store/kysely/sqlite-chunk-writes.ts) on real database
 * files, with the writer thread running every group commit and with it off: which series become ts_kv_chunk rows,
 * rule 2 (a chunk deletes its series' older ts_kv rows at its timestamps), the last write of a ts winning inside a
 * batch, exact 64-bit LONGs, latest values as the row layout gives them, and device deletion. Stored points are read
 * with SQL over a connection of its own (ts_kv_chunk by the rules of ts-kv-chunk-format.ts, then ts_kv, then staged
 * rows), not through the store's reads.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import BetterSqlite3 from 'better-sqlite3';
import type { KvValue, TsPoint } from '../../src/core/model.ts';
import { CHUNK_MIN_POINTS, chunkOps } from '../../src/store/kysely/sqlite-chunk-writes.ts';
import { DIRECT_ROWS_PER_SERIES } from '../../src/store/kysely/sqlite-staging.ts';
import { chunkValue, ChunkType, MAX_CHUNK_SPAN_MS, unpackChunk } from '../../src/store/kysely/ts-kv-chunk-format.ts';
import { fromColumns } from '../../src/store/kysely/values.ts';
import { openSqliteStore, type SqliteStoreOptions } from '../../src/store/sqlite.ts';
import type { KyselyStore } from '../../src/store/kysely/kysely-store.ts';
import type { WriterOp } from '../../src/store/sqlite-writer-thread.ts';
import { seedDevice } from './fixtures.ts';

const dir = mkdtempSync(join(tmpdir(), 'fleetgate-chunk-writes-'));
after(() => rmSync(dir, { recursive: true, force: true }));
let files = 0;

const dbl = (value: number): KvValue => ({ type: 'DOUBLE', value });
const long = (value: number | bigint): KvValue => ({ type: 'LONG', value });
const bool = (value: boolean): KvValue => ({ type: 'BOOLEAN', value });
const str = (value: string): KvValue => ({ type: 'STRING', value });
const pt = (deviceId: string, key: string, ts: number, value: KvValue): TsPoint => ({ deviceId, key, ts, value });
/** `n` points of one series at ts from, from + 1, ...; value i of `value(i)`. */
const run = (deviceId: string, key: string, from: number, n: number, value: (i: number) => KvValue) => Array.from({ length: n }, (_, i) => pt(deviceId, key, from + i, value(i)));

interface Layout {
  chunks: { deviceId: string; key: string; firstTs: number; lastTs: number; type: number; points: number }[];
  rows: number;
  staged: number;
}

/** What the file holds, read over a connection of its own (as another process would). */
function layout(file: string): Layout {
  const db = new BetterSqlite3(file, { readonly: true });
  db.defaultSafeIntegers(true);
  try {
    const chunks = (db.prepare('select device_id, key, first_ts, last_ts, type, points from ts_kv_chunk order by seq').all() as Record<string, any>[]).map((c) => ({
      deviceId: c.device_id as string,
      key: c.key as string,
      firstTs: Number(c.first_ts),
      lastTs: Number(c.last_ts),
      type: Number(c.type),
      points: (c.points as Buffer).length / 16,
    }));
    const count = (table: string) => Number(db.prepare(`select count(*) from ${table}`).pluck().get());
    return { chunks, rows: count('ts_kv'), staged: count('ts_kv_recent') };
  } finally {
    db.close();
  }
}

/**
 * Every stored point of a series as [ts, value], by the layout's rules: chunks in seq order (a later chunk's point of
 * a ts wins, rule 3), then ts_kv rows (a row sharing a ts with a chunk point was written after it, rule 2), then
 * staged rows in seq order (written after both: a batch writing chunks merges what is staged first).
 */
function storedSeries(file: string, deviceId: string, key: string): [number, KvValue][] {
  const db = new BetterSqlite3(file, { readonly: true });
  db.defaultSafeIntegers(true);
  try {
    const points = new Map<number, KvValue>();
    for (const c of db.prepare('select type, points, first_ts, last_ts from ts_kv_chunk where device_id = ? and key = ? order by seq').all(deviceId, key) as Record<string, any>[]) {
      const unpacked = unpackChunk(c.points, Number(c.type));
      for (let i = 0; i < unpacked.ts.length; i++) points.set(unpacked.ts[i], chunkValue(unpacked, i));
      assert.equal(Number(c.first_ts), unpacked.ts[0], 'first_ts is the chunk points first ts');
      assert.equal(Number(c.last_ts), unpacked.ts[unpacked.ts.length - 1], 'last_ts is its last');
      for (let i = 1; i < unpacked.ts.length; i++) assert.ok(unpacked.ts[i] > unpacked.ts[i - 1], 'a chunk holds each ts once, in order (rule 1)');
    }
    for (const table of ['ts_kv', 'ts_kv_recent']) {
      const order = table === 'ts_kv' ? 'ts' : 'seq';
      for (const r of db.prepare(`select * from ${table} where device_id = ? and key = ? order by ${order}`).all(deviceId, key) as Record<string, any>[]) points.set(Number(r.ts), fromColumns(r as any));
    }
    return [...points].sort((a, b) => a[0] - b[0]);
  } finally {
    db.close();
  }
}

const MODES: { name: string; options: Partial<SqliteStoreOptions> }[] = [
  { name: 'writer thread', options: { writerThread: true, threadMinParameters: 0 } }, // every group commit on the thread
  { name: 'in process', options: { writerThread: false } },
];

for (const mode of MODES) {
  describe(`SQLite telemetry chunks (${mode.name})`, () => {
    const open = (file = join(dir, `chunks-${++files}.db`), staging?: SqliteStoreOptions['staging']) =>
      openSqliteStore(file, { synchronous: 'normal', ...mode.options, staging }).then((store) => ({ store, file }));
    const write = (store: KyselyStore, telemetry: TsPoint[]) => store.writeBatch({ telemetry, attributes: [] });

    test('a dense batch writes each numeric or boolean series as one chunk; strings, JSON, mixed types, short and too wide series as rows', async () => {
      const { store, file } = await open();
      try {
        const n = DIRECT_ROWS_PER_SERIES;
        const telemetry = [
          ...run('a', 'temperature', 1000, n, (i) => dbl(20 + i / 4)),
          ...run('a', 'count', 1000, n, (i) => long(i)),
          ...run('a', 'open', 1000, n, (i) => bool(i % 3 === 0)),
          ...run('a', 'label', 1000, n, (i) => str(`l${i}`)),
          ...run('a', 'shape', 1000, n, (i) => ({ type: 'JSON', value: `{"i":${i}}` })),
          ...run('a', 'mixed', 1000, n, (i) => (i === 5 ? long(5) : dbl(i + 0.5))),
          ...run('a', 'short', 1000, CHUNK_MIN_POINTS - 1, (i) => dbl(i)),
          ...run('a', 'enough', 1000, CHUNK_MIN_POINTS, (i) => dbl(i)),
          ...run('a', 'wide', 1000, n, (i) => dbl(i)),
          pt('a', 'wide', 1000 + MAX_CHUNK_SPAN_MS + 1, dbl(-1)),
          ...run('a', 'span', 1000, n - 1, (i) => dbl(i)),
          pt('a', 'span', 1000 + MAX_CHUNK_SPAN_MS, dbl(-1)),
          ...run('a', 'pad', 1000, 200, (i) => long(i)), // the batch dense enough for the direct path
        ];
        await write(store, telemetry);
        const { chunks, rows, staged } = layout(file);
        assert.deepEqual(
          chunks.map((c) => [c.key, c.type, c.points, c.firstTs, c.lastTs]),
          [
            ['temperature', ChunkType.DOUBLE, n, 1000, 1000 + n - 1],
            ['count', ChunkType.LONG, n, 1000, 1000 + n - 1],
            ['open', ChunkType.BOOLEAN, n, 1000, 1000 + n - 1],
            ['enough', ChunkType.DOUBLE, CHUNK_MIN_POINTS, 1000, 1000 + CHUNK_MIN_POINTS - 1],
            ['span', ChunkType.DOUBLE, n, 1000, 1000 + MAX_CHUNK_SPAN_MS],
            ['pad', ChunkType.LONG, 200, 1000, 1199],
          ],
        );
        assert.equal(rows, 3 * n + CHUNK_MIN_POINTS - 1 + n + 1, 'label, shape, mixed, short and wide as ts_kv rows');
        assert.equal(staged, 0);
        for (const key of ['temperature', 'count', 'open', 'label', 'shape', 'mixed', 'wide', 'span']) {
          const expected = telemetry.filter((p) => p.key === key).map((p) => [p.ts, p.value]);
          assert.deepEqual(storedSeries(file, 'a', key), expected, `${key} stored point for point`);
        }
      } finally {
        await store.close();
      }
    });

    test('a sparse batch is staged, not chunked; the next dense batch merges it first', async () => {
      const { store, file } = await open();
      try {
        await write(store, [pt('a', 't', 5, dbl(1)), pt('b', 't', 5, dbl(2))]);
        assert.deepEqual([layout(file).chunks.length, layout(file).staged], [0, 2]);
        await write(store, run('a', 't', 1, DIRECT_ROWS_PER_SERIES, (i) => dbl(100 + i)));
        const after = layout(file);
        assert.deepEqual([after.chunks.length, after.staged, after.rows], [1, 0, 1], "(a, t, 5) was merged, then deleted under the chunk's point; (b, t, 5) stays a row");
        assert.deepEqual(storedSeries(file, 'a', 't')[4], [5, dbl(104)], 'the chunk, written later, holds ts 5');
        assert.deepEqual(storedSeries(file, 'b', 't'), [[5, dbl(2)]]);
      } finally {
        await store.close();
      }
    });

    test("rule 2: a chunk deletes its series' older ts_kv rows at its timestamps, and only those", async () => {
      const { store, file } = await open();
      try {
        // Rows first (strings stay rows): ts 10 and 12 (to be shadowed), 9 and 11 (before and between the chunk's
        // points), and a row of another key at ts 10.
        await write(store, [
          pt('a', 'k', 10, str('old')),
          pt('a', 'k', 12, str('old')),
          pt('a', 'k', 9, str('before')),
          pt('a', 'k', 11, str('between')),
          ...run('a', 'other', 10, 100, () => str('other')), // the batch dense enough for the direct path
        ]);
        assert.equal(layout(file).rows, 4 + 100);
        // Points at 10, 12, 14, ...: one chunk.
        const everyOther = Array.from({ length: DIRECT_ROWS_PER_SERIES }, (_, i) => pt('a', 'k', 10 + 2 * i, dbl(i)));
        await write(store, everyOther);
        const after = layout(file);
        assert.equal(after.chunks.length, 1);
        assert.equal(after.rows, 2 + 100, 'the rows at 10 and 12 were deleted; 9, 11 and the other key stay');
        const stored = storedSeries(file, 'a', 'k');
        assert.deepEqual(stored.slice(0, 4), [[9, str('before')], [10, dbl(0)], [11, str('between')], [12, dbl(1)]]);
        assert.equal(stored.length, DIRECT_ROWS_PER_SERIES + 2);
        // A later row over a chunk's point is the value (staged, then merged by the next dense batch, which does not
        // hold its ts); a later chunk's point over an earlier chunk's (rule 3).
        await write(store, [pt('a', 'k', 12, str('newer'))]);
        await write(store, [...run('a', 'k', 16, CHUNK_MIN_POINTS, () => dbl(-5)), ...run('a', 'pad', 0, 3 * DIRECT_ROWS_PER_SERIES, () => long(1))]);
        assert.deepEqual(layout(file).chunks.map((c) => c.key), ['k', 'k', 'pad']);
        const last = new Map(storedSeries(file, 'a', 'k'));
        assert.deepEqual(last.get(12), str('newer'));
        assert.deepEqual(last.get(16), dbl(-5), 'the later chunk holds ts 16');
        assert.deepEqual(last.get(17), dbl(-5));
        assert.deepEqual(last.get(16 + CHUNK_MIN_POINTS), dbl((16 + CHUNK_MIN_POINTS - 10) / 2), 'past the later chunk: the earlier one');
      } finally {
        await store.close();
      }
    });

    test('out-of-order and repeated timestamps inside a batch: the chunk holds each ts once, the later write of it', async () => {
      const { store, file } = await open();
      try {
        const telemetry: TsPoint[] = [];
        for (let i = DIRECT_ROWS_PER_SERIES - 1; i >= 0; i--) telemetry.push(pt('a', 'k', 100 + i, dbl(i)));
        telemetry.push(pt('a', 'k', 110, dbl(-110)), pt('a', 'j', 1, long(1)), pt('a', 'k', 105, dbl(-105)), pt('a', 'k', 105, dbl(-1050)));
        telemetry.push(...run('a', 'j', 2, DIRECT_ROWS_PER_SERIES, (i) => long(i)));
        await write(store, telemetry);
        assert.equal(layout(file).chunks.length, 2);
        const stored = new Map(storedSeries(file, 'a', 'k'));
        assert.equal(stored.size, DIRECT_ROWS_PER_SERIES);
        assert.deepEqual(stored.get(110), dbl(-110));
        assert.deepEqual(stored.get(105), dbl(-1050));
        assert.deepEqual(stored.get(100), dbl(0));
      } finally {
        await store.close();
      }
    });

    test('LONG values beyond 2^53 are chunked exactly; a LONG that is an unsafe JavaScript number stays a row', async () => {
      const { store, file } = await open();
      try {
        const big = (i: number) => long(i % 2 === 0 ? 2n ** 62n + BigInt(i) : -(2n ** 63n) + BigInt(i));
        await write(store, [...run('a', 'big', 1, DIRECT_ROWS_PER_SERIES, big), ...run('a', 'huge', 1, DIRECT_ROWS_PER_SERIES, (i) => long(i === 3 ? 1e300 : i))]);
        assert.deepEqual(layout(file).chunks.map((c) => c.key), ['big']);
        assert.deepEqual(storedSeries(file, 'a', 'big').map(([, v]) => v), Array.from({ length: DIRECT_ROWS_PER_SERIES }, (_, i) => big(i)));
        assert.deepEqual(storedSeries(file, 'a', 'big')[1][1], long(-(2n ** 63n) + 1n));
        const latest = await store.getLatestTimeseries('a', ['big']);
        assert.deepEqual(latest.get('big'), { ts: DIRECT_ROWS_PER_SERIES, value: big(DIRECT_ROWS_PER_SERIES - 1) });
      } finally {
        await store.close();
      }
    });

    test('a DOUBLE -0 is stored as 0 and a series holding NaN stays rows, as the row layout stores them; ±Infinity is chunked', async () => {
      const { store, file } = await open();
      try {
        await write(store, [
          ...run('a', 'zero', 1, DIRECT_ROWS_PER_SERIES, (i) => dbl(i % 2 === 0 ? -0 : i)),
          ...run('a', 'nan', 1, DIRECT_ROWS_PER_SERIES, (i) => dbl(i === 3 ? NaN : i)),
          ...run('a', 'inf', 1, DIRECT_ROWS_PER_SERIES, (i) => dbl(i === 0 ? Infinity : i === 1 ? -Infinity : i)),
        ]);
        assert.deepEqual(layout(file).chunks.map((c) => c.key), ['zero', 'inf']);
        const zeros = storedSeries(file, 'a', 'zero').filter(([ts]) => ts % 2 === 1);
        assert.ok(zeros.length === DIRECT_ROWS_PER_SERIES / 2 && zeros.every(([, v]) => Object.is(v.value, 0)), 'every -0 stored as 0');
        assert.deepEqual(storedSeries(file, 'a', 'inf').slice(0, 3), [[1, dbl(Infinity)], [2, dbl(-Infinity)], [3, dbl(2)]]);
      } finally {
        await store.close();
      }
    });

    test('latest values and key lists are what the row layout gives, batch after batch', async () => {
      const chunked = await open();
      const rows = await open(undefined, { chunkMinPoints: Infinity });
      try {
        const batches: TsPoint[][] = [
          [...run('a', 't', 100, 40, (i) => dbl(i)), ...run('a', 'n', 100, 40, (i) => long(i)), ...run('b', 'on', 50, 40, (i) => bool(i % 2 === 1))],
          // An older run of t (latest stays), a string for n, and a pad so the batch takes the direct path.
          [...run('a', 't', 10, 40, (i) => dbl(-i)), ...run('b', 'on', 200, 40, () => bool(false)), pt('a', 'n', 300, str('text now')), ...run('c', 'pad', 0, 100, (i) => long(i))],
          [...run('a', 't', 139, 40, (i) => dbl(1000 + i)).reverse(), ...run('a', 'n', 139, 40, (i) => long(i))], // a tie at 139
        ];
        for (const batch of batches) {
          await write(chunked.store, batch);
          await write(rows.store, batch);
          for (const device of ['a', 'b']) {
            assert.deepEqual(await chunked.store.getLatestTimeseries(device), await rows.store.getLatestTimeseries(device));
            assert.deepEqual(await chunked.store.listTimeseriesKeys(device), await rows.store.listTimeseriesKeys(device));
          }
        }
        assert.equal(layout(chunked.file).chunks.length, 8);
        assert.equal(layout(rows.file).chunks.length, 0);
        assert.deepEqual((await chunked.store.getLatestTimeseries('a')).get('t'), { ts: 178, value: dbl(1039) });
      } finally {
        await chunked.store.close();
        await rows.store.close();
      }
    });

    test("deleting a device deletes its chunks, not another device's", async () => {
      const { store, file } = await open();
      try {
        const { device: d } = await seedDevice(store);
        const { device: e } = await seedDevice(store);
        await write(store, [...run(d.id, 't', 1, DIRECT_ROWS_PER_SERIES, (i) => dbl(i)), ...run(e.id, 't', 1, DIRECT_ROWS_PER_SERIES, (i) => dbl(i))]);
        assert.equal(layout(file).chunks.length, 2);
        assert.equal(await store.deleteDevice(d.tenantId, d.id), true);
        assert.deepEqual(layout(file).chunks.map((c) => c.deviceId), [e.id]);
        assert.equal(storedSeries(file, e.id, 't').length, DIRECT_ROWS_PER_SERIES);
      } finally {
        await store.close();
      }
    });
  });
}

describe('SQLite telemetry chunks under SIGKILL', () => {
  for (const mode of MODES) {
    test(`${mode.name}: every batch whose write resolved before the kill is stored whole, as chunks`, async () => {
      const file = join(dir, `killed-${++files}.db`);
      // A process writing dense batches (10 devices × 2 series × 40 points: chunks) back to back, printing the last ts
      // of each batch once its write resolved (committed); killed with SIGKILL after a few batches.
      const code = `
        const { openSqliteStore } = await import(${JSON.stringify(new URL('../../src/store/sqlite.ts', import.meta.url).href)});
        const store = await openSqliteStore(${JSON.stringify(file)}, ${JSON.stringify({ synchronous: 'normal', ...mode.options })});
        for (let b = 0; ; b++) {
          const telemetry = [];
          for (let i = 0; i < 40; i++) for (let d = 0; d < 10; d++) {
            const ts = b * 40 + i;
            telemetry.push({ deviceId: 'd' + d, key: 't', ts, value: { type: 'DOUBLE', value: ts / 4 } }, { deviceId: 'd' + d, key: 'n', ts, value: { type: 'LONG', value: ts } });
          }
          await store.writeBatch({ telemetry, attributes: [] });
          process.stdout.write(b * 40 + 39 + '\\n');
        }`;
      const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', code], { stdio: ['ignore', 'pipe', 'inherit'] });
      let acknowledged = -1;
      for await (const line of createInterface({ input: child.stdout! })) {
        acknowledged = Number(line);
        if (acknowledged >= 40 * 25 - 1) break;
      }
      child.kill('SIGKILL');
      if (child.exitCode === null && child.signalCode === null) await once(child, 'exit');
      assert.ok(acknowledged >= 40 * 25 - 1, 'the writer acknowledged 25 batches before the kill');
      assert.ok(layout(file).chunks.length >= 25 * 20);
      for (let d = 0; d < 10; d++) {
        for (const key of ['t', 'n']) {
          const stored = new Map(storedSeries(file, `d${d}`, key));
          for (let ts = 0; ts <= acknowledged; ts++) {
            assert.deepEqual(stored.get(ts), key === 't' ? dbl(ts / 4) : long(ts), `d${d} ${key} ${ts}`);
          }
        }
      }
    });
  }
});

test('a chunk insert weighs the ts_kv rows its points would be (4 parameters each), so its commit runs where they would', () => {
  const ops: WriterOp[] = [];
  const rest = chunkOps(ops, [...run('a', 't', 1, 64, (i) => dbl(i)), ...run('a', 's', 1, 64, () => str('x')), ...run('b', 't', 1, 10, (i) => dbl(i))], CHUNK_MIN_POINTS);
  assert.equal(rest.length, 64, 'the strings stay rows');
  assert.deepEqual(ops.map((op) => [op.params.length, op.weight]), [[12, 12 + 4 * 74], [1, undefined]]);
});
