/**
 * SQLite telemetry staging (src/store/kysely/sqlite-staging.ts) on real database files: which batches are staged,
 * that reads, deletes and later writes see staged rows, and that they survive a process that never closes its store.
 * A second read-only connection counts rows in ts_kv_recent and ts_kv without triggering a merge.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { after, describe, test } from 'node:test';
import BetterSqlite3 from 'better-sqlite3';
import type { TsPoint } from '../../src/core/model.ts';
import type { KyselyStore } from '../../src/store/kysely/kysely-store.ts';
import { DIRECT_ROWS_PER_SERIES, MERGE_AT, MERGE_IN_COMMIT_ROWS } from '../../src/store/kysely/sqlite-staging.ts';
import { openSqliteStore } from '../../src/store/sqlite.ts';
import { seedDevice } from './fixtures.ts';

const dir = mkdtempSync(join(tmpdir(), 'fleetgate-staging-'));
after(() => rmSync(dir, { recursive: true, force: true }));
let files = 0;
const newFile = () => join(dir, `store-${++files}.db`);
// Dense batches here go to ts_kv rows, not ts_kv_chunk (chunkMinPoints Infinity): these tests are about staging
// against the row layout; test/store/sqlite-chunk-writes.test.ts covers chunks with staging.
const ROWS_ONLY = { chunkMinPoints: Infinity };
const open = (file: string) => openSqliteStore(file, { synchronous: 'normal', staging: ROWS_ONLY });

const pt = (deviceId: string, key: string, ts: number, value: number): TsPoint => ({ deviceId, key, ts, value: { type: 'DOUBLE', value } });
/** One row for each of `keys` series: the shape of closed-loop devices, which is staged. */
const sparse = (deviceId: string, ts: number, value: number, keys = ['t', 'h']) => keys.map((k) => pt(deviceId, k, ts, value));
/** DIRECT_ROWS_PER_SERIES rows of one series: dense enough to go straight to ts_kv. */
const dense = (deviceId: string, key: string, from: number, value: number) => Array.from({ length: DIRECT_ROWS_PER_SERIES }, (_, i) => pt(deviceId, key, from + i, value));

/**
 * Rows in the staging table and points written directly (ts_kv rows and ts_kv_chunk points), read over a connection
 * of its own (as another process would).
 */
function rowCounts(file: string): { staged: number; tsKv: number } {
  const db = new BetterSqlite3(file, { readonly: true });
  try {
    const count = (table: string) => Number(db.prepare(`select count(*) from ${table}`).pluck().get());
    const chunkPoints = Number(db.prepare('select coalesce(sum(length(points)) / 16, 0) from ts_kv_chunk').pluck().get());
    return { staged: count('ts_kv_recent'), tsKv: count('ts_kv') + chunkPoints };
  } finally {
    db.close();
  }
}

async function series(store: KyselyStore, deviceId: string, key: string): Promise<[number, unknown][]> {
  const rows = await store.getTimeseries({ deviceId, keys: [key], startTs: 0, endTs: 1e15, limit: 1e6, orderBy: 'ASC' });
  return (rows.get(key) ?? []).map((r) => [r.ts, r.value.value]);
}

describe('SQLite telemetry staging', () => {
  test('a dense batch of interleaved series (an MQTT device pipelining) goes straight to ts_kv; a (device, key, ts) sent twice keeps the later value', async () => {
    const file = newFile();
    const store = await open(file);
    try {
      // Two devices, two keys each, messages interleaved as they arrive; the device resends ts 5 with a new value
      // after other rows of the same series (so the two rows do not fold into one).
      const telemetry: TsPoint[] = [];
      for (let ts = 1; ts <= DIRECT_ROWS_PER_SERIES; ts++) for (const d of ['a', 'b']) telemetry.push(...sparse(d, ts, ts));
      telemetry.push(pt('a', 't', 5, 500), pt('b', 'h', 7, 700));
      await store.writeBatch({ telemetry, attributes: [] });
      assert.deepEqual(rowCounts(file), { staged: 0, tsKv: 4 * DIRECT_ROWS_PER_SERIES });
      const at = (rows: [number, unknown][], ts: number) => rows.find(([t]) => t === ts)?.[1];
      assert.equal(at(await series(store, 'a', 't'), 5), 500, 'the later of two rows of (a, t, 5) won');
      assert.equal(at(await series(store, 'b', 'h'), 7), 700, 'the later of two rows of (b, h, 7) won');
      assert.equal(at(await series(store, 'a', 'h'), 5), 5, 'the other series kept their rows');
      const latest = await store.getLatestTimeseries('a', ['t']);
      assert.deepEqual(latest.get('t')?.ts, DIRECT_ROWS_PER_SERIES, 'the latest value is the newest ts, not the last row sent');
    } finally {
      await store.close();
    }
  });

  test('a batch of one row per series is staged; reads see its rows as soon as the write resolves', async () => {
    const file = newFile();
    const store = await open(file);
    try {
      await store.writeBatch({ telemetry: [...sparse('a', 10, 1), ...sparse('b', 10, 2)], attributes: [] });
      assert.deepEqual(rowCounts(file), { staged: 4, tsKv: 0 });
      assert.deepEqual(await store.listTimeseriesKeys('a'), ['h', 't']);
      assert.deepEqual(await series(store, 'a', 't'), [[10, 1]]);
      assert.deepEqual(await series(store, 'b', 'h'), [[10, 2]]);
      assert.deepEqual(rowCounts(file), { staged: 0, tsKv: 4 }, 'the read merged them');
    } finally {
      await store.close();
    }
  });

  test(`a batch of ${DIRECT_ROWS_PER_SERIES} rows per series goes straight to ts_kv; one row less is staged`, async () => {
    const file = newFile();
    const store = await open(file);
    try {
      await store.writeBatch({ telemetry: [...dense('a', 't', 1, 1), ...dense('a', 'h', 1, 2)], attributes: [] });
      assert.deepEqual(rowCounts(file), { staged: 0, tsKv: 2 * DIRECT_ROWS_PER_SERIES });
      await store.writeBatch({ telemetry: [...dense('b', 't', 1, 1).slice(1), ...dense('b', 'h', 1, 2).slice(1)], attributes: [] });
      assert.deepEqual(rowCounts(file), { staged: 2 * DIRECT_ROWS_PER_SERIES - 2, tsKv: 2 * DIRECT_ROWS_PER_SERIES });
    } finally {
      await store.close();
    }
  });

  test('latest values come from staged batches directly (no merge needed to read them)', async () => {
    const file = newFile();
    const store = await open(file);
    try {
      await store.writeBatch({ telemetry: sparse('a', 20, 2), attributes: [] });
      await store.writeBatch({ telemetry: sparse('a', 10, 1), attributes: [] }); // older: latest stays at 20
      await store.writeBatch({ telemetry: sparse('a', 30, 3, ['t']), attributes: [] });
      const latest = await store.getLatestTimeseries('a');
      assert.deepEqual([...latest].map(([k, v]) => [k, v.ts, v.value.value]), [['h', 20, 2], ['t', 30, 3]]);
      assert.equal(rowCounts(file).staged, 5);
    } finally {
      await store.close();
    }
  });

  test('the last write of a (device, key, ts) wins across staged, direct and staged batches', async () => {
    const file = newFile();
    const store = await open(file);
    try {
      await store.writeBatch({ telemetry: [pt('a', 'k', 5, 1)], attributes: [] });
      assert.equal(rowCounts(file).staged, 1);
      await store.writeBatch({ telemetry: dense('a', 'k', 5, 2), attributes: [] }); // (a, k, 5) again, written directly
      assert.deepEqual(rowCounts(file), { staged: 0, tsKv: DIRECT_ROWS_PER_SERIES }, 'the direct write merged what was staged first');
      assert.deepEqual((await series(store, 'a', 'k')).slice(0, 2), [[5, 2], [6, 2]]);
      await store.writeBatch({ telemetry: [pt('a', 'k', 5, 3)], attributes: [] });
      assert.equal(rowCounts(file).staged, 1);
      assert.deepEqual((await series(store, 'a', 'k')).slice(0, 2), [[5, 3], [6, 2]]);
    } finally {
      await store.close();
    }
  });

  test('a (device, key, ts) staged twice, in one batch or across batches: the later row wins', async () => {
    const file = newFile();
    const store = await open(file);
    try {
      // Within one batch the repeat of ts 5 is not adjacent, so folding keeps both rows (3 rows, 1 series: staged).
      await store.writeBatch({ telemetry: [pt('a', 'k', 5, 1), pt('a', 'k', 6, 2), pt('a', 'k', 5, 3)], attributes: [] });
      await store.writeBatch({ telemetry: [pt('a', 'j', 7, 1)], attributes: [] });
      await store.writeBatch({ telemetry: [pt('a', 'j', 7, 2)], attributes: [] });
      assert.equal(rowCounts(file).staged, 5);
      assert.deepEqual(await series(store, 'a', 'k'), [[5, 3], [6, 2]]);
      assert.deepEqual(await series(store, 'a', 'j'), [[7, 2]]);
    } finally {
      await store.close();
    }
  });

  test('deleting a device deletes its staged rows, not those of other devices', async () => {
    const file = newFile();
    const store = await open(file);
    try {
      const { device: d } = await seedDevice(store);
      const { device: e } = await seedDevice(store);
      await store.writeBatch({ telemetry: dense(d.id, 'k', 1, 1), attributes: [] });
      await store.writeBatch({ telemetry: [...sparse(d.id, 100, 2), ...sparse(e.id, 100, 3)], attributes: [] });
      assert.deepEqual(rowCounts(file), { staged: 4, tsKv: DIRECT_ROWS_PER_SERIES });
      assert.equal(await store.deleteDevice(d.tenantId, d.id), true);
      assert.deepEqual(rowCounts(file), { staged: 2, tsKv: 0 });
      assert.deepEqual(await series(store, d.id, 't'), []);
      assert.deepEqual(await series(store, d.id, 'k'), []);
      assert.deepEqual(await series(store, e.id, 't'), [[100, 3]]);
    } finally {
      await store.close();
    }
  });

  test(`once ${MERGE_AT} rows are staged, they are merged after the commit that crossed the mark, in slices of devices`, async () => {
    const file = newFile();
    const store = await open(file);
    try {
      const keys = Array.from({ length: MERGE_AT - 1 }, (_, i) => `k${i}`);
      await store.writeBatch({ telemetry: sparse('a', 1, 1, keys), attributes: [] });
      await store.staging!.settled();
      assert.deepEqual(rowCounts(file), { staged: MERGE_AT - 1, tsKv: 0 });
      await store.writeBatch({ telemetry: [pt('b', 'k', 1, 2)], attributes: [] });
      await store.staging!.settled();
      assert.deepEqual(rowCounts(file), { staged: 0, tsKv: MERGE_AT });
      assert.equal(store.staging?.staged, 0);
      assert.deepEqual(await series(store, 'a', `k${MERGE_AT - 2}`), [[1, 1]]);
    } finally {
      await store.close();
    }
  });

  test(`a commit of ${MERGE_IN_COMMIT_ROWS} rows or more that crosses ${MERGE_AT} merges inside itself`, async () => {
    const file = newFile();
    const store = await open(file);
    try {
      const keys = (prefix: string, n: number) => Array.from({ length: n }, (_, i) => `${prefix}${i}`);
      await store.writeBatch({ telemetry: sparse('a', 1, 1, keys('k', MERGE_AT - 1)), attributes: [] });
      await store.writeBatch({ telemetry: sparse('c', 1, 2, keys('j', MERGE_IN_COMMIT_ROWS)), attributes: [] });
      assert.deepEqual(rowCounts(file), { staged: 0, tsKv: MERGE_AT - 1 + MERGE_IN_COMMIT_ROWS }, 'merged before the write resolved');
    } finally {
      await store.close();
    }
  });

  test('latest values from a staged batch with older, repeated and tied timestamps: the newest wins, the later of a tie', async () => {
    const file = newFile();
    const store = await open(file);
    try {
      await store.writeBatch({ telemetry: [pt('a', 'm', 50, 1)], attributes: [] });
      // 4 rows of 2 series; k at 7 twice (not adjacent, so both rows stay), 8 the newest; m older than the stored 50.
      await store.writeBatch({ telemetry: [pt('a', 'k', 7, 1), pt('a', 'm', 10, 2), pt('a', 'k', 8, 0), pt('a', 'k', 7, 3)], attributes: [] });
      await store.writeBatch({ telemetry: [pt('a', 'j', 4, 1), pt('a', 'j', 4, 2), pt('a', 'h', 3, 5)], attributes: [] }); // folded: j at 4 = 2
      const latest = await store.getLatestTimeseries('a');
      assert.deepEqual([...latest].map(([k, v]) => [k, v.ts, v.value.value]).sort(), [['h', 3, 5], ['j', 4, 2], ['k', 8, 0], ['m', 50, 1]]);
      assert.deepEqual(await series(store, 'a', 'k'), [[7, 3], [8, 0]]);
    } finally {
      await store.close();
    }
  });

  describe('merge rounds (small rounds: a merge at 12 staged rows, slices of about 4)', () => {
    const openSmall = (file: string, writerThread = true) => openSqliteStore(file, { synchronous: 'normal', writerThread, staging: { ...ROWS_ONLY, mergeAt: 12, sliceRows: 4 } });
    const devices = ['d0', 'd1', 'd2', 'd3', 'd4', 'd5'];
    /** Two rows (keys t, h) at `ts` with `value` for every device. */
    const round = (ts: number, value: number) => devices.flatMap((d) => sparse(d, ts, value));

    for (const writerThread of [true, false]) {
      test(`${writerThread ? 'writer thread' : 'in process'}: writes between slices, the later row of a (device, key, ts) wins and nothing is lost`, async () => {
        const file = newFile();
        const store = await openSmall(file, writerThread);
        try {
          await store.writeBatch({ telemetry: round(1, 1), attributes: [] }); // 12 rows: a round starts after this commit
          // Without waiting for the round: the same (device, key, ts) again, and new ones, while slices run.
          await store.writeBatch({ telemetry: round(1, 2), attributes: [] });
          await store.writeBatch({ telemetry: round(2, 3), attributes: [] });
          await store.staging!.settled();
          const counts = rowCounts(file);
          assert.ok(counts.tsKv > 0, 'a round merged rows');
          assert.ok(counts.staged + counts.tsKv >= 24, 'no row lost before the read');
          for (const d of devices) {
            assert.deepEqual(await series(store, d, 't'), [[1, 2], [2, 3]], d);
            assert.deepEqual(await series(store, d, 'h'), [[1, 2], [2, 3]], d);
          }
          assert.deepEqual(rowCounts(file), { staged: 0, tsKv: 24 });
        } finally {
          await store.close();
        }
      });
    }

    test('a reader that merges everything in the middle of a round, and a direct write after it: the newest value stays', async () => {
      const file = newFile();
      const store = await openSmall(file);
      try {
        await store.writeBatch({ telemetry: round(1, 1), attributes: [] }); // a round starts
        assert.deepEqual(await series(store, 'd5', 't'), [[1, 1]]); // the read merges all, between slices
        await store.writeBatch({ telemetry: dense('d5', 't', 1, 9), attributes: [] }); // straight to ts_kv, over ts 1
        await store.writeBatch({ telemetry: round(2, 2), attributes: [] });
        await store.staging!.settled();
        assert.deepEqual((await series(store, 'd5', 't')).slice(0, 3), [[1, 9], [2, 2], [3, 9]], 'no slice merged the older row over the direct write');
        assert.deepEqual(await series(store, 'd0', 'h'), [[1, 1], [2, 2]]);
      } finally {
        await store.close();
      }
    });

    test('commits back to back without a turn of the event loop for slices: staging stays under 4 × the merge mark', async () => {
      const file = newFile();
      const store = await openSmall(file);
      try {
        for (let i = 1; i <= 10; i++) {
          await store.writeBatch({ telemetry: round(i, i), attributes: [] });
          assert.ok(rowCounts(file).staged < 4 * 12 + 12, `after commit ${i}`);
        }
        await store.staging!.settled();
        assert.deepEqual(await series(store, 'd3', 'h'), Array.from({ length: 10 }, (_, i) => [i + 1, i + 1]));
      } finally {
        await store.close();
      }
    });

    test('rows counted but never committed (a rolled-back transaction) do not keep merge rounds running without end', async () => {
      const file = newFile();
      const store = await openSmall(file);
      try {
        const keys = Array.from({ length: 20 }, (_, i) => `k${i}`);
        await assert.rejects(
          store.transaction(async (tx) => {
            await tx.writeBatch({ telemetry: sparse('gone', 1, 1, keys), attributes: [] });
            throw new Error('rolled back');
          }),
        );
        await store.writeBatch({ telemetry: [pt('e', 'k', 1, 1)], attributes: [] }); // a commit: a round starts
        // A round over a table that holds fewer rows than counted must end; before the fix it began a new one at once,
        // forever (tens of thousands of empty slices a second on the event loop).
        const settled = await Promise.race([store.staging!.settled().then(() => true), new Promise<false>((resolve) => setTimeout(() => resolve(false), 20_000).unref())]);
        assert.ok(settled, 'the merge round ended');
        assert.ok(store.staging!.staged < 12, `counted ${store.staging!.staged} staged rows after the round`);
        assert.deepEqual(rowCounts(file), { staged: 0, tsKv: 1 });
      } finally {
        await store.close();
      }
    });

    test('slices cover devices this process never staged (rows another process left)', async () => {
      const file = newFile();
      const other = await openSmall(file);
      await other.writeBatch({ telemetry: [...sparse('0-before-all', 1, 7), ...sparse('z-after-all', 1, 8)], attributes: [] });
      const store = await openSmall(file);
      try {
        await other.staging!.stop(); // the other process stages and never merges
        await store.writeBatch({ telemetry: round(1, 1), attributes: [] });
        await store.staging!.settled();
        assert.deepEqual(rowCounts(file), { staged: 0, tsKv: 16 }, 'one round merged every staged row');
      } finally {
        await store.close();
        await other.close();
      }
    });
  });

  test('closing the store merges what it staged', async () => {
    const file = newFile();
    const store = await open(file);
    await store.writeBatch({ telemetry: sparse('a', 1, 1), attributes: [] });
    assert.equal(rowCounts(file).staged, 2);
    await store.close();
    assert.deepEqual(rowCounts(file), { staged: 0, tsKv: 2 });
  });

  test('another connection (another process) reads, and writes after, rows this one staged', async () => {
    const file = newFile();
    const server = await open(file);
    const cli = await open(file); // opened before the rows are staged: its count says nothing is staged
    try {
      await server.writeBatch({ telemetry: [pt('a', 'k', 5, 1), pt('a', 'j', 5, 1)], attributes: [] });
      assert.equal(cli.staging?.staged, 0);
      assert.deepEqual(await series(cli, 'a', 'j'), [[5, 1]]);
      await server.writeBatch({ telemetry: [pt('a', 'k', 6, 1)], attributes: [] });
      await cli.writeBatch({ telemetry: dense('a', 'k', 6, 2), attributes: [] }); // direct: must merge ts 6 = 1 first
      assert.deepEqual((await series(server, 'a', 'k')).slice(0, 3), [[5, 1], [6, 2], [7, 2]]);
    } finally {
      await cli.close();
      await server.close();
    }
  });

  test('rows staged by a process that exits without closing its store survive, are counted and read back', async () => {
    const file = newFile();
    const code = `
      const { openSqliteStore } = await import(${JSON.stringify(new URL('../../src/store/sqlite.ts', import.meta.url).href)});
      const store = await openSqliteStore(${JSON.stringify(file)}, { synchronous: 'normal' });
      await store.writeBatch({ telemetry: [{ deviceId: 'a', key: 't', ts: 1, value: { type: 'LONG', value: 7 } }, { deviceId: 'b', key: 't', ts: 1, value: { type: 'LONG', value: 8 } }], attributes: [] });
      process.exit(0);`;
    await promisify(execFile)(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', code]);
    assert.deepEqual(rowCounts(file), { staged: 2, tsKv: 0 });
    const store = await open(file);
    try {
      assert.equal(store.staging?.staged, 2);
      const rows = await store.getTimeseries({ deviceId: 'b', keys: ['t'], startTs: 0, endTs: 10, limit: 10, orderBy: 'ASC' });
      assert.deepEqual(rows.get('t'), [{ ts: 1, value: { type: 'LONG', value: 8 } }]);
    } finally {
      await store.close();
    }
  });
});
