/**
 * The main thread's connection beside the SQLite writer thread (sqlite-writer-dialect.ts routes between them).
 */
import type BetterSqlite3 from 'better-sqlite3';
import { sqliteUnavailable } from './unavailable.ts';
import type { WriterOp, WriterResult } from './sqlite-writer-thread.ts';

/** Statements that may write: never run as plain reads (they take the dialect's mutex); not prepared to find out. */
const WRITES = /^\s*(insert|update|delete|replace|create|drop|alter|pragma|begin|commit|end|rollback|savepoint|release|vacuum|analyze|reindex|attach|detach)\b/i;
const LOCAL_CACHE_SIZE = 1000;
/**
 * Parameters go to better-sqlite3 as separate arguments, not as one array, up to this many (as the writer thread
 * does, sqlite-writer-worker.ts: an array is read element by element through V8's property lookup API).
 */
export const MAX_SPREAD = 16_384;
/** A rollback or release when SQLite already rolled the transaction back (as sqlite.ts): nothing to do. */
const ENDS_TRANSACTION = /^\s*(rollback|release)\b/i;

/**
 * The main thread's connection to the same file: plain reads, and transactions that do not start with a statement
 * list (provisioning, admin writes: a few small statements whose answers the caller waits for one by one, where a
 * round trip to the thread costs more than the statement). Statements cached; errors translated as in sqlite.ts.
 */
export class LocalConnection {
  private readonly cache = new Map<string, BetterSqlite3.Statement>();

  constructor(
    readonly database: BetterSqlite3.Database,
    private readonly path: string,
  ) {}

  statement(sql: string): BetterSqlite3.Statement {
    let statement = this.cache.get(sql);
    if (statement === undefined) {
      try {
        statement = this.database.prepare(sql);
      } catch (err) {
        throw sqliteUnavailable(err, this.path) ?? err;
      }
      if (this.cache.size >= LOCAL_CACHE_SIZE) this.cache.delete(this.cache.keys().next().value!);
      this.cache.set(sql, statement);
    }
    return statement;
  }

  /** The rows of a statement that only reads, or undefined when `sql` may write (it then needs the mutex). */
  read(sql: string, parameters: readonly unknown[]): unknown[] | undefined {
    if (WRITES.test(sql)) return undefined;
    const statement = this.statement(sql);
    if (!statement.reader || !statement.readonly) return undefined;
    try {
      return statement.all(parameters as unknown[]);
    } catch (err) {
      throw sqliteUnavailable(err, this.path) ?? err;
    }
  }

  /** Runs `ops` in order, as the writer thread does (sqlite-writer-worker.ts). */
  execute(ops: readonly WriterOp[]): WriterResult[] {
    const results: WriterResult[] = [];
    let previousChanges = 1;
    try {
      for (const op of ops) {
        if ((op.ifChanged && previousChanges === 0) || (!this.database.inTransaction && ENDS_TRANSACTION.test(op.sql))) {
          results.push({ changes: 0 });
          previousChanges = 0;
          continue;
        }
        const statement = this.statement(op.sql);
        if (statement.reader) {
          const rows = (op.params.length <= MAX_SPREAD ? statement.all(...op.params) : statement.all(op.params)) as Record<string, unknown>[];
          results.push({ rows });
          previousChanges = rows.length;
        } else {
          const r = op.params.length <= MAX_SPREAD ? statement.run(...op.params) : statement.run(op.params);
          results.push({ changes: r.changes, insertId: r.lastInsertRowid });
          previousChanges = r.changes;
        }
      }
    } catch (err) {
      throw sqliteUnavailable(err, this.path) ?? err;
    }
    return results;
  }
}

