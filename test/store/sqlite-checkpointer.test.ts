/** WAL checkpoints run on a worker thread (src/store/sqlite-checkpointer.ts); the main connection keeps a safety net. */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, readlinkSync, rmSync, statSync } from 'node:fs';
import { subscribe, unsubscribe } from 'node:diagnostics_channel';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import BetterSqlite3 from 'better-sqlite3';
import { FALLBACK_PAGES, SAFETY_NET_PAGES, SqliteCheckpointer } from '../../src/store/sqlite-checkpointer.ts';
import { openSqliteStore } from '../../src/store/sqlite.ts';
import { Mutex } from '../../src/store/sqlite-writer-dialect.ts';
import type { Worker } from 'node:worker_threads';
import type { TsPoint } from '../../src/core/model.ts';
import { seedDevice } from './fixtures.ts';

const dir = mkdtempSync(join(tmpdir(), 'fleetgate-checkpointer-'));
after(() => rmSync(dir, { recursive: true, force: true }));

async function until(condition: () => boolean, what: string): Promise<void> {
  const deadline = Date.now() + 60_000;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** `promise`'s value, or 'timed out' after a generous bound (a hang must fail the test, not stall the file). */
async function within<T>(promise: Promise<T>): Promise<T | 'timed out'> {
  let timer: NodeJS.Timeout | undefined;
  const bound = new Promise<'timed out'>((r) => (timer = setTimeout(() => r('timed out'), 30_000)));
  try {
    return await Promise.race([promise, bound]);
  } finally {
    clearTimeout(timer);
  }
}

function openWal(path: string): BetterSqlite3.Database {
  const db = new BetterSqlite3(path);
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = NORMAL');
  db.exec('create table if not exists t (id integer primary key, v text)');
  return db;
}

describe('SQLite checkpoints on a worker thread', () => {
  test('the worker copies the WAL back while the main connection writes; nothing written is lost', async () => {
    const path = join(dir, 'a.db');
    const db = openWal(path);
    const checkpointer = SqliteCheckpointer.start(path, db, 20);
    assert.equal(db.pragma('wal_autocheckpoint', { simple: true }), SAFETY_NET_PAGES);
    const insert = db.prepare('insert into t (v) values (?)');
    for (let i = 0; i < 2000; i++) insert.run('x'.repeat(500));
    await until(() => checkpointer.stats.runs > 0 && checkpointer.stats.lastLog > 100 && checkpointer.stats.lastCheckpointed === checkpointer.stats.lastLog, 'a full checkpoint');
    // After a full checkpoint the next write starts the WAL over instead of growing it.
    const walBytes = statSync(`${path}-wal`).size;
    for (let i = 0; i < 2000; i++) insert.run('y'.repeat(500));
    assert.ok(statSync(`${path}-wal`).size <= walBytes * 1.5, 'the WAL was reused');
    await checkpointer.stop();
    assert.equal(checkpointer.stats.error, undefined);
    db.close();
    const again = new BetterSqlite3(path);
    assert.equal((again.prepare('select count(*) as n from t').get() as { n: number }).n, 4000);
    again.close();
  });

  test('a worker that cannot run gives the checkpoints back to the main connection', async () => {
    const path = join(dir, 'b.db');
    const db = openWal(path);
    const checkpointer = SqliteCheckpointer.start(join(dir, 'missing', 'nope.db'), db, 20);
    await until(() => checkpointer.stats.error !== undefined, 'the worker to fail');
    assert.equal(db.pragma('wal_autocheckpoint', { simple: true }), FALLBACK_PAGES);
    await checkpointer.stop();
    db.close();
  });

  test('a SQLite store starts and stops its checkpointer with it', async () => {
    const path = join(dir, 'c.db');
    const store = await openSqliteStore(path, { synchronous: 'normal' });
    await store.ping();
    await store.close();
    // Closing the last connection checkpoints and removes the WAL: the worker's connection was closed first.
    assert.throws(() => statSync(`${path}-wal`), /ENOENT/);
  });

  /**
   * A checkpointer on a file with a WAL to restart, behind a write mutex, whose final pass's request never reaches
   * its worker (the fault both tests below inject); resolves once the final pass holds the write pause.
   */
  async function withLostFinalPass(name: string, options: { finalPassTimeoutMs?: number } = {}) {
    const path = join(dir, name);
    const db = openWal(path);
    const insert = db.prepare('insert into t (v) values (?)');
    for (let i = 0; i < 500; i++) insert.run('x'.repeat(500));
    const mutex = new Mutex();
    let inFinal = false;
    const checkpointer = SqliteCheckpointer.start(path, db, {
      intervalMs: 5,
      restartPages: 16,
      ...options,
      pauseWrites: async (final) => {
        const release = await mutex.lock();
        try {
          inFinal = true;
          await final();
        } finally {
          release();
        }
      },
    });
    const worker = (checkpointer as unknown as { worker: Worker }).worker;
    const post = worker.postMessage.bind(worker);
    worker.postMessage = (message: unknown) => void (inFinal && message === 'checkpoint' ? undefined : post(message));
    await until(() => inFinal, 'the final pass');
    return { db, mutex, checkpointer, worker };
  }

  test('a worker that dies during stop() while a final pass holds the write pause: stop() ends and the pause is released', async () => {
    const { db, mutex, checkpointer, worker } = await withLostFinalPass('dies-stopping.db');
    const stopping = checkpointer.stop();
    await worker.terminate();
    assert.equal(await within(stopping.then(() => 'stopped')), 'stopped');
    assert.equal(typeof (await within(mutex.lock())), 'function', 'the write pause was released');
    db.close();
  });

  test('a worker that hangs during the final pass: the pause ends after its bound, the main connection checkpoints again', async () => {
    // The worker stays alive: a hang, not an exit.
    const { db, mutex, checkpointer } = await withLostFinalPass('hangs-final.db', { finalPassTimeoutMs: 200 });
    assert.equal(typeof (await within(mutex.lock())), 'function', 'the write pause was released without stop()');
    assert.match(checkpointer.stats.error ?? '', /did not answer the final pass within 200 ms/);
    assert.equal(Number(db.pragma('wal_autocheckpoint', { simple: true })), FALLBACK_PAGES, 'the main connection checkpoints by itself again');
    assert.equal(await within(checkpointer.stop().then(() => 'stopped')), 'stopped');
    db.close();
  });

  /** Writes `batches` group commits back to back through a store; returns the WAL file's size and the rows read back. */
  async function fill(name: string, restartPages: number, batches: number, writerThread = true) {
    const path = join(dir, name);
    const store = await openSqliteStore(path, { synchronous: 'normal', writerThread, checkpoints: { intervalMs: 5, restartPages } });
    try {
      const devices = await Promise.all(Array.from({ length: 4 }, () => seedDevice(store)));
      // Batches of 2,000 rows with distinct timestamps: written straight to ts_kv on the writer thread, ~150 WAL
      // pages a commit.
      let ts = 0;
      for (let b = 0; b < batches; b++) {
        const telemetry: TsPoint[] = [];
        for (let i = 0; i < 500; i++) {
          ts++;
          for (const { device } of devices) telemetry.push({ deviceId: device.id, key: 'v', ts, value: { type: 'STRING', value: `${ts}-${'x'.repeat(250)}` } });
        }
        await store.writeBatch({ telemetry, attributes: [] });
        // As a server's batches come from sockets: in process the writes settle in microtasks alone and would starve
        // the checkpointer's timers.
        await new Promise((resolve) => setImmediate(resolve));
      }
      const walBytes = statSync(`${path}-wal`).size;
      const series = await store.getTimeseries({ deviceId: devices[0].device.id, keys: ['v'], startTs: 0, endTs: ts + 1, limit: 1_000_000, orderBy: 'ASC' });
      return { walBytes, rows: series.get('v')?.length, expected: ts };
    } finally {
      await store.close();
    }
  }

  test('without the writer thread the WAL starts over too: its file stays bounded by size, nothing is lost', async () => {
    const bounded = await fill('bounded-in-process.db', 1024, 1000, false);
    assert.equal(bounded.rows, bounded.expected, 'every row is there');
    const written = bounded.expected * 4 * 250;
    assert.ok(bounded.walBytes < written / 4, `WAL file ${bounded.walBytes} bytes, ${written} bytes of values written`);
  });

  test('under back-to-back group commits the WAL starts over: its file stays bounded by size, nothing is lost', async () => {
    const batches = 1000;
    const bounded = await fill('bounded.db', 1024, batches);
    assert.equal(bounded.rows, bounded.expected, 'every row is there');
    // Every row's value alone is 250 bytes or more: without restarts the WAL would hold at least this much. Bounded by
    // size: the restart size (4 MiB) plus what arrives while a cycle runs, a small part of it.
    const written = bounded.expected * 4 * 250;
    assert.ok(bounded.walBytes < written / 4, `WAL file ${bounded.walBytes} bytes, ${written} bytes of values written`);
  });

  test('before each final pass the database and WAL files are flushed while writes go on; closing the store closes their descriptors', async () => {
    const passes: string[] = [];
    const listen = (message: unknown) => passes.push((message as { pass: string }).pass);
    subscribe('fleetgate:sqlite-checkpoint', listen);
    let bounded: Awaited<ReturnType<typeof fill>>;
    try {
      bounded = await fill('presync.db', 1024, 600);
    } finally {
      unsubscribe('fleetgate:sqlite-checkpoint', listen);
    }
    assert.equal(bounded.rows, bounded.expected, 'every row is there');
    const finals = passes.flatMap((pass, i) => (pass === 'final' ? [i] : []));
    assert.ok(finals.length > 0, `a final pass ran (passes: ${passes.join(' ')})`);
    for (const i of finals) assert.equal(passes[i - 1], 'presync', `the pass before a final one is a flush (passes: ${passes.slice(Math.max(0, i - 4), i + 1).join(' ')})`);
    // The store closed: no descriptor of this process still names the file (a leak would also drop SQLite's locks later).
    const open = readdirSync('/proc/self/fd').flatMap((fd) => {
      try {
        return [readlinkSync(`/proc/self/fd/${fd}`)];
      } catch {
        return [];
      }
    });
    assert.deepEqual(open.filter((target) => target.includes('presync.db')), []);
  });

  for (const synchronous of ['normal', 'full'] as const) {
    test(`a process killed (SIGKILL) while the checkpointer restarts the WAL loses no acknowledged row; the file reopens (synchronous ${synchronous})`, async () => {
      const path = join(dir, `killed-${synchronous}.db`);
      const child = spawn(process.execPath, ['--import', 'tsx', join(import.meta.dirname, 'checkpointer-writer.ts'), path, synchronous], { stdio: ['ignore', 'pipe', 'inherit'] });
      let deviceId = '';
      let acked = 0;
      let output = '';
      child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
        output += chunk;
        const lines = output.split('\n');
        output = lines.pop()!;
        for (const line of lines) {
          if (line.startsWith('device ')) deviceId = line.slice(7);
          if (line.startsWith('acked ')) acked = Number(line.slice(6));
        }
      });
      const exited = new Promise((resolve) => child.once('exit', resolve));
      // Killed after writing ~30 times the restart size (1 MiB; the test above shows the WAL then starts over), at
      // whatever point of a cycle: a pass, a catch-up, a final pass with writes waiting, or a write restarting the WAL.
      await until(() => acked >= 2000 * 150 || child.exitCode !== null, 'the child to write 150 batches');
      child.kill('SIGKILL');
      await exited;
      assert.ok(acked >= 2000 * 150, 'the child wrote until it was killed');
      const store = await openSqliteStore(path, { synchronous });
      try {
        // ts 1..acked (endTs is inclusive); the batch after the last acknowledged one may be there too (committed, not
        // yet acknowledged when the kill came).
        const series = await store.getTimeseries({ deviceId, keys: ['v'], startTs: 0, endTs: acked, limit: 10_000_000, orderBy: 'ASC' });
        assert.equal(series.get('v')?.length, acked, 'every acknowledged row');
      } finally {
        await store.close();
      }
      const db = new BetterSqlite3(path);
      assert.equal(db.pragma('integrity_check', { simple: true }), 'ok');
      db.close();
    });
  }
});
