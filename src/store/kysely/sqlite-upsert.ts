/**
 * SQLite bulk upserts for the telemetry hot path: multi-row VALUES whose SQL text is built once per (table, row
 * count) and run through Kysely as a compiled query, so a batch costs no query-builder work and no row objects.
 * Batches with few rows per series are staged instead (sqlite-staging.ts). PostgreSQL takes pg-unnest.ts instead.
 */
import type { Kysely, Transaction } from 'kysely';
import type { AttributeKvTable, Database, TsKvTable } from '../schema.ts';
import type { WriteBatch } from '../../core/ports/store.ts';
import type { AttributeWrite, KvEntry, TsPoint } from '../../core/model.ts';
import { DIRECT_ROWS_PER_SERIES, type SqliteStaging } from './sqlite-staging.ts';
import { setColumns } from './values.ts';
import { statements } from '../sqlite-writer-dialect.ts';
import type { WriterOp } from '../sqlite-writer-thread.ts';
import { chunkOps } from './sqlite-chunk-writes.ts';

type Db = Kysely<Database> | Transaction<Database>;

/** Most rows per statement: 512 × 9 columns stays well under SQLite's 32766 bound parameters. */
const CHUNK = 512;

/**
 * Rows for the next statement: a power of two, so a table has at most ten statement shapes. Each shape is prepared
 * once and cached; one shape per row count would compile a new statement (~0.5 ms, ~200 KB) for most batch sizes.
 */
export function chunkRows(remaining: number): number {
  return remaining >= CHUNK ? CHUNK : 2 ** Math.floor(Math.log2(remaining));
}
const VALUES = ['bool_v', 'long_v', 'dbl_v', 'str_v', 'json_v'] as const;
const SET_VALUES = VALUES.map((c) => `"${c}" = excluded."${c}"`).join(', ');

interface UpsertShape<Row> {
  table: string;
  columns: readonly (keyof Row & string)[];
  /** The ON CONFLICT ... DO UPDATE clause ('' for a plain insert). */
  conflict: string;
}

const TS_KV_RECENT: UpsertShape<TsKvTable> = {
  table: 'ts_kv_recent',
  columns: ['device_id', 'key', 'ts', ...VALUES],
  conflict: '',
};

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

/**
 * The latest-value upsert from the last `?` rows appended to ts_kv_recent in this transaction (consecutive seqs). In
 * seq order with the upsert's `excluded.ts >= ts` guard, every row of a series gives what its newest one alone gives
 * (the later row winning a tie, as foldPoints' `latest`). Measured: 1.97 against 3.18 µs of SQLite a request of three
 * values, as binding the same values a second time is most of that statement's cost.
 */
const LATEST_FROM_STAGED = `insert into "ts_kv_latest" (${TS_KV_LATEST.columns.map((c) => `"${c}"`).join(', ')}) select ${TS_KV_LATEST.columns
  .map((c) => `"${c}"`)
  .join(', ')} from "ts_kv_recent" where "seq" > (select max("seq") - ? from "ts_kv_recent") order by "seq" ${TS_KV_LATEST.conflict}`;

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

/**
 * Adds to `ops` the statements (of chunkRows() rows) that upsert `count` rows through `shape`; `fill(params, row, at)`
 * writes row `row` into `params` from index `at`.
 */
function upsertRows(ops: WriterOp[], shape: UpsertShape<any>, count: number, fill: (params: unknown[], row: number, at: number) => void): void {
  const width = shape.columns.length;
  for (let first = 0, n = 0; first < count; first += n) {
    n = chunkRows(count - first);
    const params = new Array(n * width);
    for (let i = 0; i < n; i++) fill(params, first + i, i * width);
    ops.push({ sql: statementText(shape, n), params });
  }
}

/** The value column a type is stored in (values.ts setColumns), by type. */
const COLUMN_OF_TYPE: Readonly<Record<string, number>> = { BOOLEAN: 0, LONG: 1, DOUBLE: 2, STRING: 3, JSON: 4 };
const typedTexts = new Map<string, string>();

/** An upsert into ts_kv binding (device_id, key, ts, the one value column); the other four set to null on conflict. */
function typedTsKvText(column: number, rows: number): string {
  const cacheKey = `${column}:${rows}`;
  let text = typedTexts.get(cacheKey);
  if (!text) {
    const name = VALUES[column];
    const set = VALUES.map((c) => (c === name ? `"${c}" = excluded."${c}"` : `"${c}" = null`)).join(', ');
    text = `insert into "ts_kv" ("device_id", "key", "ts", "${name}") values ${Array(rows).fill('(?, ?, ?, ?)').join(', ')} on conflict ("device_id", "key", "ts") do update set ${set}`;
    typedTexts.set(cacheKey, text);
  }
  return text;
}

/**
 * Upserts `rows` (grouped by series, as foldPoints gives them) into ts_kv, one statement list per value column, each
 * row binding 4 parameters instead of 8: the four null columns are left out (no default: they are stored null) and
 * set to null on conflict, so the row stored is the one the 8-column upsert stores. Measured on the writer
 * (bench/store/writer-forms.ts form 17 against 7, 6 alternating rounds): 1.72-1.89 µs a row against 1.83-2.11.
 * Rows move between statements only across series, never within one: a series whose rows mix types (a later row of
 * one ts must still win over an earlier one of another type) returns false, and the caller takes the 8-column form.
 */
function upsertTsKvByColumn(ops: WriterOp[], rows: readonly TsPoint[]): boolean {
  const byColumn: TsPoint[][] = [[], [], [], [], []];
  let series: TsPoint | undefined;
  for (const p of rows) {
    if (series !== undefined && p.deviceId === series.deviceId && p.key === series.key) {
      if (p.value.type !== series.value.type) return false;
    } else series = p;
    const column = COLUMN_OF_TYPE[p.value.type];
    if (column === undefined) return false;
    byColumn[column].push(p);
  }
  for (let column = 0; column < byColumn.length; column++) {
    const list = byColumn[column];
    for (let first = 0, n = 0; first < list.length; first += n) {
      n = chunkRows(list.length - first);
      const params = new Array(n * 4);
      for (let i = 0, at = 0; i < n; i++, at += 4) {
        const p = list[first + i];
        params[at] = p.deviceId;
        params[at + 1] = p.key;
        params[at + 2] = p.ts;
        const v = p.value.value;
        params[at + 3] = column === 0 ? (v ? 1 : 0) : v;
      }
      ops.push({ sql: typedTsKvText(column, n), params });
    }
  }
  return true;
}

/** Writes a point's row (device_id, key, ts, five value columns) at `at`. */
function fillPoint(params: unknown[], p: TsPoint, at: number): void {
  params[at] = p.deviceId;
  params[at + 1] = p.key;
  params[at + 2] = p.ts;
  setColumns(params, at + 3, p.value);
}

/**
 * The SQLite batch writer: points go straight into statement parameters. SQLite applies a multi-row upsert row by
 * row, so a batch may hold a (device, key, ts) twice (the later row wins, as across batches); folding is only to
 * write fewer rows: a point replaces its series' previous row when both have one timestamp (devices that send
 * without `ts` often repeat one millisecond), and the latest-value upsert gets the newest point per (device, key).
 * Attribute writes fold the same way (the last write of a key wins). No sorting: SQLite has a single writer, so no
 * lock order matters.
 *
 * With `staging`, a batch of fewer than DIRECT_ROWS_PER_SERIES rows per series is appended to ts_kv_recent (a
 * commit writes every ts_kv page it dirties: sqlite-staging.ts); a denser one merges whatever is staged, then
 * upserts ts_kv directly, but for series of `staging.chunkMinPoints` numeric points or more, each written as one
 * ts_kv_chunk row (sqlite-chunk-writes.ts). ts_kv_latest is upserted directly either way. `extra` (statements of
 * the same transaction: the export outbox's rows) go in the same statement list.
 */
export async function sqliteWriteBatch(db: Db, batch: WriteBatch, staging?: SqliteStaging, extra?: WriterOp[]): Promise<void> {
  // One query for the whole batch, its result unread: on the writer thread it goes with the COMMIT (sqlite-writer-dialect.ts statements()).
  const ops: WriterOp[] = [];
  if (batch.telemetry.length > 0) {
    const { rows, latest } = foldPoints(batch.telemetry);
    const fill = (params: unknown[], i: number, at: number) => fillPoint(params, rows[i], at);
    const fillLatest = (params: unknown[], i: number, at: number) => fillPoint(params, latest[i], at);
    if (staging && rows.length < DIRECT_ROWS_PER_SERIES * latest.length) {
      upsertRows(ops, TS_KV_RECENT, rows.length, fill);
      // Few rows per series (HTTP: one): the latest values from the rows just staged, without binding them again.
      if (rows.length <= 2 * latest.length) ops.push({ sql: LATEST_FROM_STAGED, params: [rows.length] });
      else upsertRows(ops, TS_KV_LATEST, latest.length, fillLatest);
      for (const op of staging.appended(rows.length, latest)) ops.push(op);
    } else {
      if (staging) ops.push(...staging.mergeOps()); // else an older staged row of a (device, key, ts) would later be merged over this one
      directOps(ops, rows, latest, staging?.chunkMinPoints ?? Infinity);
    }
  }
  if (batch.attributes.length > 0) {
    const { writes, entries } = foldAttributes(batch.attributes);
    upsertRows(ops, ATTRIBUTE_KV, entries.length, (params, i, at) => {
      const w = writes[i];
      const e = entries[i];
      params[at] = w.deviceId;
      params[at + 1] = w.scope;
      params[at + 2] = e.key;
      params[at + 3] = w.ts;
      setColumns(params, at + 4, e.value);
    });
  }
  if (extra) for (const op of extra) ops.push(op);
  if (ops.length > 0) await db.executeQuery(statements(ops, true));
}

/**
 * Adds to `ops` the direct path's statements for `rows` and `latest` (foldPoints): the series of `chunkMinPoints`
 * numeric points or more as one ts_kv_chunk row each (sqlite-chunk-writes.ts), the other series as ts_kv rows, and
 * the latest values. After the staging merge: rule 2's delete must see the rows it merged.
 */
export function directOps(ops: WriterOp[], rows: readonly TsPoint[], latest: readonly TsPoint[], chunkMinPoints: number): void {
  const direct = chunkOps(ops, rows, chunkMinPoints);
  if (direct.length > 0 && !upsertTsKvByColumn(ops, direct)) upsertRows(ops, TS_KV, direct.length, (params, i, at) => fillPoint(params, direct[i], at));
  upsertRows(ops, TS_KV_LATEST, latest.length, (params, i, at) => fillPoint(params, latest[i], at));
}

/**
 * The attribute rows of `attributes` as parallel lists (entry, and the write it belongs to), the last write of each
 * (device, scope, key) replacing the earlier ones in place (what upserting them all in order would leave).
 */
export function foldAttributes(attributes: readonly AttributeWrite[]): { writes: AttributeWrite[]; entries: KvEntry[] } {
  const at = new Map<string, Map<string, Map<string, number>>>();
  const writes: AttributeWrite[] = [];
  const entries: KvEntry[] = [];
  for (const w of attributes) {
    let byDevice = at.get(w.scope);
    if (byDevice === undefined) at.set(w.scope, (byDevice = new Map()));
    let byKey = byDevice.get(w.deviceId);
    if (byKey === undefined) byDevice.set(w.deviceId, (byKey = new Map()));
    for (const e of w.entries) {
      const i = byKey.get(e.key);
      if (i === undefined) {
        byKey.set(e.key, entries.length);
        writes.push(w);
        entries.push(e);
      } else {
        writes[i] = w;
        entries[i] = e;
      }
    }
  }
  return { writes, entries };
}

/** A series (device, key) in foldPoints: its time-series rows so far and where its latest-value row stands. */
interface SeriesRows {
  key: string;
  rows: TsPoint[];
  latest: number;
  /** Its place in its device's `order`. */
  index: number;
}

/**
 * A device's series in foldPoints, by key and in order of first appearance. Devices send the same keys in the same
 * order message after message, so the series after the last one used is tried first (one comparison of key strings,
 * usually the same string object) before the map.
 */
interface DeviceSeries {
  byKey: Map<string, SeriesRows>;
  order: SeriesRows[];
  next: number;
}

/**
 * Time-series rows for `points`, each replacing its series' previous row if that has the same timestamp (upserting
 * them in order gives what upserting every point in order gives), and the newest point per (device, key), the later
 * one winning a tie.
 *
 * The rows come grouped by series (series in order of first appearance, each series' rows in arrival order), so a
 * direct upsert into ts_kv, clustered by (device_id, key, ts), inserts each series' rows one after the other into
 * the same few pages: measured per stored row (bench/store/writer-forms.ts), 1.7 µs at 64 rows per series against
 * 2.6 in arrival order. Within a series the order is kept, so the later of two rows of one (device, key, ts) still
 * wins.
 */
export function foldPoints(points: readonly TsPoint[]): { rows: TsPoint[]; latest: TsPoint[] } {
  const series = new Map<string, DeviceSeries>();
  const lists: TsPoint[][] = [];
  const latest: TsPoint[] = [];
  let count = 0;
  // A message's points are consecutive and of one device: its series are looked up once a message, not once a point.
  let device: string | undefined;
  let d: DeviceSeries | undefined;
  for (const p of points) {
    if (p.deviceId !== device || d === undefined) {
      device = p.deviceId;
      d = series.get(device);
      if (d === undefined) series.set(device, (d = { byKey: new Map(), order: [], next: 0 }));
    }
    const guess = d.order[d.next];
    const s = guess !== undefined && guess.key === p.key ? guess : d.byKey.get(p.key);
    if (s === undefined) {
      const rows = [p];
      const created: SeriesRows = { key: p.key, rows, latest: latest.length, index: d.order.length };
      d.byKey.set(p.key, created);
      d.order.push(created);
      d.next = 0;
      lists.push(rows);
      latest.push(p);
      count++;
      continue;
    }
    d.next = s.index + 1 < d.order.length ? s.index + 1 : 0;
    const last = s.rows.length - 1;
    if (s.rows[last].ts === p.ts) s.rows[last] = p;
    else {
      s.rows.push(p);
      count++;
    }
    if (latest[s.latest].ts <= p.ts) latest[s.latest] = p;
  }
  const rows = new Array<TsPoint>(count);
  let at = 0;
  for (const list of lists) for (const p of list) rows[at++] = p;
  return { rows, latest };
}
