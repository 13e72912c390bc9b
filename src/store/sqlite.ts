import BetterSqlite3 from 'better-sqlite3';
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import { Kysely, Migrator, SqliteDialect } from 'kysely';
import { sqliteDialect } from './dialect.ts';
import { KyselyStore } from './kysely/kysely-store.ts';
import { SqliteStaging } from './kysely/sqlite-staging.ts';
import { SqliteCheckpointer, type CheckpointedConnection, type CheckpointerOptions } from './sqlite-checkpointer.ts';
import { migrationProvider } from './migrate.ts';
import type { Database } from './schema.ts';
import { sqliteUnavailable } from './unavailable.ts';
import { SqliteWriterThread, type WriterOp, type WriterRestartListener } from './sqlite-writer-thread.ts';
import { isStatementList, Mutex, OFFLOAD_SQL, SqliteWriterDialect } from './sqlite-writer-dialect.ts';
import { inProcessSnapshotReads, openSnapshotReads, type SnapshotReads } from './sqlite-snapshot-reads.ts';
import { MAX_SPREAD } from './sqlite-local-connection.ts';
import { registerChunkFunctions } from './kysely/sqlite-chunk-writes.ts';

/** Most prepared statements kept; Kysely prepares every query it runs, so reuse saves the parse and plan. */
const STATEMENT_CACHE_SIZE = 1000;

/** The part of a better-sqlite3 statement Kysely's SqliteDriver uses. */
interface DriverStatement {
  readonly reader: boolean;
  all(parameters: readonly unknown[]): unknown[];
  run(parameters: readonly unknown[]): BetterSqlite3.RunResult;
  iterate(parameters: readonly unknown[]): IterableIterator<unknown>;
}

/**
 * `rollback`, `rollback to` and `release` when no transaction is open: SQLite already rolled it back itself (it does
 * on SQLITE_FULL, SQLITE_IOERR and SQLITE_NOMEM). Kysely's rollback would then fail with "cannot rollback - no
 * transaction is active" and that error would replace the one that says what happened (issue 18: 988 such lines and
 * not one saying the disk was full), so it is skipped.
 */
const ENDS_TRANSACTION = /^\s*(rollback|release)\b/i;
const NOTHING_TO_UNDO: DriverStatement = {
  reader: false,
  all: () => [],
  run: () => ({ changes: 0, lastInsertRowid: 0 }),
  iterate: () => [][Symbol.iterator](),
};

/** `statement` with its errors that mean "cannot write now" turned into DependencyUnavailableError (unavailable.ts). */
function translated(statement: BetterSqlite3.Statement, path: string): DriverStatement {
  const rethrow = (err: unknown): never => {
    throw sqliteUnavailable(err, path) ?? err;
  };
  // Parameters as separate arguments, cheaper to bind than one array (sqlite-local-connection.ts, MAX_SPREAD).
  const args = (parameters: readonly unknown[]) => (parameters.length <= MAX_SPREAD ? parameters : [parameters]) as unknown[];
  return {
    reader: statement.reader,
    all(parameters) {
      try {
        return statement.all(...args(parameters));
      } catch (err) {
        return rethrow(err);
      }
    },
    run(parameters) {
      try {
        return statement.run(...args(parameters));
      } catch (err) {
        return rethrow(err);
      }
    },
    iterate(parameters) {
      try {
        return statement.iterate(parameters as unknown[]);
      } catch (err) {
        return rethrow(err);
      }
    },
  };
}

/**
 * Wraps the database so repeated SQL texts reuse their prepared statement (safe: better-sqlite3 runs each to
 * completion), errors that mean the disk or file system failed reach callers as "database unavailable", and a
 * rollback after SQLite rolled back on its own is a no-op.
 */
function withStatementCache(database: BetterSqlite3.Database, path: string) {
  const cache = new Map<string, DriverStatement>();
  const cached = {
    close: () => database.close(),
    prepare(text: string): DriverStatement {
      if (isStatementList(text)) return statementList;
      if (text === OFFLOAD_SQL) return NOTHING_TO_UNDO; // no writer thread here: the transaction runs in process
      if (!database.inTransaction && ENDS_TRANSACTION.test(text)) return NOTHING_TO_UNDO;
      let statement = cache.get(text);
      if (!statement) {
        try {
          statement = translated(database.prepare(text), path);
        } catch (err) {
          throw sqliteUnavailable(err, path) ?? err;
        }
        if (cache.size >= STATEMENT_CACHE_SIZE) cache.delete(cache.keys().next().value!);
        cache.set(text, statement);
      }
      return statement;
    },
  };
  // statements() (sqlite-writer-dialect.ts): the ops in turn, `ifChanged` ones only after a statement that changed rows.
  const statementList: DriverStatement = {
    reader: false,
    all: () => [],
    iterate: () => [][Symbol.iterator](),
    run(parameters) {
      let changes = 0;
      let previous = 1;
      for (const op of parameters as WriterOp[]) {
        if (op.ifChanged && previous === 0) continue;
        const statement = cached.prepare(op.sql);
        if (statement.reader) {
          const rows = statement.all(op.params) as Record<string, unknown>[];
          previous = rows.length;
          op.done?.({ rows });
        } else {
          const result = statement.run(op.params);
          previous = Number(result.changes);
          changes += previous;
          op.done?.({ changes: previous, insertId: result.lastInsertRowid });
        }
      }
      return { changes, lastInsertRowid: 0 };
    },
  };
  return cached;
}

/** Sets the pragmas of a writing connection (the writer thread sets the same ones: sqlite-writer-worker.ts). */
function configure(database: BetterSqlite3.Database, options: SqliteStoreOptions): BetterSqlite3.Database {
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
  // chunk_has_ts, which writes of ts_kv_chunk rows (and deletes of time series) call (kysely/sqlite-chunk-writes.ts).
  registerChunkFunctions(database);
  if (options.maxSizeMb) {
    // Beyond this many pages SQLite answers SQLITE_FULL, which the store reports as "database unavailable" (issue 18).
    const pageSize = Number(database.pragma('page_size', { simple: true }));
    database.pragma(`max_page_count = ${Math.max(1, Math.floor((options.maxSizeMb * 1024 * 1024) / pageSize))}`);
  }
  return database;
}

/** Whether file databases write through the writer thread unless told otherwise (config sqliteWriterThread). */
export const WRITER_THREAD_BY_DEFAULT = true;

/**
 * Group commits lighter than this many parameters (rows times columns) run on the main-thread connection even with
 * the writer thread on. Measured on a quiet machine (bench/RESULTS.md, issue 17): HTTP telemetry's commits (~55
 * requests, ~330 rows, ~2,600 parameters) ran 15% slower through the thread, where the round trips and encoding cost
 * the event loop more than the statements; MQTT telemetry's (thousands of rows each) ran 27% faster.
 */
export const THREAD_MIN_PARAMETERS = 8_000;

/** How openSqliteStore opens a database. */
export interface SqliteStoreOptions {
  synchronous: 'normal' | 'full';
  maxSizeMb?: number;
  /** Statements on a writer thread (sqlite-writer-thread.ts); ':memory:' always runs in process. */
  writerThread?: boolean;
  /**
   * With the writer thread: a main-thread connection for reads and for transactions that do not start with a
   * statement list (default), or none (every statement through the thread).
   */
  mainConnection?: boolean;
  /** With the writer thread and a main connection: lighter group commits run on the main one (default THREAD_MIN_PARAMETERS). */
  threadMinParameters?: number;
  /**
   * Staged rows that start a merge round, and rows per merge slice (kysely/sqlite-staging.ts; tests make them small);
   * points of a series from which a dense batch writes it as a ts_kv_chunk row (kysely/sqlite-chunk-writes.ts
   * CHUNK_MIN_POINTS; Infinity: never, for benchmarks and tests of the row layout).
   */
  staging?: { mergeAt?: number; sliceRows?: number; chunkMinPoints?: number };
  /** The checkpointer's interval and restart size (sqlite-checkpointer.ts; tests make them small). */
  checkpoints?: Pick<CheckpointerOptions, 'intervalMs' | 'restartPages'>;
  /** Told when the writer thread stopped unexpectedly and when its replacement may start (the server logs it). */
  onWriterRestart?: WriterRestartListener;
}

/**
 * Opens (creating if needed) a SQLite database in WAL mode and brings its schema up to date. Closing the store merges
 * the telemetry it staged (kysely/sqlite-staging.ts); rows left staged by a killed process are merged by the next
 * reader or writer.
 */
export async function openSqliteStore(path: string, options: SqliteStoreOptions): Promise<KyselyStore> {
  if (path !== ':memory:') mkdirSync(dirname(path), { recursive: true });
  if (path !== ':memory:' && (options.writerThread ?? WRITER_THREAD_BY_DEFAULT)) return openThreaded(path, options);
  const database = configure(new BetterSqlite3(path), options);
  const db = new Kysely<Database>({ dialect: new SqliteDialect({ database: withStatementCache(database, path) }) });
  // The checkpointer's final pass holds the one connection (Kysely's driver hands it to one query or transaction at a
  // time), so no transaction begins during it and the next one starts the WAL over.
  const pauseWrites = (final: () => Promise<void>) => db.connection().execute(() => final());
  return finishOpening(db, path, path === ':memory:' ? undefined : database, options, () => journalsInMemory(database), { pauseWrites }, inProcessSnapshotReads(db));
}

/**
 * The store over a writer thread with its own connection (the same pragmas, set in the thread) and, unless
 * `mainConnection` is false, a main-thread connection. The thread starts while the main connection migrates (a worker
 * takes 100-600 ms to start on a busy machine); the first batch waits for it, and fails as "database unavailable"
 * if it could not open the file.
 */
async function openThreaded(path: string, options: SqliteStoreOptions): Promise<KyselyStore> {
  const local = options.mainConnection === false ? undefined : configure(new BetterSqlite3(path), options);
  const thread = new SqliteWriterThread({ path, synchronous: options.synchronous, maxSizeMb: options.maxSizeMb, autocheckpoint: 10_000 }, options.onWriterRestart);
  const started = thread.start();
  started.catch(() => {}); // reported by the first request that needs the thread
  if (!local) {
    try {
      await started;
    } catch (err) {
      await thread.close();
      throw sqliteUnavailable(err, path) ?? err;
    }
  }
  const mutex = new Mutex();
  const db = new Kysely<Database>({ dialect: new SqliteWriterDialect({ thread, path, local, threadMinParameters: options.threadMinParameters ?? THREAD_MIN_PARAMETERS, mutex }) });
  // The checkpointer moves the automatic checkpoint of both writing connections.
  const checkpointed = {
    setAutocheckpoint(pages: number) {
      thread.setAutocheckpoint(pages);
      if (local?.open) local.pragma(`wal_autocheckpoint = ${pages}`);
    },
  };
  // The checkpointer's final pass runs while no transaction may begin, so the next one starts the WAL over.
  const pauseWrites = async (final: () => Promise<void>) => {
    const release = await mutex.lock();
    try {
      await final();
    } finally {
      release();
    }
  };
  const migrated = () => {
    if (local) journalsInMemory(local);
    thread.keepJournalsInMemory();
  };
  // Reads of several statements (time series over rows and chunks) run in one snapshot, on a connection of their own.
  const snapshots = local ? openSnapshotReads(path, thread) : undefined;
  return finishOpening(db, path, checkpointed, options, migrated, { pauseWrites }, snapshots);
}

/**
 * Statement journals and savepoint journals of a connection in memory (`temp_store = MEMORY`). Inside a
 * transaction, every multi-row statement that may abort (any unique or foreign key) and every open savepoint copies
 * each page it first changes into a sub-journal, which SQLite writes to a temporary file once it passes 64 KiB: a
 * provisioning group of ~40 devices wrote ~0.5 MB there with a pwrite(2) per page, 12% of the event loop's samples
 * of an HTTP provisioning run (perf) and ~13 µs of the ~60 µs of SQLite CPU per new device (bench/store/provision-journal.ts).
 * In memory the same copy is a memcpy, freed at the statement's or transaction's end. Set after the migrations, so a
 * migration rewriting a big table keeps its journal on disk; the connection's work after that (provisioning, admin
 * writes, imports of 500-row statements, telemetry slices of ~4,000 rows) journals at most a few MB at a time. The
 * writer thread's connection does the same (`keepJournalsInMemory`), for its group commits.
 */
function journalsInMemory(database: BetterSqlite3.Database): void {
  database.pragma('temp_store = MEMORY');
}

/** Migrates, then starts staging and the checkpointer (on `checkpointed`, the writing connection) of an opened store. */
async function finishOpening(
  db: Kysely<Database>,
  path: string,
  checkpointed: CheckpointedConnection | undefined,
  options: SqliteStoreOptions,
  migrated: () => void,
  checkpoints: CheckpointerOptions = {},
  snapshots?: SnapshotReads,
): Promise<KyselyStore> {
  const result = await new Migrator({ db, provider: migrationProvider(sqliteDialect) }).migrateToLatest();
  if (result.error) {
    snapshots?.close();
    await db.destroy();
    throw result.error;
  }
  migrated();
  const staging = await SqliteStaging.open(db, options.staging?.mergeAt, options.staging?.sliceRows, options.staging?.chunkMinPoints);
  // WAL checkpoints on a worker thread, off the event loop and off the writer (sqlite-checkpointer.ts).
  const checkpointer = checkpointed && SqliteCheckpointer.start(path, checkpointed, { ...checkpoints, synchronous: options.synchronous, ...options.checkpoints });
  const close = async () => {
    try {
      await staging.stop();
      await staging.flush(db);
    } finally {
      await checkpointer?.stop();
      try {
        snapshots?.close();
        await db.destroy();
      } finally {
        checkpointer?.releaseFiles();
      }
    }
  };
  return new KyselyStore(db, sqliteDialect, close, false, 1, staging, snapshots);
}
