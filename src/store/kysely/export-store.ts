/** The ExportStore port over export-queries.ts, bound to one connection or transaction. */
import type { Kysely, Transaction } from 'kysely';
import type { ExportStore } from '../../core/ports/export-store.ts';
import type { Dialect } from '../dialect.ts';
import type { Database } from '../schema.ts';
import * as q from './export-queries.ts';
import { statements } from '../sqlite-writer-dialect.ts';

type Db = Kysely<Database> | Transaction<Database>;

/**
 * `inTransaction` runs multi-statement writes atomically (the store's own transaction, or the caller's); with `offload`,
 * on SQLite's writer thread (Store.transaction).
 */
export function kyselyExportStore(db: Db, dialect: Dialect, inTransaction: <T>(work: (db: Db) => Promise<T>, options?: { offload?: boolean }) => Promise<T>): ExportStore {
  return {
    insertRule: (rule) => inTransaction((tx) => q.insertExportRule(tx, rule)),
    updateRule: (rule) => inTransaction((tx) => q.updateExportRule(tx, dialect, rule)),
    getRule: (tenantId, id) => q.getExportRule(db, tenantId, id),
    listRules: () => q.listExportRules(db),
    deleteRule: (tenantId, id) => inTransaction((tx) => q.deleteExportRule(tx, tenantId, id)),
    insertOutbox: (entries) => q.insertOutbox(db, entries),
    claimLanes: (owner, now, leaseMs, limit) => q.claimExportLanes(db, dialect, owner, now, leaseMs, limit),
    readOutbox: (ruleId, partition, limit, written) => q.readOutbox(db, ruleId, partition, limit, written),
    completeBatch: (owner, ruleId, partition, seqs) => inTransaction((tx) => q.completeExportBatch(tx, dialect, owner, ruleId, partition, seqs)),
    completeBatches: (owner, batches) =>
      dialect.name === 'sqlite'
        ? inTransaction(async (tx) => {
            // One statement list, run off the event loop (export-queries.ts completeExportBatchOps).
            const { ops, kept } = q.completeExportBatchOps(owner, batches);
            await tx.executeQuery(statements(ops));
            return kept;
          }, { offload: true })
        : inTransaction(async (tx) => {
            const kept: boolean[] = [];
            for (const b of batches) kept.push(await q.completeExportBatch(tx, dialect, owner, b.ruleId, b.partition, b.seqs));
            return kept;
          }),
    failBatch: (owner, ruleId, partition, next, error) => q.failExportBatch(db, owner, ruleId, partition, next, error),
    releaseLane: (owner, ruleId, partition) => q.releaseExportLane(db, owner, ruleId, partition),
    deadLetter: (owner, rows, attempts, lastError, now) => inTransaction((tx) => q.deadLetter(tx, dialect, owner, rows, attempts, lastError, now)),
    listDeadLetters: (ruleIds, query) => q.listDeadLetters(db, ruleIds, query),
    replayDeadLetters: (ruleIds, seqs) => inTransaction((tx) => q.replayDeadLetters(tx, ruleIds, seqs)),
    countOutbox: () => q.countOutbox(db),
    listLanes: (ruleId) => q.listExportLanes(db, ruleId),
  };
}
