/**
 * Reused multi-row INSERT texts (kysely/compiled-inserts.ts): a kept SQL text is used only for rows with the same
 * columns in the same order; rows of the same kind and count but other columns get their own statement.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import Database from 'better-sqlite3';
import { Kysely, SqliteDialect } from 'kysely';
import { executeInsert } from '../../src/store/kysely/compiled-inserts.ts';

test('two statements of one kind and row count with other columns each write their own columns', async () => {
  const db = new Kysely<any>({ dialect: new SqliteDialect({ database: new Database(':memory:') }) });
  await db.schema.createTable('t').addColumn('a', 'text').addColumn('b', 'text').addColumn('c', 'text').execute();
  const insert = (rows: Record<string, string>[]) => executeInsert(db as never, 'kind', Object.keys(rows[0]!) as never, rows, () => db.insertInto('t').values(rows));
  await insert([{ a: 'a1', b: 'b1' }, { a: 'a2', b: 'b2' }]);
  await insert([{ a: 'a3', c: 'c3' }, { a: 'a4', c: 'c4' }]);
  await insert([{ c: 'c5', a: 'a5' }, { c: 'c6', a: 'a6' }]);
  await insert([{ a: 'a7', b: 'b7' }, { a: 'a8', b: 'b8' }]);
  const rows = await db.selectFrom('t').selectAll().orderBy('a').execute();
  assert.deepEqual(rows, [
    { a: 'a1', b: 'b1', c: null },
    { a: 'a2', b: 'b2', c: null },
    { a: 'a3', b: null, c: 'c3' },
    { a: 'a4', b: null, c: 'c4' },
    { a: 'a5', b: null, c: 'c5' },
    { a: 'a6', b: null, c: 'c6' },
    { a: 'a7', b: 'b7', c: null },
    { a: 'a8', b: 'b8', c: null },
  ]);
  await db.destroy();
});
