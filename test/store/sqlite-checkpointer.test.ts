/** WAL checkpoints run on a worker thread (src/store/sqlite-checkpointer.ts); the main connection keeps a safety net. */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import BetterSqlite3 from 'better-sqlite3';
import { FALLBACK_PAGES, SAFETY_NET_PAGES, SqliteCheckpointer } from '../../src/store/sqlite-checkpointer.ts';
import { openSqliteStore } from '../../src/store/sqlite.ts';

const dir = mkdtempSync(join(tmpdir(), 'fleetgate-checkpointer-'));
after(() => rmSync(dir, { recursive: true, force: true }));

async function until(condition: () => boolean, what: string): Promise<void> {
  const deadline = Date.now() + 60_000;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
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
});
