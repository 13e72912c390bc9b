/**
 * Multi-row INSERTs whose SQL is built once per row count (issue 17: Kysely's building and compiling cost about a
 * tenth of a provisioning). The first statement of each row count is built and compiled by Kysely; if its parameters
 * are exactly the rows' values, column by column (they are when every row has the same columns in the same order),
 * the SQL text is kept and later statements of that row count only flatten their values. Otherwise nothing is kept
 * and Kysely builds every statement, as before.
 */
import { CompiledQuery, type Compilable, type Kysely, type QueryResult, type Transaction } from 'kysely';
import type { Database } from '../schema.ts';

type Db = Kysely<Database> | Transaction<Database>;

/** SQL text per statement kind, column list and row count, per dialect adapter (SQLite and PostgreSQL compile differently). */
const cache = new WeakMap<object, Map<string, string | null>>();
/** Row counts kept per statement kind: groups are at most a few hundred rows. */
const MAX_ROWS_CACHED = 512;

function sameValues(a: readonly unknown[], b: readonly unknown[]): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/**
 * Runs the multi-row INSERT `build(rows)` (rows as table rows, every one with `columns` in that order), reusing the SQL
 * text of an earlier statement of the same `kind`, columns and row count.
 */
export async function executeInsert<R, Row extends object>(db: Db, kind: string, columns: readonly (keyof Row & string)[], rows: readonly Row[], build: () => Compilable<R>): Promise<R[]> {
  return (await executeKept(db, kind, columns, rows, build)).rows;
}

/**
 * As `executeInsert`, for a statement without RETURNING: the number of rows it inserted (with ON CONFLICT DO NOTHING,
 * the rows that went in). Reading a count costs SQLite and the driver less than returning a row per inserted row.
 */
export async function executeInsertCount<Row extends object>(db: Db, kind: string, columns: readonly (keyof Row & string)[], rows: readonly Row[], build: () => Compilable<unknown>): Promise<number> {
  return Number((await executeKept(db, kind, columns, rows, build)).numAffectedRows ?? 0n);
}

async function executeKept<R, Row extends object>(db: Db, kind: string, columns: readonly (keyof Row & string)[], rows: readonly Row[], build: () => Compilable<R>): Promise<QueryResult<R>> {
  const values: unknown[] = new Array(rows.length * columns.length);
  let i = 0;
  let complete = true; // an undefined value is left out by Kysely (DEFAULT): such rows never use a kept text
  for (const row of rows) for (const c of columns) if ((values[i++] = row[c]) === undefined) complete = false;
  return executeWithKeptText(db, `${kind}:${columns.join(',')}:${rows.length}`, values, build, complete && rows.length <= MAX_ROWS_CACHED);
}

/**
 * Runs `build()` whose parameters are `values` in order, reusing the SQL text kept under `key` (the caller makes the
 * key say everything the text depends on besides the values, e.g. how many there are). `keep` false: neither use nor
 * keep a text.
 */
export async function executeWithKeptText<R>(db: Db, key: string, values: unknown[], build: () => Compilable<R>, keep = true): Promise<QueryResult<R>> {
  const adapter = db.getExecutor().adapter as object;
  let texts = cache.get(adapter);
  if (!texts) cache.set(adapter, (texts = new Map()));
  const text = keep ? texts.get(key) : null;
  if (text) return db.executeQuery(CompiledQuery.raw(text, values) as CompiledQuery<R>);
  const compiled = build().compile();
  if (text === undefined && keep) texts.set(key, sameValues(compiled.parameters, values) ? compiled.sql : null);
  return db.executeQuery(compiled);
}
