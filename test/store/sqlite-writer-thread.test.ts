/**
 * The SQLite writer thread (src/store/sqlite-writer-thread.ts) and its Kysely dialect (sqlite-writer-dialect.ts):
 * values cross the thread boundary unchanged (BigInt, Buffer blobs), a read after a commit sees it, a write outside
 * a transaction never lands inside another caller's, statement lists run in one message, and a thread that dies
 * fails its requests as "database unavailable" and is replaced, without a transaction continuing on the new one.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import BetterSqlite3 from 'better-sqlite3';
import { CompiledQuery, Kysely, sql, type Transaction } from 'kysely';
import { DependencyUnavailableError } from '../../src/core/errors.ts';
import { SqliteWriterThread } from '../../src/store/sqlite-writer-thread.ts';
import { OFFLOAD_SQL, parameterCount, SqliteWriterDialect, statements } from '../../src/store/sqlite-writer-dialect.ts';

const dir = mkdtempSync(join(tmpdir(), 'fleetgate-writer-'));
after(() => rmSync(dir, { recursive: true, force: true }));

interface Tables {
  t: { id: bigint; b: Buffer | null; n: bigint | null; s: string | null };
}

async function open(name: string, mainConnection = true) {
  const path = join(dir, name);
  const thread = new SqliteWriterThread({ path, synchronous: 'normal', autocheckpoint: 10_000 });
  await thread.start();
  let local: BetterSqlite3.Database | undefined;
  if (mainConnection) {
    local = new BetterSqlite3(path, { fileMustExist: true });
    local.defaultSafeIntegers(true);
    local.pragma('busy_timeout = 5000');
  }
  const db = new Kysely<Tables>({ dialect: new SqliteWriterDialect({ thread, path, local }) });
  await sql`create table t (id integer primary key, b blob, n integer, s text unique)`.execute(db);
  return { db, thread };
}

/** Makes `trx` run on the writer thread: a transaction that starts with a statement list does (group commits). */
const onThread = (trx: Transaction<Tables>) => trx.executeQuery(statements([{ sql: 'update t set s = s where id = ?', params: [-1] }]));

for (const mainConnection of [true, false]) {
  describe(`SQLite writer thread (${mainConnection ? 'with' : 'without'} a main-thread connection)`, () => {
    let db: Kysely<Tables>;
    let thread: SqliteWriterThread;
    before(async () => ({ db, thread } = await open(`values-${mainConnection}.db`, mainConnection)));
    after(() => db.destroy());

    test('a blob reads back as a Buffer and a 64-bit integer as the same BigInt, in and out of transactions', async () => {
      const blob = Buffer.from([0, 1, 2, 254, 255]);
      const big = 2n ** 62n + 12345n;
      await db.insertInto('t').values({ id: 1n, b: blob, n: big, s: 'one' }).execute();
      const outside = await db.selectFrom('t').selectAll().where('id', '=', 1n).executeTakeFirstOrThrow();
      assert.ok(Buffer.isBuffer(outside.b), 'a Buffer outside a transaction');
      assert.deepEqual([...outside.b!], [...blob]);
      assert.equal(outside.n, big);
      const inside = await db.transaction().execute(async (trx) => {
        await onThread(trx);
        return trx.selectFrom('t').selectAll().where('id', '=', 1n).executeTakeFirstOrThrow();
      });
      assert.ok(Buffer.isBuffer(inside.b), 'a Buffer inside a transaction (read on the writer thread)');
      assert.deepEqual([...inside.b!], [...blob]);
      assert.equal(inside.n, big);
    });

    test('long texts (sent without the shared-string lookup) and repeated short ones cross intact in one statement list', async () => {
      const long = `{"telemetry":"${'x'.repeat(20_000)}","é":"ключ \u2028"}`;
      const longer = `${long}${'y'.repeat(300)}`;
      const boundary = 'b'.repeat(256);
      const rows: [bigint, string][] = [[7000n, long], [7001n, 'key'], [7002n, longer], [7003n, 'key'], [7004n, boundary], [7005n, `${boundary}!`], [7006n, long]];
      await db.transaction().execute((trx) =>
        trx.executeQuery(statements([...rows.map(([id, s]) => ({ sql: 'insert into t (id, b) values (?, ?)', params: [id, Buffer.from(s)] })), ...rows.map(([id, s]) => ({ sql: 'update t set n = length(?) where id = ?', params: [s, id] }))])),
      );
      const back = await db.selectFrom('t').select(['id', 'b', 'n']).where('id', '>=', 7000n).where('id', '<', 7100n).orderBy('id').execute();
      assert.deepEqual(back.map((r) => [r.id, r.b!.toString(), r.n]), rows.map(([id, s]) => [id, s, BigInt([...s].length)]));
    });

    test('blobs of one statement list (empty, pooled Buffer slices, typed arrays of their own) cross in one buffer, each intact', async () => {
      const pooled = Buffer.from('a pooled buffer: Buffer.from of a short string shares an 8 KB pool');
      const own = new Uint8Array(new Float64Array([1.5, -2, 1e300]).buffer);
      const blobs: Uint8Array[] = [Buffer.alloc(0), pooled.subarray(2, 8), own, new Uint8Array(0), Buffer.alloc(70_000, 7), own.subarray(8)];
      await db.transaction().execute((trx) =>
        trx.executeQuery(statements(blobs.map((b, i) => ({ sql: 'insert into t (id, b, s) values (?, ?, ?)', params: [8000 + i, b, `blob-${i}`] })))),
      );
      const back = await db.selectFrom('t').select(['id', 'b']).where('id', '>=', 8000n).where('id', '<', 8100n).orderBy('id').execute();
      assert.deepEqual(back.map((r) => [...r.b!]), blobs.map((b) => [...b]));
    });

    test('every read after a committed write sees it (the write on the thread, the read on the main thread)', async () => {
      for (let i = 0; i < 200; i++) {
        await db.transaction().execute(async (trx) => {
          await onThread(trx);
          await trx.insertInto('t').values({ id: BigInt(1000 + i), s: `r${i}` }).execute();
        });
        const row = await db.selectFrom('t').select('s').where('id', '=', BigInt(1000 + i)).executeTakeFirst();
        assert.equal(row?.s, `r${i}`);
      }
    });

    for (const where of ['thread', 'main thread'])
    test(`a write outside a transaction waits for the open one (on the ${where}) and survives its rollback`, async () => {
      const base = where === 'thread' ? 2000n : 2100n;
      let inTransaction!: () => void;
      const started = new Promise<void>((r) => (inTransaction = r));
      const rolledBack = db
        .transaction()
        .execute(async (trx) => {
          if (where === 'thread') await onThread(trx);
          await trx.insertInto('t').values({ id: base, s: `undone ${where}` }).execute();
          inTransaction();
          await new Promise((r) => setTimeout(r, 50));
          throw new Error('roll back');
        })
        .catch((err: Error) => err.message);
      await started;
      await db.insertInto('t').values({ id: base + 1n, s: `kept ${where}` }).execute();
      assert.equal(await rolledBack, 'roll back');
      const ids = (await db.selectFrom('t').select('id').where('id', 'in', [base, base + 1n]).execute()).map((r) => r.id);
      assert.deepEqual(ids, [base + 1n]);
    });

    test('a read outside a transaction never sees the open transaction\'s uncommitted rows (and waits for it)', async () => {
      let inTransaction!: () => void;
      const started = new Promise<void>((r) => (inTransaction = r));
      let letGo!: () => void;
      const hold = new Promise<void>((r) => (letGo = r));
      const rolledBack = db
        .transaction()
        .execute(async (trx) => {
          await trx.insertInto('t').values({ id: 2500n, s: 'uncommitted' }).execute();
          inTransaction();
          await hold;
          throw new Error('roll back');
        })
        .catch((err: Error) => err.message);
      await started;
      const read = db.selectFrom('t').select('s').where('id', '=', 2500n).execute();
      const streamed = (async () => {
        const rows: unknown[] = [];
        for await (const row of db.selectFrom('t').select('s').where('id', '=', 2500n).stream()) rows.push(row);
        return rows;
      })();
      setTimeout(letGo, 20);
      assert.equal(await rolledBack, 'roll back');
      assert.deepEqual(await read, [], 'a plain read saw a row that was rolled back');
      assert.deepEqual(await streamed, [], 'a streamed read saw a row that was rolled back');
    });

    test('a write while another caller streams rows outside a transaction does not fail (connection busy)', async () => {
      for (let i = 0; i < 5; i++) await db.insertInto('t').values({ id: BigInt(2600 + i), s: `stream ${i}` }).execute();
      const seen: string[] = [];
      for await (const row of db.selectFrom('t').select('s').where('id', '>=', 2600n).where('id', '<', 2605n).orderBy('id').stream()) {
        seen.push(row.s!);
        if (seen.length === 1) {
          await db.insertInto('t').values({ id: 2700n, s: 'written mid-stream' }).execute();
          await db.selectFrom('t').select('s').where('id', '=', 2700n).execute();
        }
      }
      assert.equal(seen.length, 5);
    });

    for (const where of ['thread', 'main thread'])
    test(`a failed COMMIT (on the ${where}) rolls back, frees the mutex, and the next write is not inside it`, async () => {
      const base = where === 'thread' ? 5000n : 5100n;
      await sql.raw(`create table if not exists p${base} (id integer primary key)`).execute(db);
      await sql.raw(`create table if not exists c${base} (id integer primary key, p integer references p${base}(id) deferrable initially deferred)`).execute(db);
      await assert.rejects(
        db.transaction().execute(async (trx) => {
          if (where === 'thread') await onThread(trx);
          await sql.raw(`insert into c${base} (id, p) values (1, 999)`).execute(trx); // the deferred check fails at COMMIT
          await trx.insertInto('t').values({ id: base, s: `failed commit ${where}` }).execute();
        }),
        (err: { code?: string }) => String(err.code).startsWith('SQLITE_CONSTRAINT'),
      );
      await db.insertInto('t').values({ id: base + 1n, s: `after ${where}` }).execute();
      await db.transaction().execute(async (trx) => {
        await onThread(trx);
        await trx.insertInto('t').values({ id: base + 2n, s: `next ${where}` }).execute();
      });
      const ids = (await db.selectFrom('t').select('id').where('id', 'in', [base, base + 1n, base + 2n]).orderBy('id').execute()).map((r) => r.id);
      assert.deepEqual(ids, [base + 1n, base + 2n]);
      const orphans = await sql.raw<{ n: bigint }>(`select count(*) as n from c${base}`).execute(db);
      assert.equal(Number(orphans.rows[0].n), 0);
    });

    test('a constraint error keeps its SQLite code and the transaction rolls back whole', async () => {
      await assert.rejects(
        db.transaction().execute(async (trx) => {
          await onThread(trx);
          await trx.insertInto('t').values({ id: 3000n, s: 'first' }).execute();
          await trx.insertInto('t').values({ id: 3001n, s: 'first' }).execute();
        }),
        (err: { code?: string }) => err.code === 'SQLITE_CONSTRAINT_UNIQUE',
      );
      assert.equal((await db.selectFrom('t').select('id').where('id', '=', 3000n).execute()).length, 0);
    });

    test('a statement list whose result is unread goes with the COMMIT: one message for the whole transaction', async () => {
      const run = thread.run.bind(thread);
      const sent: string[][] = [];
      thread.run = (ops, generation) => {
        sent.push(ops.map((op) => op.sql));
        return run(ops, generation);
      };
      try {
        await db.transaction().execute(async (trx) => {
          const result = await trx.executeQuery(statements([{ sql: 'insert into t (id, s) values (?, ?)', params: [6000, 'unread'] }], true));
          if (mainConnection) assert.equal(sent.length, 0, 'nothing sent before the COMMIT');
          return result;
        });
      } finally {
        thread.run = run;
      }
      if (mainConnection) assert.deepEqual(sent, [['begin', 'insert into t (id, s) values (?, ?)', 'commit']]);
      const row = await db.selectFrom('t').select('s').where('id', '=', 6000n).executeTakeFirst();
      assert.equal(row?.s, 'unread');
    });

    test('an unread statement list that fails fails its transaction at the COMMIT, whole, and frees the mutex', async () => {
      await db.insertInto('t').values({ id: 6100n, s: 'taken' }).execute();
      await assert.rejects(
        db.transaction().execute((trx) =>
          trx.executeQuery(
            statements(
              [
                { sql: 'insert into t (id, s) values (?, ?)', params: [6101, 'first'] },
                { sql: 'insert into t (id, s) values (?, ?)', params: [6102, 'taken'] },
              ],
              true,
            ),
          ),
        ),
        (err: { code?: string }) => err.code === 'SQLITE_CONSTRAINT_UNIQUE',
      );
      assert.equal((await db.selectFrom('t').select('id').where('id', '=', 6101n).execute()).length, 0);
      await db.transaction().execute((trx) => trx.executeQuery(statements([{ sql: 'insert into t (id, s) values (?, ?)', params: [6103, 'next'] }], true)));
      assert.equal((await db.selectFrom('t').select('id').where('id', '=', 6103n).execute()).length, 1);
    });

    test('a transaction that throws after an unread statement list writes nothing of it', async () => {
      await assert.rejects(
        db.transaction().execute(async (trx) => {
          await trx.executeQuery(statements([{ sql: 'insert into t (id, s) values (?, ?)', params: [6200, 'dropped'] }], true));
          throw new Error('caller gave up');
        }),
        /caller gave up/,
      );
      assert.equal((await db.selectFrom('t').select('id').where('id', '=', 6200n).execute()).length, 0);
      await db.insertInto('t').values({ id: 6201n, s: 'after the rollback' }).execute();
      assert.equal((await db.selectFrom('t').select('id').where('id', '=', 6201n).execute()).length, 1);
    });

    test('a rollback with an unread statement list still deferred rolls back on the thread, even if that list would fail', async () => {
      await db.insertInto('t').values({ id: 6400n, s: 'held' }).execute();
      await assert.rejects(
        db.transaction().execute(async (trx) => {
          await trx.executeQuery(CompiledQuery.raw(OFFLOAD_SQL)); // on the thread in both configurations
          await trx.insertInto('t').values({ id: 6401n, s: 'sent' }).execute(); // BEGIN and this reach the thread
          // Deferred: it would fail (s is unique), but the transaction is rolled back before it is sent.
          await trx.executeQuery(statements([{ sql: 'insert into t (id, s) values (?, ?)', params: [6402, 'held'] }], true));
          throw new Error('caller gave up');
        }),
        /caller gave up/,
        'the caller sees its own error',
      );
      // The thread's connection is out of that transaction: a new one begins there (it could not inside another).
      await thread.run([{ sql: 'begin immediate', params: [] }, { sql: 'rollback', params: [] }]);
      assert.equal((await db.selectFrom('t').select('id').where('id', 'in', [6401n, 6402n]).execute()).length, 0, 'nothing of it stays');
    });

    test('an unread statement list whose statements want their results (done) still goes with the COMMIT; done comes after it', async () => {
      const run = thread.run.bind(thread);
      const sent: string[][] = [];
      thread.run = (ops, generation) => {
        sent.push(ops.map((op) => op.sql));
        return run(ops, generation);
      };
      let result: { changes?: number; insertId?: number | bigint } | undefined;
      try {
        await db.transaction().execute(async (trx) => {
          await trx.executeQuery(statements([{ sql: 'insert into t (id, s) values (?, ?)', params: [6300, 'done'], done: (r) => (result = r) }], true));
          assert.equal(result, undefined, 'not before the COMMIT');
        });
      } finally {
        thread.run = run;
      }
      assert.equal(result?.changes, 1);
      assert.equal(Number(result?.insertId), 6300, 'the insert rowid, as if it had run alone');
      // One round trip for the transaction (the export outbox's seqs come with the group commit's COMMIT, issue 16).
      if (mainConnection) assert.deepEqual(sent, [['begin', 'insert into t (id, s) values (?, ?)', 'commit']]);
    });

    test('an unread statement list that fails at the COMMIT tells none of its statements (done) anything', async () => {
      await db.insertInto('t').values({ id: 6310n, s: 'taken too' }).execute();
      const told: number[] = [];
      await assert.rejects(
        db.transaction().execute((trx) =>
          trx.executeQuery(
            statements(
              [
                { sql: 'insert into t (id, s) values (?, ?)', params: [6311, 'first of two'], done: () => told.push(6311) },
                { sql: 'insert into t (id, s) values (?, ?)', params: [6312, 'taken too'], done: () => told.push(6312) },
              ],
              true,
            ),
          ),
        ),
        (err: { code?: string }) => err.code === 'SQLITE_CONSTRAINT_UNIQUE',
      );
      assert.deepEqual(told, []);
      assert.equal((await db.selectFrom('t').select('id').where('id', '=', 6311n).execute()).length, 0);
    });

    test('a statement list runs in order in one message; an ifChanged statement runs only after a change', async () => {
      const result = await db.executeQuery(
        statements([
          { sql: 'insert into t (id, s) values (?, ?)', params: [4000, 'a'] },
          { sql: 'update t set s = ? where id = ?', params: ['b', 4000] },
          { sql: 'update t set s = ? where id = ?', params: ['never', 4999] },
          { sql: 'update t set s = ? where id = ?', params: ['skipped', 4000], ifChanged: true },
        ]),
      );
      assert.equal(result.numAffectedRows, 2n);
      const row = await db.selectFrom('t').select('s').where('id', '=', 4000n).executeTakeFirst();
      assert.equal(row?.s, 'b');
      assert.ok(thread.generation >= 1);
    });

    if (mainConnection)
    test('a transaction opened with the offload marker runs on the thread: a read outside it does not wait for its end', async () => {
      const outcome = await db.transaction().execute(async (trx) => {
        await trx.executeQuery(CompiledQuery.raw(OFFLOAD_SQL));
        await trx.insertInto('t').values({ id: 5000n, s: 'offloaded' }).execute();
        // On the main-thread connection this read would wait for the mutex until the transaction ends.
        const outside = db.selectFrom('t').select('s').where('id', '=', 5000n).execute();
        const seen = await Promise.race([outside, new Promise<'waited'>((r) => setTimeout(() => r('waited'), 10_000))]);
        const inside = await trx.selectFrom('t').select('s').where('id', '=', 5000n).executeTakeFirst();
        return { seen, inside: inside?.s };
      });
      assert.deepEqual(outcome, { seen: [], inside: 'offloaded' }, 'the outside read sees only committed rows, without waiting');
      const after = await db.selectFrom('t').select('s').where('id', '=', 5000n).executeTakeFirst();
      assert.equal(after?.s, 'offloaded');
    });
  });
}

describe('Store.transaction with offload', () => {
  for (const [name, sqliteWriterThread] of [['a file with the writer thread', 'on'], ['a file without it', 'off'], [':memory:', 'on']] as const)
  test(`commits and rolls back as any transaction (${name})`, async () => {
    const { openStore } = await import('../../src/store/open-store.ts');
    const database = name === ':memory:' ? ':memory:' : join(dir, `offload-${sqliteWriterThread}.db`);
    const store = await openStore({ database, sqliteSynchronous: 'normal', sqliteWriterThread });
    try {
      assert.equal(await store.transaction((tx) => tx.initSetting('offload-kept', 'yes'), { offload: true }), 'yes');
      await assert.rejects(
        store.transaction(async (tx) => {
          await tx.initSetting('offload-undone', 'no');
          throw new Error('undo');
        }, { offload: true }),
        /undo/,
      );
      assert.equal(await store.initSetting('offload-kept', 'other'), 'yes', 'the committed write stays');
      assert.equal(await store.initSetting('offload-undone', 'fresh'), 'fresh', 'the rolled-back write is gone');
    } finally {
      await store.close();
    }
  });
});

describe('Store.savepoint inside an offloaded transaction', () => {
  for (const [name, sqliteWriterThread] of [['with the writer thread', 'on'], ['without it', 'off']] as const)
  test(`a write under a savepoint that fails rejects the savepoint, and the transaction goes on and commits (${name})`, async () => {
    const { openStore } = await import('../../src/store/open-store.ts');
    // Every group commit on the thread: the attribute write below is a statement list whose result is unread.
    const store = await openStore({ database: join(dir, `savepoint-${sqliteWriterThread}.db`), sqliteSynchronous: 'normal', sqliteWriterThread, sqliteThreadMinParameters: 0 });
    try {
      await store.transaction(async (tx) => {
        await tx.initSetting('before-savepoint', 'yes');
        // No such device: the attribute row breaks its foreign key.
        await assert.rejects(tx.savepoint((sp) => sp.saveAttributes({ deviceId: 'no-such-device', scope: 'SERVER_SCOPE', entries: [{ key: 'k', value: { type: 'STRING', value: 'v' } }], ts: 1 })), /FOREIGN KEY/);
        await tx.initSetting('after-savepoint', 'yes');
      }, { offload: true });
      assert.equal(await store.initSetting('before-savepoint', 'no'), 'yes');
      assert.equal(await store.initSetting('after-savepoint', 'no'), 'yes');
    } finally {
      await store.close();
    }
  });
});

describe('SQLite writer thread that dies', () => {
  test('its requests fail as database unavailable, the next one starts a new thread, and an open transaction does not go on', async () => {
    const { db, thread } = await open('dies.db');
    try {
      await db.insertInto('t').values({ id: 1n, s: 'before' }).execute();
      const first = thread.generation;
      const outcome = db.transaction().execute(async (trx) => {
        await onThread(trx);
        await trx.insertInto('t').values({ id: 2n, s: 'in the lost transaction' }).execute();
        await (thread as unknown as { worker: { terminate(): Promise<number> } }).worker.terminate();
        await trx.insertInto('t').values({ id: 3n, s: 'must not commit on its own' }).execute();
      });
      await assert.rejects(outcome, (err) => err instanceof DependencyUnavailableError);
      await db.transaction().execute(async (trx) => {
        await onThread(trx);
        await trx.insertInto('t').values({ id: 4n, s: 'after' }).execute();
      });
      assert.ok(thread.generation > first, 'a new thread');
      const ids = (await db.selectFrom('t').select('id').orderBy('id').execute()).map((r) => r.id);
      assert.deepEqual(ids, [1n, 4n]);
    } finally {
      await db.destroy();
    }
  });

  test('a thread that cannot open its file fails its requests, and the next request starts a new one', async () => {
    const { db, thread } = await open('reopen.db');
    const options = (thread as unknown as { options: { path: string } }).options;
    const path = options.path;
    try {
      await thread.run([{ sql: 'insert into t (id, s) values (1, ?)', params: ['before'] }]);
      // Fault: the thread dies, and its replacement cannot open the file (a path that does not exist).
      options.path = join(path, 'missing', 'nope.db');
      await (thread as unknown as { worker: { terminate(): Promise<number> } }).worker.terminate();
      await assert.rejects(thread.run([{ sql: 'select 1', params: [] }]));
      options.path = path;
      await thread.run([{ sql: 'insert into t (id, s) values (2, ?)', params: ['after'] }]);
      const ids = (await db.selectFrom('t').select('id').orderBy('id').execute()).map((r) => r.id);
      assert.deepEqual(ids, [1n, 2n], 'writes work again once the file can be opened');
    } finally {
      options.path = path;
      await db.destroy();
    }
  });

  test('a thread that dies as soon as it starts is replaced after a doubling cool-down, not in a tight loop', async () => {
    const path = join(dir, 'cool-down.db');
    const restarts: { delayMs: number; cause: string; quickDeaths: number }[] = [];
    const thread = new SqliteWriterThread({ path, synchronous: 'normal', autocheckpoint: 10_000 }, (info) => void restarts.push(info));
    await thread.start();
    const options = (thread as unknown as { options: { path: string } }).options;
    try {
      await thread.run([{ sql: 'create table t (id integer primary key)', params: [] }]);
      // Fault: every new thread dies at once (its file cannot be opened: a path under a file).
      options.path = join(path, 'missing', 'nope.db');
      await (thread as unknown as { worker: { terminate(): Promise<number> } }).worker.terminate();
      const first = thread.generation;
      const failedAt = [Date.now()];
      for (let i = 0; i < 5; i++) {
        await assert.rejects(thread.run([{ sql: 'select 1', params: [] }]));
        failedAt.push(Date.now());
      }
      assert.equal(thread.generation, first + 5, 'one new thread per request, none in between');
      assert.deepEqual(restarts.map((r) => r.delayMs), [100, 200, 400, 800, 1600, 3200], 'the cool-down doubles while each new thread dies at once');
      assert.match(restarts[1].cause, /unable to open database file|directory|not a directory/i);
      for (let i = 0; i < 5; i++) assert.ok(failedAt[i + 1] - failedAt[i] >= restarts[i].delayMs - 5, `thread ${i + 1} started only after its cool-down of ${restarts[i].delayMs} ms`);
      // Requests that arrive during a cool-down wait for it together: one new thread for all of them.
      options.path = path; // the fault is gone
      const before = thread.generation;
      const results = await Promise.all(Array.from({ length: 10 }, (_, i) => thread.run([{ sql: 'insert into t (id) values (?)', params: [i] }])));
      assert.equal(results.length, 10);
      assert.equal(thread.generation, before + 1, 'one thread started for the ten waiting requests');
      const [count] = await thread.run([{ sql: 'select count(*) as n from t', params: [] }]);
      assert.equal(Number(count.rows![0].n), 10);
    } finally {
      options.path = path;
      await thread.close();
    }
  });

  test('closing answers later requests with database unavailable', async () => {
    const { db, thread } = await open('closed.db', false);
    await db.destroy();
    await assert.rejects(thread.run([{ sql: 'select 1', params: [] }]), (err) => err instanceof DependencyUnavailableError);
    await assert.rejects(db.executeQuery(CompiledQuery.raw('select 1')));
  });
});

describe('config sqliteWriterThread', () => {
  test('on (the default) starts a writer thread for a file, off and :memory: do not; all three store and read', async () => {
    const { loadConfig } = await import('../../src/config.ts');
    const { openStore } = await import('../../src/store/open-store.ts');
    assert.equal(loadConfig({ env: {} }).sqliteWriterThread, 'on');
    assert.equal(loadConfig({ env: { FLEETGATE_SQLITE_WRITER_THREAD: 'off' } }).sqliteWriterThread, 'off');
    for (const [database, sqliteWriterThread, threads] of [
      [join(dir, 'config-on.db'), 'on', 1],
      [join(dir, 'config-off.db'), 'off', 0],
      [':memory:', 'on', 0],
    ] as const) {
      const before = SqliteWriterThread.open.size;
      const store = await openStore({ database, sqliteSynchronous: 'normal', sqliteWriterThread });
      try {
        assert.equal(SqliteWriterThread.open.size - before, threads, `${database} ${sqliteWriterThread}`);
        await store.writeBatch({ telemetry: [{ deviceId: 'd', key: 'k', ts: 1, value: { type: 'LONG', value: 7 } }], attributes: [] });
        const latest = await store.getLatestTimeseries('d', ['k']);
        assert.equal(latest.get('k')?.ts, 1);
      } finally {
        await store.close();
      }
    }
  });
});

describe('SQLite writer thread with a full database (SQLITE_FULL)', () => {
  test('thread, main-thread and plain writes fail as database unavailable, free the mutex, and work again once space returns', async () => {
    const path = join(dir, 'full.db');
    const thread = new SqliteWriterThread({ path, synchronous: 'normal', autocheckpoint: 10_000, maxSizeMb: 1 });
    await thread.start();
    const local = new BetterSqlite3(path, { fileMustExist: true });
    local.defaultSafeIntegers(true);
    local.pragma('busy_timeout = 5000');
    const pageSize = Number(local.pragma('page_size', { simple: true }));
    local.pragma(`max_page_count = ${Math.floor((1024 * 1024) / pageSize)}`);
    const db = new Kysely<Tables>({ dialect: new SqliteWriterDialect({ thread, path, local }) });
    try {
      await sql`create table t (id integer primary key, b blob, n integer, s text unique)`.execute(db);
      const blob = Buffer.alloc(64 * 1024, 7);
      let id = 1n;
      const fill = async (how: 'thread' | 'main thread' | 'plain') => {
        for (let i = 0; i < 100; i++) {
          if (how === 'plain') await db.insertInto('t').values({ id: id++, b: blob }).execute();
          else
            await db.transaction().execute(async (trx) => {
              if (how === 'thread') await onThread(trx);
              await trx.insertInto('t').values({ id: id++, b: blob }).execute();
            });
        }
      };
      for (const how of ['thread', 'main thread', 'plain'] as const) {
        await assert.rejects(fill(how), (err) => err instanceof DependencyUnavailableError && (err.cause as { code?: string } | undefined)?.code === 'SQLITE_FULL', how);
        // The mutex is free and nothing is left open: a read answers, and a write works once space returns.
        assert.ok((await db.selectFrom('t').select('id').execute()).length > 0);
        await db.deleteFrom('t').where('id', '>', 2n).execute();
        await db.transaction().execute(async (trx) => {
          await onThread(trx);
          await trx.insertInto('t').values({ id: id++, s: `resumed ${how}` }).execute();
        });
      }
      assert.equal(local.inTransaction, false);
    } finally {
      await db.destroy();
    }
  });
});

test('a statement list weighs its parameters, or an op its weight where it has one (a chunk weighs what its rows would)', () => {
  assert.equal(parameterCount([{ sql: 'x', params: [1, 'a', null] }, { sql: 'y', params: [2] }]), 4);
  assert.equal(parameterCount([{ sql: 'x', params: [1, 'a', null] }, { sql: 'y', params: [2], weight: 300 }]), 303);
});
