import BetterSqlite3 from 'better-sqlite3';
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import { Kysely, Migrator, SqliteDialect } from 'kysely';
import { sqliteDialect } from './dialect.ts';
import { KyselyStore } from './kysely/kysely-store.ts';
import { SqliteStaging } from './kysely/sqlite-staging.ts';
import { SqliteCheckpointer } from './sqlite-checkpointer.ts';
import { migrationProvider } from './migrate.ts';
import type { Database } from './schema.ts';

/** Most prepared statements kept; Kysely prepares every query it runs, so reuse saves the parse and plan. */
const STATEMENT_CACHE_SIZE = 1000;

/** Wraps the database so repeated SQL texts reuse their prepared statement (safe: better-sqlite3 runs each to completion). */
function withStatementCache(database: BetterSqlite3.Database) {
  const cache = new Map<string, BetterSqlite3.Statement>();
  return {
    close: () => database.close(),
    prepare(text: string) {
      let statement = cache.get(text);
      if (!statement) {
        statement = database.prepare(text);
        if (cache.size >= STATEMENT_CACHE_SIZE) cache.delete(cache.keys().next().value!);
        cache.set(text, statement);
      }
      return statement;
    },
  };
}

/**
 * Opens (creating if needed) a SQLite database in WAL mode and brings its schema up to date. Closing the store merges
 * the telemetry it staged (kysely/sqlite-staging.ts); rows left staged by a killed process are merged by the next
 * reader or writer.
 */
export async function openSqliteStore(path: string, options: { synchronous: 'normal' | 'full' }): Promise<KyselyStore> {
  if (path !== ':memory:') mkdirSync(dirname(path), { recursive: true });
  const database = new BetterSqlite3(path);
  database.pragma('journal_mode = WAL');
  // normal: a commit survives a process kill (WAL is written before COMMIT returns); full: also a power loss.
  database.pragma(`synchronous = ${options.synchronous.toUpperCase()}`);
  // Checkpoint less often: telemetry rewrites the same hot pages, so a larger WAL copies each back once, not many times.
  database.pragma('wal_autocheckpoint = 10000');
  database.pragma('cache_size = -65536');
  database.pragma('foreign_keys = ON');
  // Integers come back as BigInt, so 64-bit values (spec §8.2 long) survive; rows.ts and values.ts narrow them.
  database.defaultSafeIntegers(true);
  database.pragma('busy_timeout = 5000');
  const db = new Kysely<Database>({ dialect: new SqliteDialect({ database: withStatementCache(database) }) });
  const result = await new Migrator({ db, provider: migrationProvider(sqliteDialect) }).migrateToLatest();
  if (result.error) {
    await db.destroy();
    throw result.error;
  }
  const staging = await SqliteStaging.open(db);
  // WAL checkpoints on a worker thread, off the event loop (sqlite-checkpointer.ts).
  const checkpointer = path === ':memory:' ? undefined : SqliteCheckpointer.start(path, database);
  const close = async () => {
    try {
      await staging.flush(db);
    } finally {
      await checkpointer?.stop();
      await db.destroy();
    }
  };
  return new KyselyStore(db, sqliteDialect, close, false, 1, staging);
}
