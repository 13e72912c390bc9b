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
  /**
   * Called with the errors pooled connections emit, idle or in use (the server restarted, an administrator ended the
   * connection, the network broke). The pool drops such a connection and opens a new one when needed.
   */
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
  const pool = new pg.Pool({
    connectionString: url,
    max: options.poolSize ?? 10,
    types,
    idleTimeoutMillis: 30_000,
    // A server that does not answer (network cut) fails the request instead of holding it forever.
    connectionTimeoutMillis: 5_000,
    keepAlive: true,
  });
  // pg emits 'error' on a connection that breaks, idle in the pool or checked out (between the queries of a
  // transaction, say). Unheard, that event would end the process (issue 18), so every connection gets a listener;
  // the pool repeats idle connections' errors on itself, already reported by then.
  pool.on('connect', (client) => client.on('error', (err) => options.onPoolError?.(err)));
  pool.on('error', () => {});
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
