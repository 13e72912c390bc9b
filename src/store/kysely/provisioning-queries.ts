/**
 * Multi-row writes for provisioning groups (issue 17): the `provisionState` attributes and the audit rows of every
 * device a group of concurrent provisioning requests created, each kind in one statement instead of one per device.
 */
import type { Kysely, Transaction } from 'kysely';
import type { AttributeScope, AuditEntry, KvEntry } from '../../core/model.ts';
import type { Database } from '../schema.ts';
import { auditToRow } from './rows.ts';
import { toColumns } from './values.ts';
import { executeInsert } from './compiled-inserts.ts';

type Db = Kysely<Database> | Transaction<Database>;

/** Rows per statement: at most 13 parameters a row, far below SQLite's 32,766 and PostgreSQL's 65,535. */
const ROWS_PER_STATEMENT = 500;

/** One attribute of one device, inserted unless the key exists. */
export interface NewAttribute {
  deviceId: string;
  scope: AttributeScope;
  entry: KvEntry;
  ts: number;
}

/** Inserts each attribute unless its key exists (ON CONFLICT DO NOTHING), in multi-row statements. */
export async function insertAttributesIfAbsent(db: Db, rows: readonly NewAttribute[]): Promise<void> {
  for (let start = 0; start < rows.length; start += ROWS_PER_STATEMENT) {
    const part = rows.slice(start, start + ROWS_PER_STATEMENT).map((r) => ({ device_id: r.deviceId, scope: r.scope, key: r.entry.key, last_update_ts: r.ts, ...toColumns(r.entry.value) }));
    await executeInsert(db, 'attribute-if-absent', Object.keys(part[0]) as (keyof (typeof part)[number])[], part, () =>
      db
        .insertInto('attribute_kv')
        .values(part)
        .onConflict((oc) => oc.columns(['device_id', 'scope', 'key']).doNothing()),
    );
  }
}

/** Appends audit rows in multi-row statements, in order. */
export async function insertAudits(db: Db, entries: readonly AuditEntry[]): Promise<void> {
  for (let start = 0; start < entries.length; start += ROWS_PER_STATEMENT) {
    const part = entries.slice(start, start + ROWS_PER_STATEMENT).map(auditToRow);
    await executeInsert(db, 'audit', Object.keys(part[0]) as (keyof (typeof part)[number])[], part, () => db.insertInto('audit_log').values(part));
  }
}
