/**
 * PostgreSQL storage: the shared Kysely store over a pg connection pool. Every node of a cluster opens the same
 * database; races between nodes are decided by unique indexes and `INSERT … ON CONFLICT` (DESIGN 7).
 */
import { Kysely, Migrator, PostgresDialect } from 'kysely';
import pg from 'pg';
import { postgresDialect } from './dialect.ts';
import { preparedStatementPool } from './pg-prepared.ts';
import { KyselyStore } from './kysely/kysely-store.ts';
import { migrationProvider } from './migrate.ts';
import type { Database } from './schema.ts';

/** Options of {@link openPostgresStore}. */
export interface PostgresStoreOptions {
  /** Most connections this node holds (default 10: enough to keep 2-4 cores busy, small enough for many nodes). */
  poolSize?: number;
  /** Called with errors of idle pooled connections (e.g. the server restarted); they are otherwise dropped. */
  onPoolError?: (err: Error) => void;
}

const INT8_OID = 20;

/**
 * int8 (bigint) arrives from pg as text. Timestamps and counts fit a double, so they become numbers; a value beyond
 * ±2^53 stays text, which the row mappers turn into a bigint (values.ts) so no digit is lost.
 */
function parseInt8(text: string): number | string {
  const n = Number(text);
  return Number.isSafeInteger(n) ? n : text;
}

const types: pg.CustomTypesConfig = {
  getTypeParser: ((oid: number, format?: 'text' | 'binary') =>
    oid === INT8_OID && format !== 'binary' ? parseInt8 : pg.types.getTypeParser(oid, format as 'text')) as pg.CustomTypesConfig['getTypeParser'],
};

/**
 * Connects to PostgreSQL (`postgres://user:pass@host:port/db`), brings the schema up to date with the same
 * migrations as SQLite (Kysely's Migrator takes an advisory lock, so nodes starting together migrate once), and
 * returns the store. Closing the store ends the pool.
 */
export async function openPostgresStore(url: string, options: PostgresStoreOptions = {}): Promise<KyselyStore> {
  const pool = new pg.Pool({ connectionString: url, max: options.poolSize ?? 10, types, idleTimeoutMillis: 30_000 });
  // Without a listener an idle connection's error (server restart, network cut) would crash the process.
  pool.on('error', (err) => options.onPoolError?.(err));
  const db = new Kysely<Database>({ dialect: new PostgresDialect({ pool: preparedStatementPool(pool) }) });
  try {
    const result = await new Migrator({ db, provider: migrationProvider(postgresDialect) }).migrateToLatest();
    if (result.error) throw result.error;
  } catch (err) {
    await db.destroy();
    throw err;
  }
  // Leave a connection free for reads while grouped transactions run.
  return new KyselyStore(db, postgresDialect, () => db.destroy(), false, Math.max(1, (options.poolSize ?? 10) - 2));
}
