/**
 * SQLite bulk upserts for the telemetry hot path: multi-row VALUES whose SQL text is built once per (table, row
 * count) and run through Kysely as a compiled query, so a batch costs no query-builder work. PostgreSQL takes
 * pg-unnest.ts instead.
 */
import { CompiledQuery, type Kysely, type Transaction } from 'kysely';
import type { AttributeKvTable, Database, TsKvTable } from '../schema.ts';

type Db = Kysely<Database> | Transaction<Database>;

/** Rows per statement: 500 × 9 columns stays well under SQLite's 32766 bound parameters. */
const CHUNK = 500;
const VALUES = ['bool_v', 'long_v', 'dbl_v', 'str_v', 'json_v'] as const;
const SET_VALUES = VALUES.map((c) => `"${c}" = excluded."${c}"`).join(', ');

interface UpsertShape<Row> {
  table: string;
  columns: readonly (keyof Row & string)[];
  /** The ON CONFLICT ... DO UPDATE clause. */
  conflict: string;
}

const TS_KV: UpsertShape<TsKvTable> = {
  table: 'ts_kv',
  columns: ['device_id', 'key', 'ts', ...VALUES],
  conflict: `on conflict ("device_id", "key", "ts") do update set ${SET_VALUES}`,
};

const TS_KV_LATEST: UpsertShape<TsKvTable> = {
  table: 'ts_kv_latest',
  columns: ['device_id', 'key', 'ts', ...VALUES],
  conflict: `on conflict ("device_id", "key") do update set ${SET_VALUES}, "ts" = excluded."ts" where excluded."ts" >= "ts_kv_latest"."ts"`,
};

const ATTRIBUTE_KV: UpsertShape<AttributeKvTable> = {
  table: 'attribute_kv',
  columns: ['device_id', 'scope', 'key', 'last_update_ts', ...VALUES],
  conflict: `on conflict ("device_id", "scope", "key") do update set ${SET_VALUES}, "last_update_ts" = excluded."last_update_ts"`,
};

const texts = new Map<string, string>();

function statementText(shape: UpsertShape<any>, rows: number): string {
  const cacheKey = `${shape.table}:${rows}`;
  let text = texts.get(cacheKey);
  if (!text) {
    const tuple = `(${shape.columns.map(() => '?').join(', ')})`;
    text = `insert into "${shape.table}" (${shape.columns.map((c) => `"${c}"`).join(', ')}) values ${Array(rows).fill(tuple).join(', ')} ${shape.conflict}`;
    texts.set(cacheKey, text);
  }
  return text;
}

async function upsert<Row>(db: Db, shape: UpsertShape<Row>, rows: Row[]): Promise<void> {
  for (let i = 0; i < rows.length; i += CHUNK) {
    const chunk = rows.slice(i, i + CHUNK);
    const params: unknown[] = [];
    for (const row of chunk) for (const c of shape.columns) params.push(row[c] ?? null);
    await db.executeQuery(CompiledQuery.raw(statementText(shape, chunk.length), params));
  }
}

export const sqliteUpsertTsKv = (db: Db, rows: TsKvTable[]) => upsert(db, TS_KV, rows);
export const sqliteUpsertTsKvLatest = (db: Db, rows: TsKvTable[]) => upsert(db, TS_KV_LATEST, rows);
export const sqliteUpsertAttributes = (db: Db, rows: AttributeKvTable[]) => upsert(db, ATTRIBUTE_KV, rows);
