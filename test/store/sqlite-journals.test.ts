/**
 * The SQLite connections keep statement and savepoint journals in memory once migrated (sqlite.ts
 * `journalsInMemory`, the writer thread's `keepJournalsInMemory`): a provisioning group's or a group commit's
 * sub-journal no longer goes to a temporary file. Rolling back to a savepoint whose journal is
 * far past SQLite's 64 KiB spill size still restores every row.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { sql, type Kysely } from 'kysely';
import { openSqliteStore, type SqliteStoreOptions } from '../../src/store/sqlite.ts';
import type { Store } from '../../src/core/ports/store.ts';
import type { Database } from '../../src/store/schema.ts';

const TEMP_STORE_MEMORY = 2;
/** The Kysely handle of a store or of a transaction's store (the store keeps it protected). */
const dbOf = (store: unknown) => (store as { db: Kysely<Database> }).db;

async function withStore(options: SqliteStoreOptions, work: (store: Store, db: Kysely<Database>) => Promise<void>): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'fleetgate-journals-'));
  const store = await openSqliteStore(join(dir, 'store.db'), options);
  try {
    await work(store, dbOf(store));
  } finally {
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

for (const [label, options] of [
  ['with the writer thread', { synchronous: 'normal' }],
  ['with the writer thread off', { synchronous: 'normal', writerThread: false }],
  ['with every statement through the writer thread', { synchronous: 'normal', writerThread: true, mainConnection: false }],
] as const) {
  // Without a main-thread connection the pragma is read (and the journals kept) by the writer thread's connection.
  test(`the connection journals in memory, ${label}`, async () => {
    await withStore(options, async (_store, db) => {
      const { rows } = await sql<{ temp_store: number | bigint }>`pragma temp_store`.execute(db);
      assert.equal(Number(rows[0].temp_store), TEMP_STORE_MEMORY);
    });
  });

  test(`a rollback to a savepoint past the spill size restores every row, ${label}`, async () => {
    await withStore(options, async (store, db) => {
      await sql`create table journal_probe (k integer primary key, v text not null)`.execute(db);
      const filler = 'x'.repeat(500);
      const fill = sql`with recursive n(k) as (select 1 union all select k + 1 from n where k < 2000) insert into journal_probe (k, v) select k, ${filler} from n`;
      await fill.execute(db);
      await assert.rejects(
        store.transaction((tx) =>
          tx.savepoint(async (inner) => {
            // ~1 MB of pages changed under the savepoint: far past 64 KiB
            await sql`update journal_probe set v = ${'y'.repeat(500)}`.execute(dbOf(inner));
            throw new Error('undo');
          }),
        ),
        /undo/,
      );
      const { rows } = await sql<{ n: number | bigint }>`select count(*) as n from journal_probe where v = ${filler}`.execute(db);
      assert.equal(Number(rows[0].n), 2000);
    });
  });
}
