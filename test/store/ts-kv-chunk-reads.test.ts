/**
 * The read side of ts_kv_chunk (SQLite): raw queries, aggregation, deletes and the latest value's rewrite see chunk
 * points as if they were ts_kv rows, by the rules of ts-kv-chunk-format.ts. Chunks are written straight into the file
 * (chunk-fixtures.ts), as the chunk writer leaves them.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { TimeseriesQuery } from '../../src/core/ports/store.ts';
import { FleetgateError } from '../../src/core/errors.ts';
import { MAX_CHUNK_SPAN_MS } from '../../src/store/kysely/ts-kv-chunk-format.ts';
import { bool, dbl, lng, openChunkStore, str, writeChunk, writeLatest, writeRows, type ChunkStore, type Point } from './chunk-fixtures.ts';

const series = (from: number, to: number, step: number, value: (ts: number) => Point['value']): Point[] => {
  const out: Point[] = [];
  for (let ts = from; ts <= to; ts += step) out.push({ ts, value: value(ts) });
  return out;
};

for (const [name, options] of [
  ['writer thread with a main connection', {}],
  ['every statement through the writer thread', { mainConnection: false }],
] as const) {
  describe(`ts_kv_chunk reads (${name})`, () => {
    let s: ChunkStore;
    let device = 0;
    const fresh = () => `dev-${++device}`;
    before(async () => {
      s = await openChunkStore(options);
    });
    after(() => s.close());
    const raw = async (deviceId: string, q: Partial<TimeseriesQuery> & { keys: string[] }) =>
      s.store.getTimeseries({ deviceId, startTs: 0, endTs: 1e13, limit: 1000, orderBy: 'ASC', ...q });

    test('chunks sharing a ts: the higher seq holds the value, whatever order the rows were inserted in', async () => {
      const d = fresh();
      writeChunk(s.raw, d, 't', series(10, 50, 10, (ts) => dbl(ts)), 200);
      writeChunk(s.raw, d, 't', [{ ts: 30, value: dbl(-1) }, { ts: 60, value: dbl(-2) }], 100); // older, inserted later
      writeChunk(s.raw, d, 't', [{ ts: 20, value: dbl(-3) }, { ts: 50, value: dbl(-4) }], 300);
      const got = (await raw(d, { keys: ['t'] })).get('t');
      assert.deepEqual(got, [
        { ts: 10, value: dbl(10) },
        { ts: 20, value: dbl(-3) },
        { ts: 30, value: dbl(30) },
        { ts: 40, value: dbl(40) },
        { ts: 50, value: dbl(-4) },
        { ts: 60, value: dbl(-2) },
      ]);
    });

    test('a ts_kv row beats a chunk point of its ts (the row was written later), of any type', async () => {
      const d = fresh();
      writeChunk(s.raw, d, 't', series(1, 5, 1, (ts) => lng(ts * 100)));
      writeRows(s.raw, d, 't', [{ ts: 2, value: str('two') }, { ts: 4, value: dbl(4.5) }, { ts: 7, value: bool(true) }]);
      const got = (await raw(d, { keys: ['t'], orderBy: 'DESC' })).get('t');
      assert.deepEqual(got, [
        { ts: 7, value: bool(true) },
        { ts: 5, value: lng(500) },
        { ts: 4, value: dbl(4.5) },
        { ts: 3, value: lng(300) },
        { ts: 2, value: str('two') },
        { ts: 1, value: lng(100) },
      ]);
    });

    test('limit and order with rows and chunks interleaved; ranges cutting chunks', async () => {
      const d = fresh();
      // Chunks every 64 ms holding ts ≡ 0 mod 4, rows at ts ≡ 2 mod 4, a row shadowing each 10th chunk point.
      for (let start = 0; start < 2048; start += 64) writeChunk(s.raw, d, 'v', series(start, start + 60, 4, (ts) => dbl(ts)));
      writeRows(s.raw, d, 'v', series(2, 2046, 4, (ts) => dbl(-ts)));
      writeRows(s.raw, d, 'v', series(0, 2040, 40, (ts) => lng(ts)));
      const expected = (ts: number) => (ts % 40 === 0 ? lng(ts) : ts % 4 === 2 ? dbl(-ts) : dbl(ts));
      const all = series(0, 2046, 2, expected);
      for (const [startTs, endTs] of [[0, 2046], [30, 1001], [63, 64], [65, 127], [100, 100], [2047, 5000]]) {
        const inRange = all.filter((p) => p.ts >= startTs && p.ts <= endTs);
        for (const limit of [1, 3, 17, 100, 5000]) {
          const asc = (await raw(d, { keys: ['v'], startTs, endTs, limit })).get('v') ?? [];
          assert.deepEqual(asc, inRange.slice(0, limit), `ASC ${startTs}..${endTs} limit ${limit}`);
          const desc = (await raw(d, { keys: ['v'], startTs, endTs, limit, orderBy: 'DESC' })).get('v') ?? [];
          assert.deepEqual(desc, [...inRange].reverse().slice(0, limit), `DESC ${startTs}..${endTs} limit ${limit}`);
        }
      }
    });

    test('a chunk as wide as MAX_CHUNK_SPAN_MS is found from either end of a range', async () => {
      const d = fresh();
      const base = 1_700_000_000_000;
      writeChunk(s.raw, d, 'w', [{ ts: base, value: dbl(1) }, { ts: base + MAX_CHUNK_SPAN_MS, value: dbl(2) }]);
      assert.deepEqual((await raw(d, { keys: ['w'], startTs: base, endTs: base })).get('w'), [{ ts: base, value: dbl(1) }]);
      assert.deepEqual((await raw(d, { keys: ['w'], startTs: base + 1, endTs: base + MAX_CHUNK_SPAN_MS - 1 })).get('w'), undefined);
      assert.deepEqual((await raw(d, { keys: ['w'], startTs: base - 5, endTs: base + MAX_CHUNK_SPAN_MS, orderBy: 'DESC', limit: 1 })).get('w'), [{ ts: base + MAX_CHUNK_SPAN_MS, value: dbl(2) }]);
    });

    test('aggregation: rows, chunks of all three types, shadowed points, buckets only chunks fill', async () => {
      const d = fresh();
      writeChunk(s.raw, d, 'n', [{ ts: 0, value: dbl(1.5) }, { ts: 5, value: dbl(2.5) }, { ts: 12, value: dbl(-4) }]);
      writeChunk(s.raw, d, 'n', [{ ts: 21, value: lng(7) }, { ts: 25, value: lng(2n ** 60n) }, { ts: 27, value: lng(-3) }]);
      writeChunk(s.raw, d, 'n', [{ ts: 31, value: bool(true) }, { ts: 32, value: bool(false) }]);
      writeRows(s.raw, d, 'n', [{ ts: 5, value: str('x') }, { ts: 6, value: lng(10) }, { ts: 27, value: dbl(0.25) }, { ts: 45, value: lng(1) }]);
      writeChunk(s.raw, d, 'o', [{ ts: 41, value: dbl(3) }]); // a key only chunks hold
      const buckets: [number, number][] = [[0, 10], [10, 20], [20, 30], [30, 40], [40, 50], [50, 60]];
      const got = await s.store.aggregateTimeseries({ deviceId: d, keys: ['o', 'n', 'zz'], buckets });
      assert.deepEqual([...got.keys()], ['n', 'o']);
      const none = { countBool: 0, countString: 0, countJson: 0, countLong: 0, countDouble: 0, sumLong: null, sumDouble: null, minLong: null, maxLong: null, minDouble: null, maxDouble: null, minString: null, maxString: null };
      assert.deepEqual(got.get('n'), [
        { ...none, start: 0, end: 10, countString: 1, minString: 'x', maxString: 'x', countLong: 1, sumLong: 10, minLong: 10, maxLong: 10, countDouble: 1, sumDouble: 1.5, minDouble: 1.5, maxDouble: 1.5 },
        { ...none, start: 10, end: 20, countDouble: 1, sumDouble: -4, minDouble: -4, maxDouble: -4 },
        { ...none, start: 20, end: 30, countLong: 2, sumLong: Number(2n ** 60n + 7n), minLong: 7, maxLong: Number(2n ** 60n), countDouble: 1, sumDouble: 0.25, minDouble: 0.25, maxDouble: 0.25 },
        { ...none, start: 30, end: 40, countBool: 2 },
        { ...none, start: 40, end: 50, countLong: 1, sumLong: 1, minLong: 1, maxLong: 1 },
      ]);
      assert.deepEqual(got.get('o'), [{ ...none, start: 40, end: 50, countDouble: 1, sumDouble: 3, minDouble: 3, maxDouble: 3 }]);
    });

    test('aggregation: LONG sums stay exact beyond 2^53, DOUBLE sums are compensated', async () => {
      const d = fresh();
      const big = 2n ** 53n + 1n;
      writeChunk(s.raw, d, 'l', [{ ts: 1, value: lng(big) }, { ts: 2, value: lng(1) }, { ts: 3, value: lng(Number.MAX_SAFE_INTEGER) }]);
      writeRows(s.raw, d, 'l', [{ ts: 4, value: lng(2n ** 60n) }]);
      writeChunk(s.raw, d, 'f', [{ ts: 1, value: dbl(1e16) }, { ts: 2, value: dbl(1) }, { ts: 3, value: dbl(-1e16) }]);
      writeRows(s.raw, d, 'f', [{ ts: 4, value: dbl(1) }]);
      const got = await s.store.aggregateTimeseries({ deviceId: d, keys: ['l', 'f'], buckets: [[0, 10]] });
      assert.equal(got.get('l')![0].sumLong, Number(big + 1n + BigInt(Number.MAX_SAFE_INTEGER) + 2n ** 60n));
      assert.equal(got.get('f')![0].sumDouble, 2);
    });

    test('deletes: chunks inside the range go, chunks it cuts keep their other points and their seq', async () => {
      const d = fresh();
      writeChunk(s.raw, d, 'k', series(0, 9, 1, (ts) => dbl(ts)), 10); // cut at its end
      writeChunk(s.raw, d, 'k', series(10, 19, 1, (ts) => dbl(ts)), 11); // inside
      writeChunk(s.raw, d, 'k', series(15, 30, 5, (ts) => dbl(-ts)), 12); // cut at its start, beats seq 11 at 15
      writeChunk(s.raw, d, 'k', series(0, 40, 40, (ts) => dbl(ts + 0.5)), 5); // spans the range: points outside it
      const elsewhere = writeChunk(s.raw, d, 'k', series(100, 110, 10, (ts) => dbl(ts)));
      writeRows(s.raw, d, 'k', [{ ts: 12, value: str('row') }, { ts: 35, value: str('kept') }]);
      await s.store.deleteTimeseries({ deviceId: d, keys: ['k'], startTs: 5, endTs: 25, deleteLatest: false, rewriteLatest: false });
      assert.deepEqual((await raw(d, { keys: ['k'] })).get('k'), [
        ...series(0, 4, 1, (ts) => dbl(ts)),
        { ts: 25, value: dbl(-25) },
        { ts: 30, value: dbl(-30) },
        { ts: 35, value: str('kept') },
        { ts: 40, value: dbl(40.5) },
        { ts: 100, value: dbl(100) },
        { ts: 110, value: dbl(110) },
      ]);
      const chunks = s.raw.prepare('select seq, first_ts, last_ts from ts_kv_chunk where device_id = ? order by seq').all(d);
      assert.deepEqual(chunks.map((c: any) => [Number(c.seq), Number(c.first_ts), Number(c.last_ts)]), [[5, 0, 40], [10, 0, 4], [12, 25, 30], [elsewhere, 100, 110]]);
      await s.store.deleteTimeseries({ deviceId: d, keys: ['k'], startTs: 0, endTs: 1000, deleteLatest: false, rewriteLatest: false });
      assert.equal((await raw(d, { keys: ['k'] })).has('k'), false);
      assert.equal(Number((s.raw.prepare('select count(*) n from ts_kv_chunk where device_id = ?').get(d) as any).n), 0);
    });

    test('rewriteLatest takes the newest point before the range from a chunk, or a row that shadows it', async () => {
      const d = fresh();
      writeChunk(s.raw, d, 'a', series(0, 40, 10, (ts) => lng(ts)), 1);
      writeChunk(s.raw, d, 'a', [{ ts: 20, value: lng(-20) }, { ts: 90, value: lng(90) }], 2);
      writeLatest(s.raw, d, 'a', { ts: 90, value: lng(90) });
      await s.store.deleteTimeseries({ deviceId: d, keys: ['a'], startTs: 25, endTs: 100, deleteLatest: true, rewriteLatest: true });
      assert.deepEqual((await s.store.getLatestTimeseries(d, ['a'])).get('a'), { ts: 20, value: lng(-20) });
      writeRows(s.raw, d, 'a', [{ ts: 10, value: str('row') }]);
      writeLatest(s.raw, d, 'a', { ts: 20, value: lng(-20) });
      await s.store.deleteTimeseries({ deviceId: d, keys: ['a'], startTs: 15, endTs: 100, deleteLatest: true, rewriteLatest: true });
      assert.deepEqual((await s.store.getLatestTimeseries(d, ['a'])).get('a'), { ts: 10, value: str('row') });
      writeChunk(s.raw, d, 'a', [{ ts: 5, value: bool(true) }, { ts: 10, value: bool(false) }], 3); // deletes the row at 10
      writeLatest(s.raw, d, 'a', { ts: 10, value: bool(false) });
      await s.store.deleteTimeseries({ deviceId: d, keys: ['a'], startTs: 6, endTs: 100, deleteLatest: true, rewriteLatest: true });
      assert.deepEqual((await s.store.getLatestTimeseries(d, ['a'])).get('a'), { ts: 5, value: bool(true) });
    });

    test('inside a store transaction, reads and aggregation see chunks too (one snapshot)', async () => {
      const d = fresh();
      writeChunk(s.raw, d, 'q', series(0, 30, 10, (ts) => dbl(ts)));
      writeChunk(s.raw, d, 'r', series(0, 30, 10, (ts) => lng(ts)));
      const [points, sums] = await s.store.transaction(async (tx) => [
        await tx.getTimeseries({ deviceId: d, keys: ['q', 'r'], startTs: 5, endTs: 30, limit: 2, orderBy: 'DESC' }),
        await tx.aggregateTimeseries({ deviceId: d, keys: ['r'], buckets: [[0, 40]] }),
      ] as const);
      assert.deepEqual(points.get('q'), [{ ts: 30, value: dbl(30) }, { ts: 20, value: dbl(20) }]);
      assert.deepEqual(points.get('r'), [{ ts: 30, value: lng(30) }, { ts: 20, value: lng(20) }]);
      assert.equal(sums.get('r')![0].sumLong, 60);
    });

    test('a damaged points blob is a clear INTERNAL error naming the row, and the store keeps serving', async () => {
      const d = fresh();
      writeChunk(s.raw, d, 'x', series(0, 3, 1, (ts) => dbl(ts)));
      const seq = writeChunk(s.raw, d, 'y', series(0, 3, 1, (ts) => dbl(ts)));
      s.raw.prepare('update ts_kv_chunk set points = substr(points, 1, 40) where seq = ?').run(seq);
      const damaged = new RegExp(`ts_kv_chunk row ${seq} \\(device ${d}, key y\\).*not a multiple of 16`);
      const isDamaged = (err: unknown) => err instanceof FleetgateError && err.code === 'INTERNAL' && damaged.test(err.message);
      await assert.rejects(raw(d, { keys: ['y'] }), isDamaged);
      await assert.rejects(s.store.aggregateTimeseries({ deviceId: d, keys: ['y'], buckets: [[0, 10]] }), isDamaged);
      await assert.rejects(s.store.deleteTimeseries({ deviceId: d, keys: ['y'], startTs: 1, endTs: 2, deleteLatest: false, rewriteLatest: false }), isDamaged);
      const shuffled = writeChunk(s.raw, d, 'z', series(0, 3, 1, (ts) => dbl(ts)));
      s.raw.prepare('update ts_kv_chunk set first_ts = 1 where seq = ?').run(shuffled);
      await assert.rejects(raw(d, { keys: ['z'] }), /its points span 0\.\.3, its columns say 1\.\.3/);
      assert.equal((await raw(d, { keys: ['x'] })).get('x')?.length, 4);
    });
  });
}
