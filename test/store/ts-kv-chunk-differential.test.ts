/**
 * Differential test of the ts_kv_chunk read side: one random write history stored twice, every point as a ts_kv row in
 * one SQLite store and split between rows and chunks in another (chunks of random spans up to MAX_CHUNK_SPAN_MS,
 * overlapping, with increasing but gapped seqs inserted in shuffled order, the writer's rule 2 applied), must give the
 * same answer to every random raw query, aggregation, delete (with the latest value's rewrite) and the reads after it.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { AggregateBucket } from '../../src/core/ports/store.ts';
import type { KvValue } from '../../src/core/model.ts';
import { MAX_CHUNK_SPAN_MS } from '../../src/store/kysely/ts-kv-chunk-format.ts';
import { insertChunk, openChunkStore, writeLatest, writeRows, type ChunkStore, type Point } from './chunk-fixtures.ts';
import { Rng } from '../fuzz/rng.ts';

/** mulberry32 (test/fuzz/rng.ts): a small seeded generator, so a failing seed can be replayed. */
function rng(seed: number): () => number {
  const r = new Rng(seed);
  return () => r.next();
}

const KEYS = ['dbl', 'long', 'flag', 'mixed'] as const;
const SEEDS = [1, 2, 3, 4, 5, 6, 7, 8];

describe('ts_kv_chunk: rows and chunks answer as all rows do', () => {
  let rows: ChunkStore;
  let chunked: ChunkStore;
  before(async () => {
    rows = await openChunkStore();
    chunked = await openChunkStore();
  });
  after(async () => {
    await rows.close();
    await chunked.close();
  });

  for (const seed of SEEDS) {
    test(`seed ${seed}`, async () => {
      const random = rng(seed);
      const int = (n: number) => Math.floor(random() * n);
      const pick = <T>(xs: readonly T[]): T => xs[int(xs.length)];
      const device = `d${seed}`;
      // A grid of timestamps: dense (1 ms) or wide (chunks then span up to MAX_CHUNK_SPAN_MS).
      const step = seed % 2 === 0 ? 1 : 50_000;
      const base = seed % 3 === 0 ? 1_700_000_000_000 : 0;
      const domain = step === 1 ? 600 : Math.floor((3 * MAX_CHUNK_SPAN_MS) / step);
      const maxSpan = Math.min(domain, Math.floor(MAX_CHUNK_SPAN_MS / step));
      const tsAt = (i: number) => base + i * step;

      const value = (key: (typeof KEYS)[number], forChunk: boolean): KvValue => {
        const long = (): KvValue => ({ type: 'LONG', value: random() < 0.1 ? BigInt(int(2 ** 20)) * 2n ** 35n * (random() < 0.5 ? -1n : 1n) : int(2_000_001) - 1_000_000 });
        const double = (): KvValue => ({ type: 'DOUBLE', value: random() < 0.3 ? int(100) : (random() - 0.5) * 10 ** int(12) });
        if (key === 'dbl') return double();
        if (key === 'long') return long();
        if (key === 'flag') return { type: 'BOOLEAN', value: random() < 0.5 };
        if (forChunk) return random() < 0.5 ? double() : long();
        return pick<() => KvValue>([() => ({ type: 'STRING', value: `s${int(50)}` }), () => ({ type: 'JSON', value: `{"v":${int(9)}}` }), double, long])();
      };

      // The history, in write order: chunk writes (one type each; seqs increase with gaps) and row writes. The all-rows
      // store gets each point's last write as a row; the chunked one every chunk (in shuffled physical order for odd
      // seeds: readers must rank by seq) and a row where the last write of its (key, ts) was a row write (rule 2).
      const chunkWrites: { key: string; points: Point[]; seq: number }[] = [];
      const last = new Map<string, { key: string; point: Point; row: boolean }>();
      let seq = seed * 1_000_000;
      for (let w = 0; w < 120; w++) {
        const key = pick(KEYS);
        if (random() < 0.45) {
          const span = 1 + int(maxSpan);
          const start = int(domain - span + 1);
          const type = value(key, true).type;
          const points: Point[] = [];
          for (let i = start; i <= start + span - 1; i++) if (random() < 0.6) points.push({ ts: tsAt(i), value: sameType(type, () => value(key, true)) });
          if (points.length === 0) points.push({ ts: tsAt(start), value: sameType(type, () => value(key, true)) });
          seq += 1 + int(1000);
          chunkWrites.push({ key, points, seq });
          for (const point of points) last.set(`${key} ${point.ts}`, { key, point, row: false });
        } else {
          for (let n = 1 + int(8); n > 0; n--) {
            const point = { ts: tsAt(int(domain)), value: value(key, false) };
            last.set(`${key} ${point.ts}`, { key, point, row: true });
          }
        }
      }
      const byKey = (rowsOnly: boolean) => {
        const out = new Map<string, Point[]>();
        for (const { key, point, row } of last.values()) if (row || !rowsOnly) out.set(key, [...(out.get(key) ?? []), point]);
        return out;
      };
      for (const [key, points] of byKey(false)) writeRows(rows.raw, device, key, points);
      for (const [key, points] of byKey(true)) writeRows(chunked.raw, device, key, points);
      const order = seed % 2 === 1 ? [...chunkWrites].sort(() => random() - 0.5) : chunkWrites;
      for (const c of order) insertChunk(chunked.raw, device, c.key, c.points, c.seq);
      const latest = new Map<string, Point>();
      for (const key of KEYS) {
        const newest = rows.raw.prepare('select ts from ts_kv where device_id = ? and key = ? order by ts desc limit 1').get(device, key) as { ts: bigint } | undefined;
        if (!newest) continue;
        const point = (await rows.store.getTimeseries({ deviceId: device, keys: [key], startTs: Number(newest.ts), endTs: Number(newest.ts), limit: 1, orderBy: 'ASC' })).get(key)![0];
        latest.set(key, point);
        writeLatest(rows.raw, device, key, point);
        writeLatest(chunked.raw, device, key, point);
      }

      const compareReads = async (round: number) => {
        for (let q = 0; q < 60; q++) {
          const a = int(domain + 2) - 1;
          const b = a + int(domain / (random() < 0.5 ? 8 : 1)) + (random() < 0.3 ? 0 : 1);
          const query = {
            deviceId: device,
            keys: random() < 0.3 ? [...KEYS] : [pick(KEYS), pick(KEYS)],
            startTs: tsAt(a) + (random() < 0.2 ? 1 : 0),
            endTs: tsAt(b) - (random() < 0.2 ? 1 : 0),
            limit: pick([0, -1, 1, 2, 5, 17, 64, 100, 1000]),
            orderBy: random() < 0.5 ? ('ASC' as const) : ('DESC' as const),
          };
          const want = await rows.store.getTimeseries(query);
          const got = await chunked.store.getTimeseries(query);
          assert.deepEqual(got, want, `round ${round} raw query ${JSON.stringify(query)}`);
        }
        for (let q = 0; q < 25; q++) {
          const start = tsAt(int(domain)) - int(3) * step;
          const width = Math.max(1, int(domain / 4)) * step + (random() < 0.3 ? 1 : 0);
          const count = 1 + int(8);
          const buckets: [number, number][] = Array.from({ length: count }, (_, i) => [start + i * width, start + (i + 1) * width]);
          const query = { deviceId: device, keys: [...new Set([pick(KEYS), pick(KEYS), pick(KEYS)])], buckets };
          const want = await rows.store.aggregateTimeseries(query);
          const got = await chunked.store.aggregateTimeseries(query);
          assertSameAggregation(got, want, `round ${round} aggregation ${JSON.stringify(query)}`);
        }
        assert.deepEqual(await chunked.store.getLatestTimeseries(device), await rows.store.getLatestTimeseries(device), `round ${round} latest`);
      };

      await compareReads(0);
      for (let round = 1; round <= 4; round++) {
        const a = int(domain);
        const del = {
          deviceId: device,
          keys: random() < 0.5 ? [...KEYS] : [pick(KEYS)],
          startTs: tsAt(a) + (random() < 0.3 ? 1 : 0),
          endTs: tsAt(a + 1 + int(domain / 3)),
          deleteLatest: random() < 0.7,
          rewriteLatest: random() < 0.7,
        };
        await rows.store.deleteTimeseries(del);
        await chunked.store.deleteTimeseries(del);
        await compareReads(round);
      }
    });
  }
});

function sameType(type: KvValue['type'], draw: () => KvValue): KvValue {
  for (let i = 0; i < 100; i++) {
    const v = draw();
    if (v.type === type) return v;
  }
  throw new Error(`no ${type} value drawn`);
}

function assertSameAggregation(got: Map<string, AggregateBucket[]>, want: Map<string, AggregateBucket[]>, message: string): void {
  assert.deepEqual([...got.keys()], [...want.keys()], message);
  for (const [key, buckets] of want) {
    const mine = got.get(key)!;
    assert.equal(mine.length, buckets.length, message);
    for (let i = 0; i < buckets.length; i++) {
      const { sumDouble: a, ...restMine } = mine[i];
      const { sumDouble: b, ...restWant } = buckets[i];
      assert.deepEqual(restMine, restWant, `${message} key ${key} bucket ${i}`);
      if (a === null || b === null) assert.equal(a, b, message);
      else assert.ok(Math.abs(a - b) <= 1e-9 * Math.max(1, Math.abs(b)), `${message} key ${key} bucket ${i}: sumDouble ${a} vs ${b}`);
    }
  }
}
