import type { Kysely, Transaction } from 'kysely';
import type { Database, TsKvTable, AttributeKvTable } from '../schema.ts';
import type { WriteBatch } from '../../core/ports/store.ts';
import type { Dialect } from '../dialect.ts';
import { upsertAttributes, upsertTsKv, upsertTsKvLatest } from './pg-unnest.ts';
import { sqliteWriteBatch } from './sqlite-upsert.ts';
import type { SqliteStaging } from './sqlite-staging.ts';
import { toColumns } from './values.ts';
import type { WriterOp } from '../sqlite-writer-thread.ts';

/** Orders rows by their key so concurrent batches lock rows in one order (PostgreSQL would otherwise deadlock). */
const byKey = <T>(rows: Map<string, T>): T[] => [...rows.entries()].sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0)).map((e) => e[1]);

/**
 * Writes one group-commit batch inside the caller's transaction: every time-series value (upsert on
 * device, key, ts), the latest value per key (only moving forward in time), and attribute writes.
 * Duplicate rows within the batch are folded first (PostgreSQL rejects one statement touching a row twice).
 * On PostgreSQL each table takes one `unnest` statement (pg-unnest.ts); SQLite has its own writer (sqlite-upsert.ts),
 * which stages sparse batches when given `staging` and sends `sqliteExtra` (statements of the same transaction) with them.
 */
export async function writeBatch(db: Kysely<Database> | Transaction<Database>, batch: WriteBatch, dialect?: Dialect, staging?: SqliteStaging, sqliteExtra?: WriterOp[]): Promise<void> {
  if (dialect?.name !== 'postgres') return sqliteWriteBatch(db, batch, staging, sqliteExtra);
  const all = new Map<string, TsKvTable>();
  const latest = new Map<string, TsKvTable>();
  for (const p of batch.telemetry) {
    const row: TsKvTable = { device_id: p.deviceId, key: p.key, ts: p.ts, ...toColumns(p.value) };
    all.set(`${p.deviceId}\u0000${p.key}\u0000${p.ts}`, row);
    const lk = `${p.deviceId}\u0000${p.key}`;
    const prev = latest.get(lk);
    if (!prev || prev.ts <= p.ts) latest.set(lk, row);
  }
  const tsRows = byKey(all);
  const latestRows = byKey(latest);
  const attrRows = byKey(foldAttributes(batch));
  await upsertTsKv(db, tsRows);
  await upsertTsKvLatest(db, latestRows);
  await upsertAttributes(db, attrRows);
}

/** The attribute rows of a batch, the last write of each (device, scope, key) winning. */
function foldAttributes(batch: WriteBatch): Map<string, AttributeKvTable> {
  const attrs = new Map<string, AttributeKvTable>();
  for (const w of batch.attributes) {
    for (const e of w.entries) {
      attrs.set(`${w.deviceId}\u0000${w.scope}\u0000${e.key}`, { device_id: w.deviceId, scope: w.scope, key: e.key, last_update_ts: w.ts, ...toColumns(e.value) });
    }
  }
  return attrs;
}
