import type { Config } from '../config.ts';
import type { Store } from '../core/ports/store.ts';
import type { PostgresStoreOptions } from './postgres.ts';
import type { WriterRestartListener } from './sqlite-writer-thread.ts';

/** True when `database` names a PostgreSQL server rather than a SQLite file. */
export function isPostgresUrl(database: string): boolean {
  return /^postgres(ql)?:\/\//i.test(database);
}

/**
 * Opens the store the configuration names: a SQLite file (default) or PostgreSQL (`postgres://` / `postgresql://`).
 * `postgres` options (pool size, pool error hook) apply only to PostgreSQL; `onSqliteWriterRestart` only to SQLite.
 */
export async function openStore(config: Pick<Config, 'database' | 'sqliteSynchronous'> & Partial<Pick<Config, 'sqliteMaxSizeMb' | 'sqliteWriterThread' | 'sqliteThreadMinParameters'>>, postgres: PostgresStoreOptions & { onSqliteWriterRestart?: WriterRestartListener } = {}): Promise<Store> {
  // Each driver is loaded only when its database is configured (start-up is faster without the other one).
  if (isPostgresUrl(config.database)) return (await import('./postgres.ts')).openPostgresStore(config.database, postgres);
  return (await import('./sqlite.ts')).openSqliteStore(config.database, {
    synchronous: config.sqliteSynchronous,
    maxSizeMb: config.sqliteMaxSizeMb,
    writerThread: config.sqliteWriterThread === undefined ? undefined : config.sqliteWriterThread === 'on',
    threadMinParameters: config.sqliteThreadMinParameters,
    onWriterRestart: postgres.onSqliteWriterRestart,
  });
}
