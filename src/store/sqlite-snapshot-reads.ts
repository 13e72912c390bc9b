/**
 * Reads of several statements in one snapshot (SQLite with the writer thread). A time-series read over ts_kv rows and
 * ts_kv_chunk points runs several statements; outside a transaction each would be its own snapshot, so a point written
 * again between them (a row over a chunk point, or a chunk over a row) could show its old value or be counted twice
 * (kysely/ts-kv-chunk-aggregation.ts). Such a read runs here instead: inside a read transaction (BEGIN ... COMMIT) on a
 * connection of its own, so it waits for no write and no write waits for it (WAL: readers and the writer do not block
 * each other); a lock of this connection alone makes such reads take turns (each starts its own snapshot, so a read
 * sees every write acknowledged before it began).
 */
import BetterSqlite3 from 'better-sqlite3';
import { Kysely, sql } from 'kysely';
import type { Database } from './schema.ts';
import { Mutex, SqliteWriterDialect } from './sqlite-writer-dialect.ts';
import type { SqliteWriterThread } from './sqlite-writer-thread.ts';

/** Runs reads in one snapshot each. */
export interface SnapshotReads {
  /** Runs `work` inside one read transaction of the snapshot connection. */
  read<T>(work: (db: Kysely<Database>) => Promise<T>): Promise<T>;
  /** Closes the snapshot connection (before the store's other connections: the last one to close checkpoints). */
  close(): void;
}

/** Opens the snapshot connection to the database at `path` (its schema made by the store's migrations). */
export function openSnapshotReads(path: string, thread: SqliteWriterThread): SnapshotReads {
  const connection = new BetterSqlite3(path);
  connection.defaultSafeIntegers(true); // as the store's connections: 64-bit integers as BigInt
  connection.pragma('busy_timeout = 5000');
  connection.pragma('cache_size = -16384');
  // Only reads run here, all on `local` (this connection); `thread` is never used.
  const db = new Kysely<Database>({ dialect: new SqliteWriterDialect({ thread, path, local: connection, mutex: new Mutex() }) });
  const begin = connection.prepare('begin');
  const commit = connection.prepare('commit');
  const turns = new Mutex(); // one snapshot at a time on the connection
  return {
    async read(work) {
      const release = await turns.lock();
      try {
        begin.run(); // deferred: the snapshot is taken by the first statement
        try {
          return await work(db);
        } finally {
          if (connection.inTransaction) commit.run();
        }
      } finally {
        release();
      }
    },
    close: () => connection.close(),
  };
}

/**
 * The same for the in-process store (one connection, sqliteWriterThread off or ':memory:'): the read holds the
 * connection (Kysely's driver hands it to one caller at a time) inside BEGIN ... COMMIT, so neither this process's other
 * callers nor another process writing the file can change what it reads halfway.
 */
export function inProcessSnapshotReads(db: Kysely<Database>): SnapshotReads {
  return {
    read: (work) =>
      db.connection().execute(async (connection) => {
        await sql`begin`.execute(connection);
        try {
          return await work(connection);
        } finally {
          await sql`commit`.execute(connection).catch(() => {}); // a read: nothing to lose if SQLite ended it already
        }
      }),
    close: () => {},
  };
}
