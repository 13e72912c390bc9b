/**
 * Pipelined group commits on the SQLite writer thread (sqlite-writer-dialect.ts, `pipelined`): a transaction sent to
 * the thread whole (BEGIN, an unread statement list, COMMIT) frees the write mutex once sent, so the next one is sent
 * before the first is answered. Each still resolves only after its own COMMIT returned; one that fails is rolled back
 * on the thread and takes nothing of the next with it; work on the main-thread connection waits for them first.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import BetterSqlite3 from 'better-sqlite3';
import { Kysely, sql } from 'kysely';
import { SqliteWriterThread, type WriterOp } from '../../src/store/sqlite-writer-thread.ts';
import { SqliteWriterDialect, statements } from '../../src/store/sqlite-writer-dialect.ts';
import { GroupCommitter } from '../../src/core/group-commit.ts';
import { silentLogger } from '../support/core.ts';

const dir = mkdtempSync(join(tmpdir(), 'fleetgate-pipelined-'));
after(() => rmSync(dir, { recursive: true, force: true }));

interface Tables {
  t: { id: number; s: string | null };
}

/** The store's dialect over a writer thread, with `events` recording each message sent and answered. */
async function open(name: string, pipelined: boolean) {
  const path = join(dir, name);
  const thread = new SqliteWriterThread({ path, synchronous: 'normal', autocheckpoint: 10_000 });
  await thread.start();
  const local = new BetterSqlite3(path, { fileMustExist: true });
  local.pragma('busy_timeout = 5000');
  const events: string[] = [];
  let n = 0;
  const run = thread.run.bind(thread);
  thread.run = (ops, generation, whole) => {
    const i = ++n;
    events.push(`send ${i}`);
    const answer = run(ops, generation, whole);
    answer.then(
      () => events.push(`answer ${i}`),
      () => events.push(`failed ${i}`),
    );
    return answer;
  };
  const db = new Kysely<Tables>({ dialect: new SqliteWriterDialect({ thread, path, local, pipelined }) });
  await sql`create table t (id integer primary key, s text unique)`.execute(db);
  /** Forgets what was recorded (numbering starts again at 1). */
  const reset = () => {
    events.length = 0;
    n = 0;
  };
  reset();
  return { db, events, local, reset };
}

/** A group commit's shape: one unread statement list inserting `rows`. */
const groupCommit = (db: Kysely<Tables>, rows: [number, string][]) =>
  db.transaction().execute((trx) => trx.executeQuery(statements(rows.map(([id, s]): WriterOp => ({ sql: 'insert into t (id, s) values (?, ?)', params: [id, s] })), true)));

const ids = (local: BetterSqlite3.Database) => (local.prepare('select id from t order by id').all() as { id: number }[]).map((r) => r.id);

describe('pipelined group commits on the SQLite writer thread', () => {
  test('the second group commit is sent before the first is answered; each resolves after its own COMMIT', async () => {
    const { db, events, local } = await open('order.db', true);
    try {
      const seen: number[][] = [];
      const first = groupCommit(db, [[1, 'a'], [2, 'b']]).then(() => seen.push(ids(local)));
      const second = groupCommit(db, [[3, 'c']]).then(() => seen.push(ids(local)));
      await Promise.all([first, second]);
      assert.deepEqual(events, ['send 1', 'send 2', 'answer 1', 'answer 2']);
      // Each saw its own rows committed when it resolved (a read on the main connection sees committed rows only).
      assert.ok(seen[0].includes(1) && seen[0].includes(2), `first resolved seeing ${seen[0]}`);
      assert.deepEqual(seen[1], [1, 2, 3]);
    } finally {
      await db.destroy();
    }
  });

  test('without pipelining the second waits for the first answer (the control for the test above)', async () => {
    const { db, events } = await open('serial.db', false);
    try {
      await Promise.all([groupCommit(db, [[1, 'a']]), groupCommit(db, [[2, 'b']])]);
      assert.deepEqual(events, ['send 1', 'answer 1', 'send 2', 'answer 2']);
    } finally {
      await db.destroy();
    }
  });

  test('a group commit that fails is rolled back whole on the thread; the one sent behind it commits', async () => {
    const { db, events, local, reset } = await open('failure.db', true);
    try {
      await groupCommit(db, [[1, 'taken']]);
      reset();
      // The second row's unique value is taken: the statement fails after the first row was inserted.
      const failing = groupCommit(db, [[2, 'fresh'], [3, 'taken']]);
      const next = groupCommit(db, [[4, 'next']]);
      const [a, b] = await Promise.allSettled([failing, next]);
      assert.equal(a.status, 'rejected');
      assert.match(String((a as PromiseRejectedResult).reason), /UNIQUE/);
      assert.equal(b.status, 'fulfilled');
      assert.deepEqual(events, ['send 1', 'send 2', 'failed 1', 'answer 2']);
      assert.deepEqual(ids(local), [1, 4], 'nothing of the failed group commit, all of the next');
      // The thread's connection is not left inside a transaction: a later transaction there commits and rolls back.
      await groupCommit(db, [[5, 'later']]);
      await assert.rejects(groupCommit(db, [[6, 'six'], [7, 'later']]), /UNIQUE/);
      assert.deepEqual(ids(local), [1, 4, 5]);
    } finally {
      await db.destroy();
    }
  });

  test('a transaction on the main-thread connection waits for group commits in flight, and sees them', async () => {
    const { db, local } = await open('local.db', true);
    try {
      const rows = Array.from({ length: 2000 }, (_, i): [number, string] => [i + 1, `r${i}`]);
      const inFlight = groupCommit(db, rows);
      // Starts with a plain statement: it runs on the main connection, which must not meet the thread's write lock.
      const counted = db.transaction().execute(async (trx) => {
        const { c } = await trx.selectNoFrom(sql<number>`(select count(*) from t)`.as('c')).executeTakeFirstOrThrow();
        await trx.insertInto('t').values({ id: 10_000, s: 'local' }).execute();
        return c;
      });
      const [, c] = await Promise.all([inFlight, counted]);
      assert.equal(Number(c), 2000, 'the main-connection transaction ran after the group commit sent before it');
      assert.equal(ids(local).length, 2001);
    } finally {
      await db.destroy();
    }
  });

  test('GroupCommitter with two commits in flight settles every submission after its commit, in order', async () => {
    const { db, events, local } = await open('committer.db', true);
    try {
      // A store whose writeBatch is one group commit of the batch's points (id from ts, s from key).
      const store = {
        async writeBatch(batch: { telemetry: { ts: number; key: string }[] }) {
          await groupCommit(db, batch.telemetry.map((p): [number, string] => [p.ts, p.key]));
        },
      };
      const committer = new GroupCommitter(store as never, { maxRows: 2, maxDelayMs: 0, inFlight: 2 }, silentLogger);
      const settled: number[] = [];
      const submissions = Array.from({ length: 6 }, (_, i) =>
        committer.submit([{ deviceId: 'd', ts: i + 1, key: `k${i}`, value: { type: 'LONG', value: i } }]).then(() => {
          assert.ok(ids(local).includes(i + 1), `submission ${i + 1} resolved before its commit`);
          settled.push(i + 1);
        }),
      );
      await Promise.all(submissions);
      await committer.close();
      assert.deepEqual(settled, [1, 2, 3, 4, 5, 6]);
      assert.deepEqual(ids(local), [1, 2, 3, 4, 5, 6]);
      // Three batches of two, and at least once the next was sent before the previous was answered.
      const sends = events.filter((e) => e.startsWith('send')).length;
      assert.equal(sends, 3);
      assert.ok(events.indexOf('send 2') < events.indexOf('answer 1'), `pipelined: ${events.join(', ')}`);
    } finally {
      await db.destroy();
    }
  });
});
