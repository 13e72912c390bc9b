import type { Config } from '../config.ts';
import type { Store } from './store.ts';
import { openPostgresStore, type PostgresStoreOptions } from './postgres.ts';
import { openSqliteStore } from './sqlite.ts';

/** True when `database` names a PostgreSQL server rather than a SQLite file. */
export function isPostgresUrl(database: string): boolean {
  return /^postgres(ql)?:\/\//i.test(database);
}

/**
 * Opens the store the configuration names: a SQLite file (default) or PostgreSQL (`postgres://` / `postgresql://`).
 * `postgres` options (pool size, pool error hook) apply only to PostgreSQL.
 */
export async function openStore(config: Pick<Config, 'database' | 'sqliteSynchronous'> & Partial<Pick<Config, 'sqliteMaxSizeMb'>>, postgres: PostgresStoreOptions = {}): Promise<Store> {
  if (isPostgresUrl(config.database)) return openPostgresStore(config.database, postgres);
  return openSqliteStore(config.database, { synchronous: config.sqliteSynchronous, maxSizeMb: config.sqliteMaxSizeMb });
}
