/**
 * The outbox in the store, on SQLite and on a real PostgreSQL: completing a batch deletes exactly the rows delivered
 * (SQLite deletes them as one seq range) and keeps rows that were committed after the batch was read, in any lane;
 * rows of several messages; rows left waiting by the release before migration 012; and, on SQLite, a batch write
 * telling each outbox row its seq once committed, so delivery takes the rows from memory (ExportDelivery.remember).
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import BetterSqlite3 from 'better-sqlite3';
import { CompiledQuery, Kysely, Migrator, PostgresDialect, SqliteDialect, sql } from 'kysely';
import pg from 'pg';
import { postgresDialect, sqliteDialect, type Dialect } from '../../src/store/dialect.ts';
import { migrationProvider } from '../../src/store/migrate.ts';
import { compactByDevice, compactRow } from '../../src/core/export/compact-telemetry.ts';
import { packMessages, partitionOf, unpackMessages, type ExportRule, type OutboxEntry, type OutboxRow } from '../../src/core/export/model.ts';
import type { Database } from '../../src/store/schema.ts';
import type { Store } from '../../src/core/ports/store.ts';
import { openSqliteStore } from '../../src/store/sqlite.ts';
import { SqliteWriterThread } from '../../src/store/sqlite-writer-thread.ts';
import { skipUnlessPostgres } from '../support/postgres.ts';
import { startPostgresStore } from '../support/postgres-store.ts';
import { startSqliteStore } from '../support/sqlite-store.ts';

const rule: ExportRule = {
  id: 'a0000000-0000-4000-8000-000000000001',
  tenantId: 't',
  name: 'r',
  profileId: null,
  kinds: ['telemetry'],
  destination: { type: 'webhook', url: 'http://127.0.0.1:9/', headers: {}, secret: null, batchSize: 3, timeoutMs: 1000 },
  enabled: true,
  createdTime: 1,
  lanes: 16,
};
const entry = (partition: number, n: number): OutboxEntry => ({ ruleId: rule.id, partition, deviceId: `d${partition}`, kind: 'telemetry', createdTime: n, payload: `{"n":${n}}` });

/** Opens a store; with `before` run on a database migrated only up to 011 first (rows written by the previous release). */
type Opener = (before?: (db: Kysely<any>) => Promise<void>) => Promise<{ store: Store; close(): Promise<void> }>;

/** Migrates `db` up to 011-export and writes outbox rows as that release did: one message each, no messages column. */
async function rowsOf011(db: Kysely<any>, dialect: Dialect): Promise<void> {
  const result = await new Migrator({ db, provider: migrationProvider(dialect) }).migrateTo('011-export');
  if (result.error) throw result.error;
  await db.insertInto('export_rule').values({ id: rule.id, tenant_id: rule.tenantId, name: rule.name, profile_id: null, kinds: '["telemetry"]', destination: JSON.stringify(rule.destination), enabled: 1, created_time: 1 }).execute();
  await db.insertInto('export_lane').values(Array.from({ length: 16 }, (_, part) => ({ rule_id: rule.id, part, owner: null, lease_until: 0, attempts: 0, next_attempt_time: 0, last_error: null }))).execute();
  await db.insertInto('export_outbox').values([1, 2, 3].map((n) => ({ rule_id: rule.id, part: 5, device_id: `d${n}`, kind: 'telemetry', created_time: n, payload: `{"n":${n}}` }))).execute();
}

function outboxContract(name: string, open: Opener, dialect: Dialect, options: { skip?: string | false } = {}) {
  describe(`export outbox on ${name}`, { skip: options.skip }, () => {
    it('upgrading from 011 keeps the rows waiting, each one message, delivered in order', async () => {
      const { store, close } = await open((db) => rowsOf011(db, dialect));
      try {
        assert.equal((await store.exports.countOutbox()).get(rule.id), 3);
        await store.exports.claimLanes('node-a', Date.now(), 30_000, 16);
        const rows = await store.exports.readOutbox(rule.id, 5, 2);
        assert.deepEqual(rows.flatMap((r) => unpackMessages(r)).map((m) => [m.deviceId, m.payload, m.id]), [
          ['d1', '{"n":1}', String(rows[0].seq)],
          ['d2', '{"n":2}', String(rows[1].seq)],
        ]);
        assert.equal(await store.exports.completeBatch('node-a', rule.id, 5, rows.map((r) => r.seq)), true);
        assert.deepEqual((await store.exports.readOutbox(rule.id, 5, 10)).map((r) => r.payload), ['{"n":3}']);
      } finally {
        await close();
      }
    });

    it('completing a batch deletes the rows delivered and keeps those written after the read', async () => {
      const { store, close } = await open();
      try {
        await store.exports.insertRule(rule);
        await store.exports.insertOutbox([entry(1, 1), entry(2, 2), entry(1, 3), entry(1, 4), entry(1, 5)]);
        const [lane] = await store.exports.claimLanes('node-a', Date.now(), 30_000, 1);
        assert.ok(lane, 'a lane with rows is claimed');
        const read = await store.exports.readOutbox(rule.id, 1, 3);
        assert.deepEqual(read.map((r) => r.payload), ['{"n":1}', '{"n":3}', '{"n":4}']);
        // Written after the read, in the same lane and in another one.
        await store.exports.insertOutbox([entry(1, 6), entry(2, 7)]);
        assert.equal(await store.exports.completeBatch('node-a', rule.id, 1, read.map((r) => r.seq)), true);
        assert.deepEqual((await store.exports.readOutbox(rule.id, 1, 10)).map((r) => r.payload), ['{"n":5}', '{"n":6}']);
        assert.deepEqual((await store.exports.readOutbox(rule.id, 2, 10)).map((r) => r.payload), ['{"n":2}', '{"n":7}']);
        // A node that lost the lane deletes nothing.
        const rest = await store.exports.readOutbox(rule.id, 1, 10);
        assert.equal(await store.exports.completeBatch('node-b', rule.id, 1, rest.map((r) => r.seq)), false);
        assert.equal((await store.exports.countOutbox()).get(rule.id), 4);
      } finally {
        await close();
      }
    });

    it('completing the batches of several lanes at once deletes what each delivered, not where the lease was lost', async () => {
      const { store, close } = await open();
      try {
        await store.exports.insertRule(rule);
        await store.exports.insertOutbox([entry(1, 1), entry(2, 2), entry(3, 3), entry(1, 4), entry(2, 5), entry(3, 6)]);
        const lanes = await store.exports.claimLanes('node-a', Date.now(), 30_000, 16);
        assert.deepEqual(lanes.map((l) => l.partition).sort(), [1, 2, 3]);
        const read = new Map<number, number[]>();
        for (const part of [1, 2, 3]) read.set(part, (await store.exports.readOutbox(rule.id, part, 1)).map((r) => r.seq));
        // Written after the reads, in every lane; lane 3 is taken over by another node meanwhile.
        await store.exports.insertOutbox([entry(1, 7), entry(2, 8), entry(3, 9)]);
        await store.exports.claimLanes('node-b', Date.now() + 60_000, 30_000, 16);
        const batches = [1, 2, 3].map((part) => ({ ruleId: rule.id, partition: part, seqs: read.get(part)! }));
        assert.deepEqual(await store.exports.completeBatches('node-a', batches), [false, false, false], 'node-b holds every lane now');
        assert.equal((await store.exports.countOutbox()).get(rule.id), 9);
        assert.deepEqual(await store.exports.completeBatches('node-b', batches.slice(0, 2)), [true, true]);
        assert.deepEqual((await store.exports.readOutbox(rule.id, 1, 10)).map((r) => r.payload), ['{"n":4}', '{"n":7}']);
        assert.deepEqual((await store.exports.readOutbox(rule.id, 2, 10)).map((r) => r.payload), ['{"n":5}', '{"n":8}']);
        assert.deepEqual((await store.exports.readOutbox(rule.id, 3, 10)).map((r) => r.payload), ['{"n":3}', '{"n":6}', '{"n":9}']);
      } finally {
        await close();
      }
    });

    it('completing the batches of several lanes at once deletes only those of the lanes still held, and resets them', async () => {
      const { store, close } = await open();
      try {
        await store.exports.insertRule(rule);
        await store.exports.insertOutbox([entry(1, 1), entry(2, 2), entry(3, 3), entry(1, 4), entry(2, 5), entry(3, 6)]);
        await store.exports.claimLanes('node-a', Date.now(), 30_000, 16);
        await store.exports.failBatch('node-a', rule.id, 1, Date.now() + 1, 'HTTP 500');
        const read = new Map<number, number[]>();
        for (const part of [1, 2, 3]) read.set(part, (await store.exports.readOutbox(rule.id, part, 1)).map((r) => r.seq));
        // Lane 2 is taken over by another node (its lease ran out) between the read and the completion.
        await sql`update export_lane set owner = 'node-b' where part = 2`.execute((store as unknown as { db: Kysely<Database> }).db);
        const batches = [1, 2, 3].map((part) => ({ ruleId: rule.id, partition: part, seqs: read.get(part)! }));
        // An empty batch only resets its lane.
        const kept = await store.exports.completeBatches('node-a', [...batches, { ruleId: rule.id, partition: 4, seqs: [] }]);
        assert.deepEqual(kept, [true, false, true, false], 'lane 4 was never claimed (no rows)');
        assert.deepEqual((await store.exports.readOutbox(rule.id, 1, 10)).map((r) => r.payload), ['{"n":4}']);
        assert.deepEqual((await store.exports.readOutbox(rule.id, 2, 10)).map((r) => r.payload), ['{"n":2}', '{"n":5}'], 'the lost lane keeps its rows');
        assert.deepEqual((await store.exports.readOutbox(rule.id, 3, 10)).map((r) => r.payload), ['{"n":6}']);
        const lane1 = (await store.exports.listLanes(rule.id)).find((l) => l.partition === 1)!;
        assert.deepEqual([lane1.attempts, lane1.nextAttemptTime, lane1.lastError], [0, 0, null], 'the retry state of a completed lane is reset');
      } finally {
        await close();
      }
    });

    it('reads rows of several messages up to a batch of messages, and dead-letters each message on its own', async () => {
      const { store, close } = await open();
      try {
        await store.exports.insertRule(rule);
        // A row written before migration 012 (no messages column given) holds one message.
        await sql`insert into export_outbox (rule_id, part, device_id, kind, created_time, payload) values (${rule.id}, 3, 'old', 'telemetry', 1, '{"n":0}')`.execute((store as unknown as { db: Kysely<Database> }).db);
        const packed = (devices: string[], n: number): OutboxEntry => ({
          ...entry(3, n),
          deviceId: null,
          payload: packMessages(devices.map((d) => ({ deviceId: d, payload: `{"n":${n},"d":"${d}"}` }))),
          messages: devices.length,
        });
        await store.exports.insertOutbox([packed(['a', 'b'], 1), packed(['a', 'b', 'c'], 2), entry(3, 3)]);
        assert.equal((await store.exports.countOutbox()).get(rule.id), 7, 'messages are counted, not rows');
        await store.exports.claimLanes('node-a', Date.now(), 30_000, 16);
        // batchSize 3: the old row and the first packed row (3 messages); the next row would not fit.
        const first = await store.exports.readOutbox(rule.id, 3, 3);
        assert.deepEqual(first.map((r) => r.messages), [1, 2]);
        const ids = first.flatMap((r) => unpackMessages(r));
        assert.deepEqual(ids.map((m) => m.deviceId), ['old', 'a', 'b']);
        assert.equal(new Set(ids.map((m) => m.id)).size, 3, 'every message has its own id');
        // A row larger than the batch still goes alone (never stuck).
        assert.equal((await store.exports.readOutbox(rule.id, 3, 1)).length, 1);
        await store.exports.deadLetter('node-a', first, 4, 'HTTP 500', 99);
        const letters = await store.exports.listDeadLetters([rule.id], { pageSize: 10, page: 0 });
        assert.deepEqual(letters.data.map((l) => [l.deviceId, l.payload, l.lastError]), [
          ['old', '{"n":0}', 'HTTP 500'],
          ['a', '{"n":1,"d":"a"}', 'HTTP 500'],
          ['b', '{"n":1,"d":"b"}', 'HTTP 500'],
        ]);
        const seqs = letters.data.map((l) => l.seq);
        assert.equal(new Set(seqs).size, 3, 'each dead letter has its own seq');
        const waiting = await store.exports.readOutbox(rule.id, 3, 100);
        for (const s of seqs) assert.ok(!waiting.some((r) => r.seq === s), 'no dead letter shares a seq with an outbox row');
        assert.equal(await store.exports.replayDeadLetters([rule.id], [seqs[2]]), 1);
        // Replayed into its device's lane as the rule has it now (this test wrote the rows to lane 3 whatever their device).
        const replayed = (await store.exports.readOutbox(rule.id, partitionOf('b'), 100)).at(-1)!;
        assert.deepEqual([replayed.deviceId, replayed.payload, replayed.messages], ['b', '{"n":1,"d":"b"}', 1]);
        assert.equal((await store.exports.countOutbox()).get(rule.id), 5);
      } finally {
        await close();
      }
    });

    it('stores compact telemetry rows (their points as bytes) and reads them back; dead letters of them hold the JSON', async () => {
      const { store, close } = await open();
      try {
        await store.exports.insertRule(rule);
        const points = ['x', 'y'].flatMap((deviceId, d) => [1, 2].map((n) => ({ deviceId, ts: 1_700_000_000_000 + n, key: 't', value: { type: 'DOUBLE' as const, value: d + n / 10 } })));
        const devices = [...compactByDevice(points)].map(([deviceId, numbers]) => ({ deviceId, prefix: `{"deviceName":"${deviceId}","telemetry":`, numbers }));
        const compact = (n: number): OutboxEntry => ({ ...entry(6, n), deviceId: null, payload: '', points: compactRow(devices), messages: 2 });
        const want = [
          ['x', '{"deviceName":"x","telemetry":[{"ts":1700000000001,"values":{"t":0.1}},{"ts":1700000000002,"values":{"t":0.2}}]}'],
          ['y', '{"deviceName":"y","telemetry":[{"ts":1700000000001,"values":{"t":1.1}},{"ts":1700000000002,"values":{"t":1.2}}]}'],
        ];
        // A small batch (the main-thread connection on SQLite) and one of more than 8,000 parameters (the writer thread).
        await store.writeBatch({ telemetry: [], attributes: [], outbox: [compact(1)] });
        await store.writeBatch({ telemetry: [], attributes: [], outbox: [compact(2), ...Array.from({ length: 1200 }, (_, i) => entry(7, i))] });
        const rows = await store.exports.readOutbox(rule.id, 6, 100);
        assert.deepEqual(rows.map((r) => [r.payload, r.messages, Buffer.isBuffer(r.points)]), [['', 2, true], ['', 2, true]]);
        for (const r of rows) assert.deepEqual(unpackMessages(r).map((m) => [m.deviceId, m.payload]), want);
        assert.equal((await store.exports.countOutbox()).get(rule.id), 1204);
        await store.exports.claimLanes('node-a', Date.now(), 30_000, 16);
        await store.exports.deadLetter('node-a', rows.slice(0, 1), 2, 'HTTP 500', 99);
        const letters = await store.exports.listDeadLetters([rule.id], { pageSize: 10, page: 0 });
        assert.deepEqual(letters.data.map((l) => [l.deviceId, l.payload]), want, 'each message a dead letter with its JSON');
        assert.equal(await store.exports.replayDeadLetters([rule.id], undefined), 2);
        // Each into its device's lane (the test wrote the compact rows to lane 6 whatever their devices).
        const replayed: OutboxRow[] = [];
        for (const d of ['x', 'y']) replayed.push(...(await store.exports.readOutbox(rule.id, partitionOf(d), 100_000)).filter((r) => !r.points && r.deviceId === d));
        assert.deepEqual(replayed.flatMap((r) => unpackMessages(r)).map((m) => [m.deviceId, m.payload]), want, 'replayed as text rows');
      } finally {
        await close();
      }
    });

    it('a node that lost the lane\'s lease dead-letters nothing: the batch is dead-lettered once, by the lane\'s holder', async () => {
      const { store, close } = await open();
      try {
        await store.exports.insertRule(rule);
        const packed: OutboxEntry = { ...entry(6, 2), deviceId: null, payload: packMessages([{ deviceId: 'a', payload: '{"n":2}' }, { deviceId: 'b', payload: '{"n":3}' }]), messages: 2 };
        await store.exports.insertOutbox([entry(6, 1), packed]);
        assert.equal((await store.exports.claimLanes('node-a', 1_000, 30_000, 16)).length, 1);
        const readByA = await store.exports.readOutbox(rule.id, 6, 10);
        // node-a's lease expires; node-b claims the lane and reads the same batch.
        assert.equal((await store.exports.claimLanes('node-b', 40_000, 30_000, 16)).length, 1);
        const readByB = await store.exports.readOutbox(rule.id, 6, 10);
        assert.equal(await store.exports.deadLetter('node-a', readByA, 3, 'HTTP 500', 41_000), false, 'node-a no longer holds the lane');
        assert.equal((await store.exports.listDeadLetters([rule.id], { pageSize: 10, page: 0 })).data.length, 0, 'nothing dead-lettered by node-a');
        assert.equal((await store.exports.countOutbox()).get(rule.id), 3, 'the rows stay for node-b');
        assert.equal(await store.exports.deadLetter('node-b', readByB, 3, 'HTTP 500', 42_000), true);
        assert.equal(await store.exports.deadLetter('node-a', readByA, 3, 'HTTP 500', 43_000), false);
        const letters = await store.exports.listDeadLetters([rule.id], { pageSize: 10, page: 0 });
        assert.deepEqual(letters.data.map((l) => [l.deviceId, l.payload]), [['d6', '{"n":1}'], ['a', '{"n":2}'], ['b', '{"n":3}']], 'each message once');
        assert.equal((await store.exports.countOutbox()).get(rule.id) ?? 0, 0);
      } finally {
        await close();
      }
    });

    it('a batch write tells each outbox row its seq after the commit (SQLite), and reads take rows from memory only when it has them all', async () => {
      const { store, close } = await open();
      try {
        await store.exports.insertRule(rule);
        // A small batch (on the main-thread connection) and one of more than 8,000 parameters (on the writer thread),
        // each over several INSERTs of 500 rows.
        for (const size of [3, 1201]) {
          const entries = Array.from({ length: size }, (_, i) => entry(4 + (i % 2), size * 10_000 + i));
          // Messages to the SQLite writer thread (if this store has one) during the write.
          const threads = [...SqliteWriterThread.open];
          const runs = threads.map((t) => t.run);
          let messages = 0;
          threads.forEach((t, i) => (t.run = (ops, generation) => (messages++, runs[i].call(t, ops, generation))));
          try {
            await store.writeBatch({ telemetry: [], attributes: [], outbox: entries });
          } finally {
            threads.forEach((t, i) => (t.run = runs[i]));
          }
          // The rows, the statement telling their seqs and the COMMIT in one message: no round trip more than a
          // group commit without export rows (issue 16).
          if (threads.length > 0 && size > 1000) assert.equal(messages, 1, 'one message to the writer thread');
          const stored = new Map<number, string>();
          for (const part of [4, 5]) for (const row of await store.exports.readOutbox(rule.id, part, 100_000)) stored.set(row.seq, row.payload);
          if (dialect.name !== 'sqlite') {
            assert.ok(entries.every((e) => e.seq === undefined), 'PostgreSQL leaves seqs unset');
            continue;
          }
          assert.equal(new Set(entries.map((e) => e.seq)).size, size, 'every row has its own seq');
          for (const e of entries) assert.equal(stored.get(e.seq!), e.payload, `seq ${e.seq} holds the row it was reported for`);
          const written = new Map(entries.map((e) => [e.seq!, { ...e, seq: e.seq! }]));
          const fromMemory = await store.exports.readOutbox(rule.id, 4, 100_000, (seq) => written.get(seq));
          const lane4 = entries.filter((e) => e.partition === 4).map((e) => [e.seq, e.payload]);
          assert.deepEqual(fromMemory.map((r) => [r.seq, r.payload]), lane4, 'the lane\'s rows, in order');
          assert.ok(fromMemory.every((r) => r === written.get(r.seq)), 'the rows are those remembered');
          // One row missing from memory: all are read from the database, the same rows.
          written.delete(entries[size - 1 - ((size - 1) % 2)].seq!);
          const fromDatabase = await store.exports.readOutbox(rule.id, 4, 100_000, (seq) => written.get(seq));
          assert.deepEqual(fromDatabase.map((r) => [r.seq, r.payload]), fromMemory.map((r) => [r.seq, r.payload]));
          assert.ok(fromDatabase.every((r) => r !== written.get(r.seq)), 'read from the database');
          await store.exports.claimLanes('node-a', Date.now(), 30_000, 16);
          for (const part of [4, 5]) assert.equal(await store.exports.completeBatch('node-a', rule.id, part, (await store.exports.readOutbox(rule.id, part, 100_000)).map((r) => r.seq)), true);
        }
      } finally {
        await close();
      }
    });
  });
}

outboxContract(
  'SQLite',
  (before) =>
    startSqliteStore(
      before &&
        (async (path) => {
          const db = new Kysely<any>({ dialect: new SqliteDialect({ database: new BetterSqlite3(path) }) });
          await before(db);
          await db.destroy();
        }),
    ),
  sqliteDialect,
);

outboxContract('SQLite without the writer thread', async (before) => {
  const dir = mkdtempSync(join(tmpdir(), 'fleetgate-outbox-'));
  if (before) {
    const db = new Kysely<any>({ dialect: new SqliteDialect({ database: new BetterSqlite3(join(dir, 'db.sqlite')) }) });
    await before(db);
    await db.destroy();
  }
  const store = await openSqliteStore(join(dir, 'db.sqlite'), { synchronous: 'normal', writerThread: false });
  return {
    store,
    async close() {
      await store.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}, sqliteDialect);

outboxContract(
  'PostgreSQL',
  (before) =>
    startPostgresStore(
      before &&
        (async (url) => {
          const db = new Kysely<any>({ dialect: new PostgresDialect({ pool: new pg.Pool({ connectionString: url, max: 1 }) }) });
          await before(db);
          await db.destroy();
        }),
    ),
  postgresDialect,
  { skip: skipUnlessPostgres() },
);

describe('a delivery round\'s completion on SQLite', () => {
  it('runs its UPDATEs and DELETEs on the writer thread, not on the event loop\'s connection', async () => {
    const { store, close } = await startSqliteStore();
    // Statements run on this thread's connections go through better-sqlite3's Statement prototype; the writer
    // thread's run in its own isolate.
    const probe = new BetterSqlite3(':memory:');
    const proto = Object.getPrototypeOf(probe.prepare('select 1')) as { run: (...args: unknown[]) => unknown };
    probe.close();
    const original = proto.run;
    const here: string[] = [];
    try {
      await store.exports.insertRule(rule);
      await store.exports.insertOutbox([entry(1, 1), entry(2, 2), entry(1, 3)]);
      await store.exports.claimLanes('node-a', Date.now(), 30_000, 16);
      const batches = [];
      for (const part of [1, 2]) batches.push({ ruleId: rule.id, partition: part, seqs: (await store.exports.readOutbox(rule.id, part, 10)).map((r) => r.seq) });
      proto.run = function (this: { source: string }, ...args: unknown[]) {
        here.push(this.source);
        return original.apply(this, args);
      };
      assert.deepEqual(await store.exports.completeBatches('node-a', batches), [true, true]);
      proto.run = original;
      assert.deepEqual(here.filter((text) => /export_(outbox|lane)/.test(text)), [], 'no statement of the completion ran here');
      assert.equal((await store.exports.countOutbox()).get(rule.id) ?? 0, 0, 'the rows are deleted');
    } finally {
      proto.run = original;
      await close();
    }
  });

  it('updates the lane with the statement and parameters Kysely compiles for completeExportBatch', async () => {
    const { completeExportBatchOps } = await import('../../src/store/kysely/export-queries.ts');
    const db = new Kysely<Database>({ dialect: new SqliteDialect({ database: new BetterSqlite3(':memory:') }) });
    try {
      const compiled = db.updateTable('export_lane').set({ attempts: 0, next_attempt_time: 0, last_error: null }).where('rule_id', '=', 'r').where('part', '=', 1).where('owner', '=', 'o').compile();
      const { ops } = completeExportBatchOps('o', [{ ruleId: 'r', partition: 1, seqs: [4, 9] }]);
      assert.equal(ops[0].sql, compiled.sql);
      assert.deepEqual(ops[0].params, compiled.parameters);
      assert.deepEqual([ops[1].params, ops[1].ifChanged], [['r', 1, 4, 9], true], 'the range DELETE runs only if the lane was still held');
    } finally {
      await db.destroy();
    }
  });
});

describe('outbox statements of a SQLite group commit', () => {
  it('are the INSERT Kysely compiles for the rows, with the same parameters, and take consecutive seqs', async () => {
    const { outboxStatements } = await import('../../src/store/kysely/export-queries.ts');
    const db = new Kysely<Database>({ dialect: new SqliteDialect({ database: new BetterSqlite3(':memory:') }) });
    try {
      const entries: OutboxEntry[] = [
        { ruleId: 'r', partition: 3, deviceId: null, kind: 'telemetry', createdTime: 5, payload: '', messages: 2, points: Buffer.from([2, 0]) },
        { ruleId: 'r', partition: 4, deviceId: 'd', kind: 'gap', createdTime: 6, payload: '{"skipped":1}' },
        { ruleId: 's', partition: 0, deviceId: 'e', kind: 'attributes', createdTime: 7, payload: '{}', messages: 1, points: null },
      ];
      for (const n of [1, 3]) {
        const [op] = outboxStatements(db, entries.slice(0, n));
        const compiled = db
          .insertInto('export_outbox')
          .values(entries.slice(0, n).map((e) => ({ rule_id: e.ruleId, part: e.partition, device_id: e.deviceId, kind: e.kind, created_time: e.createdTime, payload: e.payload, messages: e.messages ?? 1, points: e.points ?? null })))
          .compile();
        assert.equal(op.sql, compiled.sql);
        assert.deepEqual(op.params, compiled.parameters);
      }
      await new Migrator({ db, provider: migrationProvider(sqliteDialect) }).migrateToLatest();
      const seqs: (number | undefined)[] = [];
      const [op] = outboxStatements(db, entries, seqs);
      const raw = await db.executeQuery(CompiledQuery.raw(op.sql, op.params as unknown[]));
      op.done?.({ changes: Number(raw.numAffectedRows), insertId: raw.insertId });
      const rows = await db.selectFrom('export_outbox').select(['seq', 'kind']).orderBy('seq').execute();
      assert.deepEqual(rows.map((r) => [Number(r.seq), r.kind]), seqs.map((seq, i) => [seq, entries[i].kind]));
    } finally {
      await db.destroy();
    }
  });
});
