/**
 * Review of issue 17's ts_kv_chunk writes. Chunk writes on a writer thread that died and was started again: the new
 * thread's connection has `chunk_has_ts` too, so rule 2's delete runs there (it would fail with "no such function"),
 * and the batch whose transaction the dying thread lost is written whole on the retry. A batch of more chunks than one
 * INSERT statement takes: rule 2 covers the chunks of every statement. A batch failing after its chunk statements ran
 * (and a transaction throwing after one) leaves no chunk and every row.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import BetterSqlite3 from 'better-sqlite3';
import type { KvValue, TsPoint } from '../../src/core/model.ts';
import { DependencyUnavailableError } from '../../src/core/errors.ts';
import { openSqliteStore } from '../../src/store/sqlite.ts';
import { SqliteWriterThread } from '../../src/store/sqlite-writer-thread.ts';

const dir = mkdtempSync(join(tmpdir(), 'fleetgate-chunk-restart-'));
after(() => rmSync(dir, { recursive: true, force: true }));

const pt = (key: string, ts: number, value: KvValue): TsPoint => ({ deviceId: 'a', key, ts, value });

test('a restarted writer thread writes chunks and deletes the rows they shadow (chunk_has_ts registered again)', async () => {
  const file = join(dir, 'restart.db');
  const before = new Set(SqliteWriterThread.open);
  // Every commit on the thread, none on a main-thread connection.
  const store = await openSqliteStore(file, { synchronous: 'normal', writerThread: true, mainConnection: false, threadMinParameters: 0 });
  try {
    const [thread] = [...SqliteWriterThread.open].filter((t) => !before.has(t));
    assert.ok(thread, 'the store runs a writer thread');
    // Rows of key k at ts 0..39 (strings stay rows), in a batch dense enough for the direct path.
    await store.writeBatch({ telemetry: Array.from({ length: 40 }, (_, i) => pt('k', i, { type: 'STRING', value: 'old' })), attributes: [] });
    const first = thread.generation;
    await (thread as unknown as { worker: { terminate(): Promise<number> } }).worker.terminate();
    // The first write after the death may meet the lost thread; the next one starts a new thread.
    const chunk = Array.from({ length: 40 }, (_, i) => pt('k', i, { type: 'DOUBLE', value: i + 0.25 }));
    try {
      await store.writeBatch({ telemetry: chunk, attributes: [] });
    } catch (err) {
      assert.ok(err instanceof DependencyUnavailableError, String(err));
      await store.writeBatch({ telemetry: chunk, attributes: [] });
    }
    assert.ok(thread.generation > first, 'a new thread');
    const raw = new BetterSqlite3(file, { readonly: true });
    try {
      assert.equal(Number(raw.prepare("select count(*) from ts_kv_chunk where key = 'k'").pluck().get()), 1, 'the new thread wrote the chunk');
      assert.equal(Number(raw.prepare("select count(*) from ts_kv where key = 'k'").pluck().get()), 0, 'and deleted the rows it shadows (rule 2)');
    } finally {
      raw.close();
    }
    const got = await store.getTimeseries({ deviceId: 'a', keys: ['k'], startTs: 0, endTs: 100, limit: 100, orderBy: 'ASC' });
    assert.deepEqual(got.get('k'), chunk.map((p) => ({ ts: p.ts, value: p.value })));
  } finally {
    await store.close();
  }
});

for (const writerThread of [true, false]) {
  test(`${writerThread ? 'writer thread' : 'in process'}: a batch of more chunks than one INSERT takes (512) deletes the rows every one of them shadows`, async () => {
    const file = join(dir, `many-${writerThread}.db`);
    const store = await openSqliteStore(file, { synchronous: 'normal', writerThread, threadMinParameters: 0 });
    try {
      const series = 700;
      // Rows first at ts 0..39 of every series (strings: rows), then a chunk of each series over the same ts.
      const rows: TsPoint[] = [];
      const chunks: TsPoint[] = [];
      for (let s = 0; s < series; s++) {
        for (let ts = 0; ts < 40; ts++) rows.push(pt(`k${s}`, ts, { type: 'STRING', value: 'old' }));
        for (let ts = 0; ts < 40; ts++) chunks.push(pt(`k${s}`, ts, { type: 'LONG', value: s * 100 + ts }));
      }
      await store.writeBatch({ telemetry: rows, attributes: [] });
      await store.writeBatch({ telemetry: chunks, attributes: [] });
      const raw = new BetterSqlite3(file, { readonly: true });
      try {
        assert.equal(Number(raw.prepare('select count(*) from ts_kv_chunk').pluck().get()), series);
        assert.equal(Number(raw.prepare('select count(*) from ts_kv').pluck().get()), 0, 'no row left under any chunk');
      } finally {
        raw.close();
      }
      const got = await store.getTimeseries({ deviceId: 'a', keys: ['k0', 'k511', 'k512', 'k699'], startTs: 0, endTs: 100, limit: 100, orderBy: 'ASC' });
      for (const s of [0, 511, 512, 699]) assert.deepEqual(got.get(`k${s}`)?.map((p) => p.value.value), Array.from({ length: 40 }, (_, ts) => s * 100 + ts), `k${s}`);
    } finally {
      await store.close();
    }
  });
}

for (const writerThread of [true, false]) {
  test(`${writerThread ? 'writer thread' : 'in process'}: a batch that fails after its chunks and rule 2's delete ran leaves nothing of them (rows kept, no chunk)`, async () => {
    const file = join(dir, `fails-${writerThread}.db`);
    const store = await openSqliteStore(file, { synchronous: 'normal', writerThread, threadMinParameters: 0 });
    try {
      await store.writeBatch({ telemetry: Array.from({ length: 40 }, (_, i) => pt('k', i, { type: 'STRING', value: 'old' })), attributes: [] });
      const chunk = Array.from({ length: 40 }, (_, i) => pt('k', i, { type: 'DOUBLE', value: i + 0.5 }));
      // The attribute upsert runs after the chunk statements in the same list, and breaks its foreign key (no device).
      const attribute = { deviceId: 'no-such-device', scope: 'SERVER_SCOPE' as const, entries: [{ key: 'x', value: { type: 'STRING' as const, value: 'v' } }], ts: 1 };
      await assert.rejects(store.writeBatch({ telemetry: chunk, attributes: [attribute] }), /FOREIGN KEY/);
      // And a transaction that throws after its batch of chunks.
      await assert.rejects(
        store.transaction(async (tx) => {
          await tx.writeBatch({ telemetry: chunk, attributes: [] });
          throw new Error('after the batch');
        }),
        /after the batch/,
      );
      const raw = new BetterSqlite3(file, { readonly: true });
      try {
        assert.equal(Number(raw.prepare('select count(*) from ts_kv_chunk').pluck().get()), 0, 'no chunk committed');
        assert.equal(Number(raw.prepare("select count(*) from ts_kv where key = 'k'").pluck().get()), 40, 'no row deleted');
      } finally {
        raw.close();
      }
      // Written again, whole: the chunk holds the values and the rows under it are gone.
      await store.writeBatch({ telemetry: chunk, attributes: [] });
      const got = await store.getTimeseries({ deviceId: 'a', keys: ['k'], startTs: 0, endTs: 100, limit: 100, orderBy: 'ASC' });
      assert.deepEqual(got.get('k'), chunk.map((p) => ({ ts: p.ts, value: p.value })));
    } finally {
      await store.close();
    }
  });
}
