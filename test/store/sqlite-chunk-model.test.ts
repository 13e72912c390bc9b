/**
 * The write side of SQLite's chunked telemetry layout against a model (review of issue 17's ts_kv_chunk writes): a
 * seeded random mix of dense batches (chunked series beside row series, repeated and out-of-order ts, type changes,
 * LONGs beyond 2^53, series too wide for a chunk), sparse staged batches, merge slices between commits, deletes of
 * time ranges (which cut and rewrite chunks), transactions holding two batches, savepoints rolled back, and a second
 * store on the same file writing too, with the writer thread on and off. Every (device, key, ts) must read back the
 * value of its last committed write.
 */
import assert from 'node:assert/strict';
import BetterSqlite3 from 'better-sqlite3';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import type { KvValue, TsPoint } from '../../src/core/model.ts';
import { MAX_CHUNK_SPAN_MS } from '../../src/store/kysely/ts-kv-chunk-format.ts';
import { openSqliteStore } from '../../src/store/sqlite.ts';
import type { KyselyStore } from '../../src/store/kysely/kysely-store.ts';
import { Rng } from '../fuzz/rng.ts';

const dir = mkdtempSync(join(tmpdir(), 'fleetgate-chunk-model-'));
after(() => rmSync(dir, { recursive: true, force: true }));

/** A small deterministic generator (mulberry32, test/fuzz/rng.ts): a seed replays its run. */
function random(seed: number): () => number {
  const rng = new Rng(seed);
  return () => rng.next();
}

const DEVICES = ['d0', 'd1', 'd2', 'd3'];
const KEYS = ['a', 'b', 'c'];
const SPAN = 300;

/** The value the store reads back for a written one (a LONG bigint within the safe integers reads as a number). */
function readBack(v: KvValue): KvValue {
  if (v.type === 'LONG' && typeof v.value === 'bigint' && v.value >= BigInt(Number.MIN_SAFE_INTEGER) && v.value <= BigInt(Number.MAX_SAFE_INTEGER)) return { type: 'LONG', value: Number(v.value) };
  return v;
}

describe('SQLite chunk writes against a model', () => {
  for (const writerThread of [true, false]) {
    test(`${writerThread ? 'writer thread' : 'in process'}: every (device, key, ts) reads its last committed write`, async () => {
      const file = join(dir, `model-${writerThread}.db`);
      const options = { synchronous: 'normal' as const, writerThread, threadMinParameters: 0, staging: { mergeAt: 40, sliceRows: 8 } };
      const store = await openSqliteStore(file, options);
      const other = await openSqliteStore(file, options); // another process on the file
      // CHUNK_MODEL_SEED shifts the history (to explore more of them by hand); the suite runs the default one.
      const rnd = random(Number(process.env.CHUNK_MODEL_SEED ?? 0) + (writerThread ? 101 : 202));
      const int = (n: number) => Math.floor(rnd() * n);
      const pick = <T>(list: readonly T[]) => list[int(list.length)];
      const model = new Map<string, KvValue>(); // `${d}|${k}|${ts}` -> value
      const latest = new Map<string, { ts: number; value: KvValue }>(); // `${d}|${k}` -> the latest value
      let counter = 0;
      const value = (kind: number): KvValue => {
        counter++;
        if (kind === 0) return { type: 'LONG', value: rnd() < 0.2 ? 2n ** 53n + BigInt(counter) : counter };
        if (kind === 1) return { type: 'DOUBLE', value: counter + 0.5 };
        if (kind === 2) return { type: 'BOOLEAN', value: counter % 2 === 0 };
        return { type: 'STRING', value: `s${counter}` };
      };
      const apply = (points: TsPoint[]) => {
        for (const p of points) {
          model.set(`${p.deviceId}|${p.key}|${p.ts}`, readBack(p.value));
          const l = latest.get(`${p.deviceId}|${p.key}`);
          if (!l || p.ts >= l.ts) latest.set(`${p.deviceId}|${p.key}`, { ts: p.ts, value: readBack(p.value) });
        }
      };
      const dense = (): TsPoint[] => {
        const series: TsPoint[][] = [];
        const count = 1 + int(3);
        for (let s = 0; s < count; s++) {
          const d = pick(DEVICES);
          const k = pick(KEYS);
          const n = pick([3, 8, 9, 16, 40]);
          const kind = int(4);
          const mixed = rnd() < 0.1;
          const wide = rnd() < 0.05;
          const from = int(SPAN);
          const points: TsPoint[] = [];
          for (let i = 0; i < n; i++) {
            const ts = wide && i === n - 1 ? from + MAX_CHUNK_SPAN_MS + 1 : rnd() < 0.15 ? int(SPAN) : from + i;
            points.push({ deviceId: d, key: k, ts, value: value(mixed && i === 2 ? (kind + 1) % 4 : kind) });
          }
          series.push(points);
        }
        // A padding series of its own key, so the batch is dense enough for the direct path; anywhere in the batch, so
        // the last chunk a commit writes (the highest seq) is of any series.
        const pad = pick(DEVICES);
        const from = int(SPAN);
        series.splice(int(count + 1), 0, Array.from({ length: 32 * (count + 1) }, (_, i) => ({ deviceId: pad, key: 'pad', ts: from + i, value: value(0) })));
        return series.flat();
      };
      const sparse = (): TsPoint[] => Array.from({ length: 1 + int(6) }, () => ({ deviceId: pick(DEVICES), key: pick([...KEYS, 'pad']), ts: int(SPAN), value: value(int(4)) }));
      const write = (s: KyselyStore, telemetry: TsPoint[]) => s.writeBatch({ telemetry, attributes: [] });
      const check = async (step: number | string) => {
        for (const d of DEVICES) {
          const keys = [...KEYS, 'pad'];
          const got = await store.getTimeseries({ deviceId: d, keys, startTs: 0, endTs: 2 * MAX_CHUNK_SPAN_MS + 2 * SPAN, limit: 1e6, orderBy: 'ASC' });
          for (const k of keys) {
            const have = (got.get(k) ?? []).map((r) => [r.ts, r.value]);
            const want = [...model]
              .filter(([key]) => key.startsWith(`${d}|${k}|`))
              .map(([key, v]) => [Number(key.split('|')[2]), v] as const)
              .sort((x, y) => x[0] - y[0]);
            assert.deepEqual(have, want, `step ${step}: ${d} ${k}`);
          }
          const stored = await store.getLatestTimeseries(d);
          for (const k of keys) assert.deepEqual(stored.get(k), latest.get(`${d}|${k}`), `step ${step}: latest of ${d} ${k}`);
          // A random range, limit and order; and the counts by type of two buckets.
          const startTs = int(SPAN);
          const endTs = startTs + 1 + int(SPAN);
          const limit = 1 + int(20);
          const orderBy = rnd() < 0.5 ? ('ASC' as const) : ('DESC' as const);
          const part = await store.getTimeseries({ deviceId: d, keys, startTs, endTs, limit, orderBy });
          const mid = startTs + int(endTs - startTs);
          const buckets: [number, number][] = [[startTs, mid], [mid, endTs]];
          const aggregates = await store.aggregateTimeseries({ deviceId: d, keys, buckets } as any);
          for (const k of keys) {
            const inRange = [...model]
              .filter(([key]) => key.startsWith(`${d}|${k}|`))
              .map(([key, v]) => [Number(key.split('|')[2]), v] as const)
              .filter(([ts]) => ts >= startTs && ts <= endTs) // raw reads take [startTs, endTs], buckets [start, end)
              .sort((x, y) => (orderBy === 'ASC' ? x[0] - y[0] : y[0] - x[0]));
            assert.deepEqual((part.get(k) ?? []).map((r) => [r.ts, r.value]), inRange.slice(0, limit), `step ${step}: ${d} ${k} [${startTs}, ${endTs}] ${orderBy} limit ${limit}`);
            const counts = buckets
              .map(([s, e]) => {
                const vs = inRange.filter(([ts]) => ts >= s && ts < e).map(([, v]) => v.type);
                const n = (t: string) => vs.filter((x) => x === t).length;
                return [s, e, n('BOOLEAN'), n('LONG'), n('DOUBLE'), n('STRING')];
              })
              .filter((b) => b[2] + b[3] + b[4] + b[5] > 0);
            const have = (aggregates.get(k) ?? []).map((b) => [b.start, b.end, b.countBool, b.countLong, b.countDouble, b.countString]);
            assert.deepEqual(have, counts, `step ${step}: counts of ${d} ${k} in ${JSON.stringify(buckets)}`);
          }
        }
      };
      try {
        for (let step = 0; step < 250; step++) {
          const kind = rnd();
          if (kind < 0.35) {
            const points = dense();
            await write(rnd() < 0.2 ? other : store, points);
            apply(points);
          } else if (kind < 0.7) {
            const points = sparse();
            await write(rnd() < 0.2 ? other : store, points);
            apply(points);
          } else if (kind < 0.8) {
            const d = pick(DEVICES);
            const keys = [pick(KEYS), pick([...KEYS, 'pad'])];
            const startTs = int(SPAN);
            const endTs = startTs + 1 + int(SPAN / 2);
            // The latest value too when the range holds it, replaced by the newest point left before the range.
            await store.deleteTimeseries({ deviceId: d, keys, startTs, endTs, deleteLatest: true, rewriteLatest: true });
            for (const key of [...model.keys()]) {
              const [kd, kk, kts] = key.split('|');
              if (kd === d && keys.includes(kk) && Number(kts) >= startTs && Number(kts) < endTs) model.delete(key);
            }
            for (const k of keys) {
              const l = latest.get(`${d}|${k}`);
              if (!l || l.ts < startTs || l.ts >= endTs) continue;
              latest.delete(`${d}|${k}`);
              let best: { ts: number; value: KvValue } | undefined;
              for (const [key, v] of model) {
                const [kd, kk, kts] = key.split('|');
                if (kd === d && kk === k && Number(kts) < startTs && (!best || Number(kts) > best.ts)) best = { ts: Number(kts), value: v };
              }
              if (best) latest.set(`${d}|${k}`, best);
            }
          } else if (kind < 0.9) {
            // Two batches in one transaction, dense and sparse in either order.
            const first = rnd() < 0.5 ? dense() : sparse();
            const second = rnd() < 0.5 ? dense() : sparse();
            await store.transaction(async (tx) => {
              await tx.writeBatch({ telemetry: first, attributes: [] });
              await tx.writeBatch({ telemetry: second, attributes: [] });
            });
            apply(first);
            apply(second);
          } else {
            // A dense batch under a savepoint that is rolled back, then one that stays.
            const undone = dense();
            const kept = dense();
            await store.transaction(async (tx) => {
              await assert.rejects(
                tx.savepoint(async (sp) => {
                  await sp.writeBatch({ telemetry: undone, attributes: [] });
                  throw new Error('undo');
                }),
                /undo/,
              );
              await tx.writeBatch({ telemetry: kept, attributes: [] });
            });
            apply(kept);
          }
          if (rnd() < 0.3) await new Promise((resolve) => setImmediate(resolve)); // let a merge slice run between commits
          if (step % 25 === 24) await check(step);
        }
        await store.staging!.settled();
        await other.staging!.settled();
        await check('end');
        const raw = new BetterSqlite3(file, { readonly: true });
        try {
          const chunks = Number(raw.prepare('select count(*) from ts_kv_chunk').pluck().get());
          assert.ok(chunks > 20, `the history wrote chunks (${chunks} left)`);
        } finally {
          raw.close();
        }
      } finally {
        await other.close();
        await store.close();
      }
    });
  }
});
