/**
 * SQLite bulk upserts for the telemetry hot path: multi-row VALUES whose SQL text is built once per (table, row
 * count) and run through Kysely as a compiled query, so a batch costs no query-builder work and no row objects.
 * PostgreSQL takes pg-unnest.ts instead.
 */
import { CompiledQuery, type Kysely, type Transaction } from 'kysely';
import type { AttributeKvTable, Database, TsKvTable } from '../schema.ts';
import type { WriteBatch } from '../store.ts';
import type { TsPoint } from '../../core/model.ts';
import { pushColumns } from './values.ts';

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


/** Runs `shape`'s upsert over rows already flattened into `params` (`width` values per row). */
async function upsertFlat(db: Db, shape: UpsertShape<any>, params: unknown[]): Promise<void> {
  const width = shape.columns.length;
  const rows = params.length / width;
  for (let i = 0; i < rows; i += CHUNK) {
    const n = Math.min(CHUNK, rows - i);
    await db.executeQuery(CompiledQuery.raw(statementText(shape, n), params.slice(i * width, (i + n) * width)));
  }
}

/**
 * The SQLite batch writer: points go straight into statement parameters. A repeated (device, key, ts) is folded
 * first (the last value wins; devices that send without `ts` often repeat one millisecond), and the latest-value
 * upsert gets the newest point per (device, key). No sorting: SQLite has a single writer, so no lock order matters.
 */
export async function sqliteWriteBatch(db: Db, batch: WriteBatch): Promise<void> {
  if (batch.telemetry.length > 0) {
    const all = new Map<string, TsPoint>();
    const latest = new Map<string, TsPoint>();
    for (const p of batch.telemetry) {
      const series = `${p.deviceId}\u0000${p.key}`;
      all.set(`${series}\u0000${p.ts}`, p);
      const prev = latest.get(series);
      if (!prev || prev.ts <= p.ts) latest.set(series, p);
    }
    await upsertFlat(db, TS_KV, pointParams(all.values()));
    await upsertFlat(db, TS_KV_LATEST, pointParams(latest.values()));
  }
  if (batch.attributes.length > 0) {
    const params: unknown[] = [];
    for (const w of batch.attributes) {
      for (const e of w.entries) {
        params.push(w.deviceId, w.scope, e.key, w.ts);
        pushColumns(params, e.value);
      }
    }
    await upsertFlat(db, ATTRIBUTE_KV, params);
  }
}

function pointParams(points: Iterable<TsPoint>): unknown[] {
  const params: unknown[] = [];
  for (const p of points) {
    params.push(p.deviceId, p.key, p.ts);
    pushColumns(params, p.value);
  }
  return params;
}
