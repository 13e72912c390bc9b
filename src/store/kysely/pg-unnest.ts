/**
 * PostgreSQL bulk upserts: each column travels as one array parameter and `unnest` turns them back into rows, so a
 * batch of any size is one statement with a handful of parameters (multi-row VALUES needs 8 per row and a query
 * text that grows with the batch).
 */
import { sql, type Kysely, type Transaction } from 'kysely';
import type { AttributeKvTable, Database, TsKvTable } from '../schema.ts';

type Db = Kysely<Database> | Transaction<Database>;

const VALUE_TYPES = { bool_v: 'int4', long_v: 'int8', dbl_v: 'float8', str_v: 'text', json_v: 'text' } as const;
const SET_VALUES = sql.raw('bool_v = excluded.bool_v, long_v = excluded.long_v, dbl_v = excluded.dbl_v, str_v = excluded.str_v, json_v = excluded.json_v');

/** `unnest($1::text[], $2::int8[], …)` over the given columns of `rows`. */
function unnestOf<Row extends object>(rows: Row[], columns: Record<string, string>) {
  const args = Object.entries(columns).map(([name, type]) => {
    const values = rows.map((r) => (r as Record<string, unknown>)[name] ?? null);
    return sql`${values}::${sql.raw(type)}[]`;
  });
  return sql`unnest(${sql.join(args)})`;
}

const columnList = (columns: Record<string, string>) => sql.raw(Object.keys(columns).join(', '));

/** Upserts time-series rows on (device_id, key, ts). */
export async function upsertTsKv(db: Db, rows: TsKvTable[]): Promise<void> {
  if (rows.length === 0) return;
  const cols = { device_id: 'text', key: 'text', ts: 'int8', ...VALUE_TYPES };
  await sql`insert into ts_kv (${columnList(cols)}) select * from ${unnestOf(rows, cols)}
    on conflict (device_id, key, ts) do update set ${SET_VALUES}`.execute(db);
}

/** Upserts latest values on (device_id, key), only moving forward in time. */
export async function upsertTsKvLatest(db: Db, rows: TsKvTable[]): Promise<void> {
  if (rows.length === 0) return;
  const cols = { device_id: 'text', key: 'text', ts: 'int8', ...VALUE_TYPES };
  await sql`insert into ts_kv_latest (${columnList(cols)}) select * from ${unnestOf(rows, cols)}
    on conflict (device_id, key) do update set ${SET_VALUES}, ts = excluded.ts where excluded.ts >= ts_kv_latest.ts`.execute(db);
}

/** Upserts attributes on (device_id, scope, key). */
export async function upsertAttributes(db: Db, rows: AttributeKvTable[]): Promise<void> {
  if (rows.length === 0) return;
  const cols = { device_id: 'text', scope: 'text', key: 'text', last_update_ts: 'int8', ...VALUE_TYPES };
  await sql`insert into attribute_kv (${columnList(cols)}) select * from ${unnestOf(rows, cols)}
    on conflict (device_id, scope, key) do update set ${SET_VALUES}, last_update_ts = excluded.last_update_ts`.execute(db);
}
