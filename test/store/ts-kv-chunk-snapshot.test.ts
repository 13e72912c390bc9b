/**
 * A time-series read over ts_kv rows and ts_kv_chunk points reads one snapshot (SQLite with the writer thread, the
 * default), even outside a transaction: a point written again between its statements (here a chunk over a row: the
 * row deleted, the chunk holding its ts inserted, by another connection, committed) is counted once, with its old or
 * its new value, never both. The write is injected right after the statement that aggregates the rows (the only fault
 * injected; the store, its connections and the file are real).
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import BetterSqlite3 from 'better-sqlite3';
import { openSqliteStore } from '../../src/store/sqlite.ts';
import { ChunkType, packChunk } from '../../src/store/kysely/ts-kv-chunk-format.ts';

const dir = mkdtempSync(join(tmpdir(), 'fleetgate-chunk-snapshot-'));
after(() => rmSync(dir, { recursive: true, force: true }));

const DEVICE = '0b0c0d0e-1f2a-4b3c-8d4e-5f6a7b8c9d0e';
const AGGREGATE_ROWS = /group by t\.key, b\.s, b\.e/;

/** Runs `inject` once, right after the first statement (of any connection) whose SQL matches `pattern` has read its rows. */
function injectAfter(pattern: RegExp, inject: () => void): () => void {
  const probe = new BetterSqlite3(':memory:');
  const proto = Object.getPrototypeOf(probe.prepare('select 1')) as { all: (...args: unknown[]) => unknown[] };
  probe.close();
  const { all } = proto;
  let armed = true;
  proto.all = function (this: { source: string }, ...args: unknown[]) {
    const rows = all.apply(this, args);
    if (armed && pattern.test(this.source)) {
      armed = false;
      inject();
    }
    return rows;
  };
  return () => {
    proto.all = all;
  };
}

for (const writerThread of [true, false]) {
  describe(`time-series reads over rows and chunks, outside a transaction (writer thread ${writerThread ? 'on' : 'off'})`, () => {
    test('an aggregation counts a point rewritten during the read once', async () => {
      const path = join(dir, `aggregate-${writerThread}.db`);
      const store = await openSqliteStore(path, { synchronous: 'normal', writerThread });
      const raw = new BetterSqlite3(path);
      raw.pragma('busy_timeout = 5000');
      try {
        const insertRow = raw.prepare('insert into ts_kv (device_id, key, ts, long_v) values (?, ?, ?, ?)');
        insertRow.run(DEVICE, 'n', 1000, 5);
        insertRow.run(DEVICE, 'n', 2000, 1);
        // Another writer rewrites ts 1000 as a chunk (7): the chunk is written and the row it replaces deleted, as the
        // chunk writer does (rule 2 of ts-kv-chunk-format.ts), in one committed transaction.
        const rewrite = raw.transaction(() => {
          raw.prepare('delete from ts_kv where device_id = ? and key = ? and ts = ?').run(DEVICE, 'n', 1000);
          const points = [{ ts: 1000, value: { type: 'LONG' as const, value: 7 } }];
          raw.prepare('insert into ts_kv_chunk (device_id, key, first_ts, last_ts, type, points) values (?, ?, ?, ?, ?, ?)').run(DEVICE, 'n', 1000, 1000, ChunkType.LONG, Buffer.from(packChunk(points, ChunkType.LONG)));
        });
        const restore = injectAfter(AGGREGATE_ROWS, () => rewrite());
        let bucket;
        try {
          [bucket] = (await store.aggregateTimeseries({ deviceId: DEVICE, keys: ['n'], buckets: [[0, 10_000]] })).get('n')!;
        } finally {
          restore();
        }
        assert.equal((raw.prepare('select count(*) as n from ts_kv_chunk').get() as { n: number }).n, 1, 'the rewrite happened during the read');
        assert.equal(bucket.countLong, 2, 'ts 1000 and ts 2000, each once');
        assert.ok(bucket.sumLong === 6 || bucket.sumLong === 8, `the sum of one state, before (5 + 1) or after (7 + 1): ${bucket.sumLong}`);
        // After the read, the new state.
        const [now] = (await store.aggregateTimeseries({ deviceId: DEVICE, keys: ['n'], buckets: [[0, 10_000]] })).get('n')!;
        assert.deepEqual([now.countLong, now.sumLong], [2, 8]);
        const points = (await store.getTimeseries({ deviceId: DEVICE, keys: ['n'], startTs: 0, endTs: 10_000, limit: 10, orderBy: 'ASC' })).get('n')!;
        assert.deepEqual(points.map((p) => [p.ts, p.value]), [[1000, { type: 'LONG', value: 7 }], [2000, { type: 'LONG', value: 1 }]]);
      } finally {
        raw.close();
        await store.close();
      }
    });
  });
}
