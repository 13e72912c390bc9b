/**
 * SQLite telemetry staging against a model (review of issue 17's merge slices): a seeded random mix of staged, dense
 * (direct) and in-commit-merging batches, reads that merge mid-round, and slices between commits, with the writer
 * thread on and off. Every (device, key, ts) must hold the value of its last committed write, and each latest value
 * that of the newest ts (the later write of a tie), never going backwards.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import type { TsPoint } from '../../src/core/model.ts';
import { DIRECT_ROWS_PER_SERIES } from '../../src/store/kysely/sqlite-staging.ts';
import { openSqliteStore } from '../../src/store/sqlite.ts';
import { Rng } from '../fuzz/rng.ts';

const dir = mkdtempSync(join(tmpdir(), 'fleetgate-staging-model-'));
after(() => rmSync(dir, { recursive: true, force: true }));

/** A small deterministic generator (mulberry32, test/fuzz/rng.ts): a seed replays its run. */
function random(seed: number): () => number {
  const rng = new Rng(seed);
  return () => rng.next();
}

const DEVICES = ['d0', 'd1', 'd2', 'd3', 'd4', 'd5', 'd6', 'd7'];
const KEYS = ['a', 'b', 'c'];

describe('SQLite staging against a model', () => {
  for (const writerThread of [true, false]) {
    test(`${writerThread ? 'writer thread' : 'in process'}: no row lost or overwritten by an older one, latest never goes back`, async () => {
      const file = join(dir, `model-${writerThread}.db`);
      const store = await openSqliteStore(file, { synchronous: 'normal', writerThread, staging: { mergeAt: 40, sliceRows: 8 } });
      const rnd = random(writerThread ? 17 : 23);
      const pick = <T>(list: readonly T[]) => list[Math.floor(rnd() * list.length)];
      const rows = new Map<string, number>(); // `${d}|${k}|${ts}` -> value
      const latest = new Map<string, { ts: number; value: number }>();
      let value = 0;
      const apply = (points: TsPoint[]) => {
        for (const p of points) {
          rows.set(`${p.deviceId}|${p.key}|${p.ts}`, p.value.value as number);
          const l = latest.get(`${p.deviceId}|${p.key}`);
          if (!l || p.ts >= l.ts) latest.set(`${p.deviceId}|${p.key}`, { ts: p.ts, value: p.value.value as number });
        }
      };
      const point = (deviceId: string, key: string, ts: number): TsPoint => ({ deviceId, key, ts, value: { type: 'LONG', value: ++value } });
      try {
        for (let step = 0; step < 300; step++) {
          const kind = rnd();
          let points: TsPoint[];
          if (kind < 0.08) {
            // Dense: straight to ts_kv, over ts values that may be staged already.
            const d = pick(DEVICES);
            const k = pick(KEYS);
            const from = Math.floor(rnd() * 40);
            points = Array.from({ length: DIRECT_ROWS_PER_SERIES }, (_, i) => point(d, k, from + i));
          } else {
            // Sparse: a few points, repeated (device, key, ts) within and across batches, older ts too.
            points = Array.from({ length: 1 + Math.floor(rnd() * 12) }, () => point(pick(DEVICES), pick(KEYS), Math.floor(rnd() * 60)));
          }
          await store.writeBatch({ telemetry: points, attributes: [] });
          apply(points);
          if (rnd() < 0.1) {
            const d = pick(DEVICES);
            const k = pick(KEYS);
            const got = await store.getTimeseries({ deviceId: d, keys: [k], startTs: 0, endTs: 1e6, limit: 1e6, orderBy: 'ASC' });
            for (const r of got.get(k) ?? []) assert.equal(r.value.value, rows.get(`${d}|${k}|${r.ts}`), `step ${step}: ${d} ${k} ${r.ts}`);
          }
          if (rnd() < 0.3) {
            const d = pick(DEVICES);
            const stored = await store.getLatestTimeseries(d);
            for (const k of KEYS) {
              const want = latest.get(`${d}|${k}`);
              const have = stored.get(k);
              assert.deepEqual(have && [have.ts, have.value.value], want && [want.ts, want.value], `step ${step}: latest of ${d} ${k}`);
            }
          }
          if (rnd() < 0.2) await new Promise((resolve) => setImmediate(resolve)); // let a slice run between commits
        }
        await store.staging!.settled();
        for (const d of DEVICES) {
          const got = await store.getTimeseries({ deviceId: d, keys: KEYS, startTs: 0, endTs: 1e6, limit: 1e6, orderBy: 'ASC' });
          for (const k of KEYS) {
            const have = (got.get(k) ?? []).map((r) => `${r.ts}=${r.value.value}`);
            const want = [...rows].filter(([key]) => key.startsWith(`${d}|${k}|`)).map(([key, v]) => [Number(key.split('|')[2]), v] as const).sort((x, y) => x[0] - y[0]).map(([ts, v]) => `${ts}=${v}`);
            assert.deepEqual(have, want, `${d} ${k}`);
          }
          const stored = await store.getLatestTimeseries(d);
          for (const k of KEYS) {
            const want = latest.get(`${d}|${k}`);
            const have = stored.get(k);
            assert.deepEqual(have && [have.ts, have.value.value], want && [want.ts, want.value], `latest of ${d} ${k}`);
          }
        }
      } finally {
        await store.close();
      }
    });
  }
});
