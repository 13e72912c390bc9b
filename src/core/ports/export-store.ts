/** What data out (issue 16) needs from storage: rules, the outbox, delivery lanes and dead letters. */
import type { DeadLetter, ExportLane, ExportRule, OutboxEntry, OutboxRow } from '../export/model.ts';
import type { Page, PageQuery } from '../model.ts';

export interface ExportStore {
  insertRule(rule: ExportRule): Promise<void>;
  /**
   * Saves a changed rule. A change of `lanes` takes effect at once for new messages, and the messages already waiting
   * are delivered first (each device keeps its order); refused while the messages of the change before are still
   * waiting: the answer is then how many (nothing saved), else 0.
   */
  updateRule(rule: ExportRule): Promise<number>;
  getRule(tenantId: string, id: string): Promise<ExportRule | undefined>;
  /** Every rule of every tenant. */
  listRules(): Promise<ExportRule[]>;
  /** Deletes the rule with its outbox rows, lanes and dead letters; false when it did not exist. */
  deleteRule(tenantId: string, id: string): Promise<boolean>;
  /** Appends outbox rows (inside the caller's transaction when called on one). */
  insertOutbox(entries: readonly OutboxEntry[]): Promise<void>;
  /** Leases up to `limit` free, due lanes that hold rows to `owner` until `now + leaseMs`. */
  claimLanes(owner: string, now: number, leaseMs: number, limit: number): Promise<ExportLane[]>;
  /**
   * The lane's oldest rows, in order, holding at most `maxMessages` messages between them (always at least one row);
   * taken from `written` (rows this node wrote, by seq) when it has them all.
   */
  readOutbox(ruleId: string, partition: number, maxMessages: number, written?: (seq: number) => OutboxRow | undefined): Promise<OutboxRow[]>;
  /**
   * Deletes delivered rows (`seqs`: the rows readOutbox returned, all of them, in order) and resets the lane's retries,
   * if `owner` still holds the lane; false otherwise.
   */
  completeBatch(owner: string, ruleId: string, partition: number, seqs: readonly number[]): Promise<boolean>;
  /**
   * completeBatch for several lanes in one transaction (a delivery round's): their rows share table pages (seqs of all
   * lanes interleave), so each page is written once instead of once per lane. One answer per batch, in order.
   */
  completeBatches(owner: string, batches: readonly { ruleId: string; partition: number; seqs: readonly number[] }[]): Promise<boolean[]>;
  failBatch(owner: string, ruleId: string, partition: number, nextAttemptTime: number, error: string): Promise<void>;
  releaseLane(owner: string, ruleId: string, partition: number): Promise<void>;
  /**
   * Moves rows (all of one lane) to the dead letters, one dead letter per message, and resets the lane, if `owner`
   * still holds the lane; false otherwise (nothing moved: the lane's new holder delivers or dead-letters the rows).
   */
  deadLetter(owner: string, rows: readonly OutboxRow[], attempts: number, lastError: string, now: number): Promise<boolean>;
  listDeadLetters(ruleIds: readonly string[], query: PageQuery): Promise<Page<DeadLetter>>;
  /** Puts dead letters back in the outbox (all of the rules', or those with the given seqs); returns how many. */
  replayDeadLetters(ruleIds: readonly string[], seqs?: readonly number[]): Promise<number>;
  /** Messages waiting in the outbox, per rule id. */
  countOutbox(): Promise<Map<string, number>>;
  listLanes(ruleId: string): Promise<ExportLane[]>;
}
