import { ConfigError, type Config } from '../config.ts';
import type { Store } from './store.ts';
import { openSqliteStore } from './sqlite.ts';

/** Opens the store the configuration names: a SQLite file (default) or PostgreSQL (later). */
export async function openStore(config: Pick<Config, 'database' | 'sqliteSynchronous'>): Promise<Store> {
  if (/^postgres(ql)?:\/\//.test(config.database)) {
    throw new ConfigError('PostgreSQL storage is not available in this version yet; use a SQLite file path');
  }
  return openSqliteStore(config.database, { synchronous: config.sqliteSynchronous });
}
