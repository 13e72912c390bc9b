/**
 * The telemetry model (telemetry-model.test.ts) must not pass vacuously on SQLite: a dense batch's numeric series
 * really is stored as ts_kv_chunk rows (issue 17, kysely/ts-kv-chunk-format.ts), seen through a connection of its own
 * on the file, with the writer thread on and off; a sparse or a STRING series stays rows; and the model's own
 * operations leave much of what they store in chunks.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import BetterSqlite3 from 'better-sqlite3';
import type { KvValue, TsPoint } from '../../src/core/model.ts';
import { openSqliteStore } from '../../src/store/sqlite.ts';
import { generate } from './telemetry-model/ops.ts';
import { runOps } from './telemetry-model/replay.ts';

const DEVICE = 'chunk-layout-device';
const series = (key: string, n: number, value: (i: number) => KvValue): TsPoint[] =>
  Array.from({ length: n }, (_, i) => ({ deviceId: DEVICE, key, ts: 1_700_000_000_000 + i * 1000, value: value(i) }));

describe('the telemetry model runs over chunks: a dense batch is stored in ts_kv_chunk', () => {
  for (const writerThread of [true, false]) {
    test(writerThread ? 'writer thread' : 'in process', async () => {
      const dir = mkdtempSync(join(tmpdir(), 'fleetgate-chunk-layout-'));
      const path = join(dir, 'db.sqlite');
      const store = await openSqliteStore(path, { synchronous: 'normal', writerThread });
      try {
        await store.writeBatch({
          telemetry: [
            ...series('dbl', 64, (i) => ({ type: 'DOUBLE', value: i / 4 })),
            ...series('long', 64, (i) => ({ type: 'LONG', value: 2n ** 60n + BigInt(i) })),
            ...series('bool', 64, (i) => ({ type: 'BOOLEAN', value: i % 3 === 0 })),
            ...series('text', 64, (i) => ({ type: 'STRING', value: `v${i}` })),
          ],
          attributes: [],
        });
        await store.writeBatch({ telemetry: series('sparse', 2, (i) => ({ type: 'LONG', value: i })), attributes: [] });
        const raw = new BetterSqlite3(path, { readonly: true });
        try {
          const chunked = raw.prepare('select key, sum(length(points)) / 16 as n from ts_kv_chunk where device_id = ? group by key order by key').all(DEVICE);
          assert.deepEqual(chunked, [
            { key: 'bool', n: 64 },
            { key: 'dbl', n: 64 },
            { key: 'long', n: 64 },
          ]);
          const rows = raw.prepare('select key, count(*) as n from (select key from ts_kv where device_id = ? union all select key from ts_kv_recent where device_id = ?) group by key order by key').all(DEVICE, DEVICE);
          assert.deepEqual(rows, [
            { key: 'sparse', n: 2 },
            { key: 'text', n: 64 },
          ]);
        } finally {
          raw.close();
        }
        // And the store reads the chunks back as points.
        const got = await store.getTimeseries({ deviceId: DEVICE, keys: ['long'], startTs: 0, endTs: Number.MAX_SAFE_INTEGER, limit: 1000, orderBy: 'DESC' });
        assert.deepEqual(got.get('long')?.[0], { ts: 1_700_000_000_000 + 63_000, value: { type: 'LONG', value: 2n ** 60n + 63n } });
      } finally {
        await store.close();
        rmSync(dir, { recursive: true, force: true });
      }
    });
  }
});

test("the telemetry model's operations store much of their telemetry as chunks", async () => {
  const dir = mkdtempSync(join(tmpdir(), 'fleetgate-chunk-layout-'));
  const path = join(dir, 'db.sqlite');
  let stored: { chunks: number; chunkPoints: number; rows: number } | undefined;
  // Whether the model agrees is telemetry-model.test.ts's question; a run cut short by a difference still counts here.
  await runOps(
    {
      open: () => openSqliteStore(path, { synchronous: 'normal', writerThread: false }),
      // Before the file goes: what the operations left in each layout.
      async drop() {
        const raw = new BetterSqlite3(path, { readonly: true });
        try {
          const chunk = raw.prepare('select count(*) as n, coalesce(sum(length(points)), 0) / 16 as points from ts_kv_chunk').get() as { n: number; points: number };
          const rows = raw.prepare('select (select count(*) from ts_kv) + (select count(*) from ts_kv_recent) as n').get() as { n: number };
          stored = { chunks: chunk.n, chunkPoints: chunk.points, rows: rows.n };
        } finally {
          raw.close();
          rmSync(dir, { recursive: true, force: true });
        }
      },
    },
    generate(1, 160),
    'sqlite',
  );
  assert.ok(stored && stored.chunks >= 10 && stored.chunkPoints >= stored.rows / 4, `stored ${JSON.stringify(stored)}`);
});
