/**
 * A Kysely dialect over two connections to one SQLite file: the writer thread's (sqlite-writer-thread.ts) and,
 * normally, one of the main thread (`local`).
 *
 * A transaction that starts with a statement list (`statements()`: a group-commit batch, hundreds of rows) runs on
 * the thread, so its statement execution uses the second core. Every other transaction (provisioning, admin writes:
 * a few small statements, each awaited before the next) runs on the main-thread connection, where a statement costs
 * less than a round trip to the thread (measured: ~10 µs of main-thread CPU and ~40 µs of latency each, against
 * 5-20 µs for such a statement). Plain reads run there too, without waiting: in WAL mode a read sees every
 * transaction whose COMMIT has returned, so a read after an acknowledged write sees it.
 *
 * Like Kysely's SqliteDriver, one transaction at a time over both connections (a mutex held from BEGIN to COMMIT or
 * ROLLBACK), so neither ever waits on the other's write lock; a write outside a transaction takes the mutex too.
 *
 * A transaction opened with OFFLOAD_SQL runs on the thread too (provisioning groups: the main thread then pays a
 * round trip per statement, ~10 µs, instead of the statements and the commit's WAL writes).
 *
 * Round trips on the thread: BEGIN (and SAVEPOINT, RELEASE, ROLLBACK TO) go with the next statement, a batch's
 * statements go in one message, and a statement list whose result is not read goes with the COMMIT, so a group commit
 * costs one round trip (measured on HTTP telemetry's commits: ~9 µs less event-loop CPU a request than two).
 */
import type BetterSqlite3 from 'better-sqlite3';
import {
  CompiledQuery,
  SqliteAdapter,
  SqliteIntrospector,
  SqliteQueryCompiler,
  type DatabaseConnection,
  type Dialect,
  type Driver,
  type Kysely,
  type QueryResult,
} from 'kysely';
import { sqliteUnavailable } from './unavailable.ts';
import { LocalConnection } from './sqlite-local-connection.ts';
import type { SqliteWriterThread, WriterOp, WriterResult } from './sqlite-writer-thread.ts';

/**
 * The SQL text of a query standing for several statements (its parameters are the WriterOps). Both SQLite paths
 * understand it: this dialect sends them in one message, the in-process one (sqlite.ts) runs them in turn.
 */
export const STATEMENTS_SQL = '-- fleetgate: statements';

/**
 * The SQL text of a no-op query that opens a transaction (Store.transaction's `offload`): on this dialect it makes the
 * transaction run on the writer thread whatever its first statement; the in-process one (sqlite.ts) ignores it.
 */
export const OFFLOAD_SQL = '-- fleetgate: offload';

/**
 * The SQL text of a statement list whose result the caller does not read (a group commit's writes): inside a
 * transaction on the writer thread, outside any savepoint, it is not sent on its own but with the COMMIT, so a group
 * commit costs one round trip instead of two. Its errors then surface at the COMMIT, which fails the transaction just
 * the same. Under a savepoint it is sent at once, so its errors reach the savepoint's work.
 */
export const UNREAD_STATEMENTS_SQL = '-- fleetgate: statements, results unread';

/**
 * One query that runs `ops` in order (one round trip on the writer thread); its numAffectedRows is their sum. With
 * `unread`, nothing of its result is read (numAffectedRows may be 0): on the writer thread it travels with the
 * transaction's COMMIT, and an op's `done` is called once the message that carried it returned (after the COMMIT, so
 * only if it succeeded). That is the export outbox's seqs (issue 16): a second round trip per group commit only to
 * learn them cost the commit ~9 µs of event loop and the writer's wait for the main thread between the two.
 */
export function statements(ops: WriterOp[], unread = false): CompiledQuery {
  return CompiledQuery.raw(unread ? UNREAD_STATEMENTS_SQL : STATEMENTS_SQL, ops);
}

/** Whether `sql` is the text of a statement list (statements()). */
export const isStatementList = (sql: string): boolean => sql === STATEMENTS_SQL || sql === UNREAD_STATEMENTS_SQL;

/** Statements inside a transaction whose answer nobody reads: sent with the next statement, not on their own. */
const DEFERRED = /^\s*(savepoint|release|rollback to)\b/i;
const SAVEPOINT = /^\s*savepoint\b/i;
const RELEASE = /^\s*release\b/i;

/** The dialect's write mutex: one transaction at a time over both connections (also the checkpointer's write pause). */
export class Mutex {
  private tail: Promise<void> = Promise.resolve();
  /** Resolves with the function that releases the lock, once every earlier holder released it. */
  lock(): Promise<() => void> {
    let release!: () => void;
    const next = new Promise<void>((r) => (release = r));
    const acquired = this.tail.then(() => release);
    this.tail = this.tail.then(() => next);
    return acquired;
  }
}

/** Tells each op of a statement list what it gave (WriterOp.done); `results` holds one result per op, in order. */
function reportResults(ops: readonly WriterOp[], results: readonly WriterResult[]): void {
  for (let i = 0; i < ops.length; i++) if (ops[i].done && results[i]) ops[i].done!(results[i]);
}

function toQueryResult(results: WriterResult[], many: boolean, ops?: readonly WriterOp[]): QueryResult<any> {
  if (many) {
    if (ops) reportResults(ops, results);
    let changes = 0;
    for (const r of results) changes += r.changes ?? 0;
    return { rows: [], numAffectedRows: BigInt(changes) };
  }
  const last = results[results.length - 1];
  if (last.rows) return { rows: last.rows };
  return { rows: [], numAffectedRows: BigInt(last.changes ?? 0), insertId: last.insertId === undefined ? undefined : BigInt(last.insertId) };
}

/**
 * Parameters of `ops` together: what a statement list weighs (its rows times their columns), an op's `weight` in
 * place of its own count where it has one (a ts_kv_chunk insert weighs the ts_kv rows its points would be,
 * kysely/sqlite-chunk-writes.ts, so a commit of chunks runs where the same points as rows would).
 */
export function parameterCount(ops: readonly WriterOp[]): number {
  let n = 0;
  for (const op of ops) n += op.weight ?? op.params.length;
  return n;
}

class WriterConnection implements DatabaseConnection {
  /** Set while this connection holds a transaction: releases the mutex. */
  release: (() => void) | undefined;
  /** BEGIN, SAVEPOINT, RELEASE and ROLLBACK TO not yet sent: they go with the next statement (or COMMIT). */
  prefix: WriterOp[] = [];
  /** Where the open transaction runs, decided by its first statement (undefined: none yet). */
  mode: 'thread' | 'local' | undefined;
  /** The writer thread generation the transaction began on. */
  generation = 0;
  /** Whether BEGIN was sent to the thread. */
  private begun = false;
  /** Savepoints open in the transaction (SAVEPOINT seen, not yet RELEASEd). */
  private savepoints = 0;

  constructor(private readonly driver: WriterDriver) {}

  async executeQuery<R>(compiled: CompiledQuery): Promise<QueryResult<R>> {
    const many = isStatementList(compiled.sql);
    const ops: WriterOp[] = many ? (compiled.parameters as WriterOp[]) : [{ sql: compiled.sql, params: compiled.parameters }];
    const local = this.driver.local;
    if (compiled.sql === OFFLOAD_SQL) {
      if (this.release && this.mode === undefined) this.mode = 'thread';
      return { rows: [] };
    }
    if (this.release) {
      if (this.mode === undefined) {
        if (!many && DEFERRED.test(compiled.sql)) {
          this.defer(ops[0]);
          return { rows: [] };
        }
        // A transaction that starts with a statement list (a group-commit batch) runs on the thread, others here.
        this.mode = (many && parameterCount(ops) >= this.driver.threadMinParameters) || !local ? 'thread' : 'local';
      }
      if (this.mode === 'local') {
        const prefix = this.prefix;
        this.prefix = [];
        return toQueryResult(local!.execute(prefix.length ? [...prefix, ...ops] : ops).slice(prefix.length), many, ops) as QueryResult<R>;
      }
      if (!many && DEFERRED.test(compiled.sql)) {
        this.defer(ops[0]);
        return { rows: [] };
      }
      // Under a savepoint it runs now: a failing statement must reject the savepoint's work, which then undoes just
      // that (Store.savepoint), not fail the whole transaction at its COMMIT.
      if (compiled.sql === UNREAD_STATEMENTS_SQL && this.savepoints === 0) {
        // Sent with the COMMIT (or the next statement): one round trip less per group commit.
        if (!this.begun) {
          this.generation = this.driver.thread.current(); // BEGIN goes to this thread
          this.begun = true;
        }
        for (const op of ops) this.prefix.push(op);
        return { rows: [], numAffectedRows: 0n };
      }
      return toQueryResult(await this.inTransaction(ops), many, ops) as QueryResult<R>;
    }
    // Lock-free only while no other caller holds a transaction on `local`: its uncommitted rows are visible there.
    if (local && !many && !local.database.inTransaction) {
      const rows = local.read(compiled.sql, compiled.parameters);
      if (rows) return { rows: rows as R[] };
    }
    const release = await this.driver.mutex.lock();
    try {
      return toQueryResult(local ? local.execute(ops) : await this.driver.send(ops), many, ops) as QueryResult<R>;
    } finally {
      release();
    }
  }

  /** Keeps a SAVEPOINT, RELEASE or ROLLBACK TO for the next message, counting the savepoints open. */
  private defer(op: WriterOp): void {
    if (SAVEPOINT.test(op.sql)) this.savepoints++;
    else if (RELEASE.test(op.sql)) this.savepoints = Math.max(0, this.savepoints - 1);
    this.prefix.push(op);
  }

  private async inTransaction(ops: WriterOp[]): Promise<WriterResult[]> {
    const prefix = this.prefix;
    if (prefix.length === 0) return this.driver.send(ops, this.generation);
    const begins = !this.begun;
    this.prefix = [];
    this.begun = true;
    if (begins) this.generation = this.driver.thread.current(); // BEGIN goes to this thread
    const results = await this.driver.send([...prefix, ...ops], begins ? undefined : this.generation);
    // Deferred statement lists (UNREAD_STATEMENTS_SQL) learn what they gave now.
    reportResults(prefix, results);
    return results.slice(prefix.length);
  }

  async begin(): Promise<void> {
    this.release = await this.driver.mutex.lock();
    this.prefix = [{ sql: 'begin', params: [] }];
    this.mode = undefined;
    this.begun = false;
    this.savepoints = 0;
  }

  /**
   * COMMIT or ROLLBACK where the transaction ran (nothing when it never ran a statement), then frees the mutex. A
   * failed COMMIT is followed by a ROLLBACK (a no-op if SQLite ended the transaction), so the next holder never
   * writes inside this one.
   */
  async end(sql: 'commit' | 'rollback'): Promise<void> {
    const end = [{ sql, params: [] }];
    const rollback = [{ sql: 'rollback', params: [] }];
    // A rollback before anything reached the thread (its BEGIN still waits in `prefix`): nothing to undo there.
    const unsent = this.prefix.length > 0 && this.prefix[0].sql === 'begin';
    try {
      if (this.mode === 'local') this.driver.local!.execute(end);
      else if (sql === 'rollback') {
        // Only the ROLLBACK: statements still deferred would be undone at once, and one of them failing (a unique
        // key) would stop the message before the ROLLBACK, leaving the thread's connection inside this transaction.
        if (this.begun && !unsent) await this.driver.send(rollback, this.generation);
      } else if (this.begun) await this.inTransaction(end);
    } catch (err) {
      if (sql === 'commit') {
        if (this.mode === 'local') {
          try {
            this.driver.local!.execute(rollback);
          } catch {
            /* the commit's error says what happened */
          }
        } else await this.driver.send(rollback).catch(() => {});
      }
      throw err;
    } finally {
      const release = this.release;
      this.release = undefined;
      this.prefix = [];
      this.mode = undefined;
      this.begun = false;
      release?.();
    }
  }

  async *streamQuery<R>(compiled: CompiledQuery): AsyncIterableIterator<QueryResult<R>> {
    const local = this.driver.local;
    if (local && this.mode !== 'thread' && !this.prefix.length) {
      const statement = local.statement(compiled.sql);
      // Only inside this caller's own transaction: outside one, an open iterator would make every other caller's
      // statement on `local` fail ("connection is busy"), so the rows are read at once below.
      if (statement.reader && this.release) {
        for (const row of statement.iterate(compiled.parameters as unknown[])) yield { rows: [row as R] };
        return;
      }
    }
    const { rows } = await this.executeQuery<R>(compiled);
    for (const row of rows) yield { rows: [row] };
  }
}

class WriterDriver implements Driver {
  constructor(
    readonly mutex: Mutex,
    readonly thread: SqliteWriterThread,
    readonly local: LocalConnection | undefined,
    private readonly path: string,
    readonly threadMinParameters: number,
  ) {}

  async init(): Promise<void> {}

  /** Runs `ops` on the writer thread (on thread `generation` only, when given); errors translated as in process. */
  async send(ops: WriterOp[], generation?: number): Promise<WriterResult[]> {
    try {
      return await this.thread.run(ops, generation);
    } catch (err) {
      throw sqliteUnavailable(err, this.path) ?? err;
    }
  }

  async acquireConnection(): Promise<DatabaseConnection> {
    return new WriterConnection(this);
  }

  async beginTransaction(connection: DatabaseConnection): Promise<void> {
    await (connection as WriterConnection).begin();
  }

  async commitTransaction(connection: DatabaseConnection): Promise<void> {
    await (connection as WriterConnection).end('commit');
  }

  async rollbackTransaction(connection: DatabaseConnection): Promise<void> {
    await (connection as WriterConnection).end('rollback');
  }

  async releaseConnection(): Promise<void> {}

  async destroy(): Promise<void> {
    const release = await this.mutex.lock();
    try {
      // The read connection first: the last connection to close checkpoints the WAL, which is the thread's work.
      this.local?.database.close();
      await this.thread.close();
    } finally {
      release();
    }
  }
}

/** Options of the writer-thread dialect. */
export interface WriterDialectOptions {
  thread: SqliteWriterThread;
  path: string;
  /**
   * The main thread's connection to the same file, configured like the thread's: reads, and transactions that do not
   * start with a statement list. Without it every statement goes through the thread.
   */
  local: BetterSqlite3.Database | undefined;
  /**
   * With `local`: a transaction starting with a statement list of fewer parameters than this runs on `local` too
   * (default 0: every statement list goes to the thread).
   */
  threadMinParameters?: number;
  /** The write mutex, when the caller needs it too (the checkpointer's write pause, sqlite-checkpointer.ts). */
  mutex?: Mutex;
}

/** The Kysely dialect over a started writer thread. */
export class SqliteWriterDialect implements Dialect {
  constructor(private readonly options: WriterDialectOptions) {}

  createAdapter() {
    return new SqliteAdapter();
  }

  createDriver(): Driver {
    const { thread, path, local, threadMinParameters = 0, mutex = new Mutex() } = this.options;
    return new WriterDriver(mutex, thread, local && new LocalConnection(local, path), path, threadMinParameters);
  }

  createQueryCompiler() {
    return new SqliteQueryCompiler();
  }

  createIntrospector(db: Kysely<any>) {
    return new SqliteIntrospector(db);
  }
}
