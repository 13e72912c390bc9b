import BetterSqlite3 from 'better-sqlite3';
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import { Kysely, Migrator, SqliteDialect } from 'kysely';
import { sqliteDialect } from './dialect.ts';
import { KyselyStore } from './kysely/kysely-store.ts';
import { migrationProvider } from './migrate.ts';
import type { Database } from './schema.ts';

/** Opens (creating if needed) a SQLite database in WAL mode and brings its schema up to date. */
export async function openSqliteStore(path: string, options: { synchronous: 'normal' | 'full' }): Promise<KyselyStore> {
  if (path !== ':memory:') mkdirSync(dirname(path), { recursive: true });
  const database = new BetterSqlite3(path);
  database.pragma('journal_mode = WAL');
  // normal: a commit survives a process kill (WAL is written before COMMIT returns); full: also a power loss.
  database.pragma(`synchronous = ${options.synchronous.toUpperCase()}`);
  database.pragma('foreign_keys = ON');
  database.pragma('busy_timeout = 5000');
  const db = new Kysely<Database>({ dialect: new SqliteDialect({ database }) });
  const result = await new Migrator({ db, provider: migrationProvider(sqliteDialect) }).migrateToLatest();
  if (result.error) {
    await db.destroy();
    throw result.error;
  }
  return new KyselyStore(db, sqliteDialect, () => db.destroy());
}
