/**
 * Multi-row INSERTs whose SQL is built once per row count (issue 17: Kysely's building and compiling cost about a
 * tenth of a provisioning). The first statement of each row count is built and compiled by Kysely; if its parameters
 * are exactly the rows' values, column by column (they are when every row has the same columns in the same order),
 * the SQL text is kept and later statements of that row count only flatten their values. Otherwise nothing is kept
 * and Kysely builds every statement, as before.
 */
import { CompiledQuery, type Compilable, type Kysely, type Transaction } from 'kysely';
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
  const adapter = db.getExecutor().adapter as object;
  let texts = cache.get(adapter);
  if (!texts) cache.set(adapter, (texts = new Map()));
  const key = `${kind}:${columns.join(',')}:${rows.length}`;
  const values: unknown[] = new Array(rows.length * columns.length);
  let i = 0;
  let complete = true; // an undefined value is left out by Kysely (DEFAULT): such rows never use a kept text
  for (const row of rows) for (const c of columns) if ((values[i++] = row[c]) === undefined) complete = false;
  const text = complete ? texts.get(key) : null;
  if (text) return (await db.executeQuery(CompiledQuery.raw(text, values) as CompiledQuery<R>)).rows;
  const compiled = build().compile();
  if (text === undefined && complete && rows.length <= MAX_ROWS_CACHED) texts.set(key, sameValues(compiled.parameters, values) ? compiled.sql : null);
  return (await db.executeQuery(compiled)).rows;
}
