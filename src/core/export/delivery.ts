/**
 * Delivery (issue 16): every node runs this loop. It leases due delivery lanes (rule, partition) through the database,
 * sends each lane's oldest outbox rows to the rule's destination in one batch, and deletes them once the destination
 * accepted them; a failure backs the lane off (exponential, with jitter, or the destination's Retry-After), and rows
 * older than the dead-letter age move to the dead letters. One lane holds one device's messages in order, and one
 * node at a time holds a lane, so messages of a device arrive in order; a node that dies mid-batch leaves its lease
 * to expire and another node delivers the batch again (at least once).
 */
import { randomBytes } from 'node:crypto';
import type { CoreLogger } from '../core-types.ts';
import type { ExportStore } from '../ports/export-store.ts';
import { SinkError, type ExportSink, type ExportSinkFactory } from '../ports/export-sink.ts';
import { laneOf, messagesOf, unpackMessages, type ExportLane, type ExportMessage, type ExportRule, type OutboxEntry, type OutboxRow } from './model.ts';
import type { OutboxBudget } from './outbox.ts';
import type { ExportRules } from './rules.ts';

export interface ExportSettings {
  /** How often an idle node looks for due lanes, ms. */
  pollMs: number;
  /** How long a claimed lane stays this node's, ms; a destination's timeout is capped at half of it. */
  leaseMs: number;
  /** Lanes delivered at once by this node. */
  concurrency: number;
  /** Rows older than this that still fail go to the dead letters, ms. */
  deadLetterAgeMs: number;
  /** The outbox's disk budget, bytes (estimated from messages waiting x their average size); past it new messages are skipped. */
  maxOutboxBytes: number;
  /** First retry delay, ms; doubled per attempt up to `retryMaxMs`. */
  retryBaseMs: number;
  retryMaxMs: number;
}

export const DEFAULT_EXPORT_SETTINGS: ExportSettings = {
  pollMs: 200,
  leaseMs: 30_000,
  concurrency: 4,
  deadLetterAgeMs: 24 * 3600_000,
  maxOutboxBytes: 1024 ** 3,
  retryBaseMs: 1000,
  retryMaxMs: 300_000,
};

/** What delivery reports (the composition root turns it into metrics). */
export interface ExportObserver {
  delivered?(rule: string, messages: number): void;
  /** A request to the destination failed (one per request, however many lanes it held). */
  failed?(rule: string): void;
  deadLettered?(rule: string, messages: number): void;
  skipped?(rule: string, messages: number): void;
  outbox?(rows: number, bytes: number, fill: number): void;
}

/** Most payload characters (or compact bytes) of written rows kept for delivery (ExportDelivery.remember); the oldest go first. */
const WRITTEN_CHARS_CAP = 32 * 1024 * 1024;

/** A row's stored size: its text, or its compact form's bytes. */
const rowSize = (row: OutboxEntry): number => row.payload.length + (row.points?.length ?? 0);

/**
 * A row that cannot be decoded, as a dead letter can hold it: one message whose data is `{"unreadable":"<the stored
 * bytes, base64>"}` (valid JSON, so a replay delivers it as it is instead of stalling again).
 */
function unreadableRow(row: OutboxRow): OutboxRow {
  const stored = row.points ?? Buffer.from(row.payload);
  return { ...row, points: null, messages: 1, payload: JSON.stringify({ unreadable: Buffer.from(stored).toString('base64') }) };
}

/** `row` when the dead letters can unpack it, else its unreadableRow (a row that fails only when rendered for sending). */
function readableForDeadLetter(row: OutboxRow): OutboxRow {
  try {
    unpackMessages(row);
    return row;
  } catch {
    return unreadableRow(row);
  }
}

/** What one delivery round did: delivered a full batch somewhere, delivered something, or nothing. */
type Round = 'full' | 'some' | 'none';

/** A batch the destination accepted, its rows still to be deleted. */
interface Delivered {
  rule: ExportRule;
  partition: number;
  rows: OutboxRow[];
  messages: number;
  round: Round;
}

/** A lane's oldest batch, read and rendered, before it is sent. */
interface LaneBatch {
  lane: ExportLane;
  rule: ExportRule;
  rows: OutboxRow[];
  messages: ExportMessage[];
  /** Messages in the batch's largest row. */
  largest: number;
}

/**
 * The claimed lanes' batches grouped into requests: the batches of one rule share a request while their messages stay
 * within the rule's batch size (one POST of several lanes costs the server and the receiver less than one per lane;
 * each device is in one lane, so its messages keep their order). In claim order.
 */
export function groupByRequest<B extends { rule: ExportRule; messages: readonly unknown[] }>(batches: readonly B[]): B[][] {
  const groups: B[][] = [];
  const open = new Map<string, { group: B[]; messages: number }>();
  for (const batch of batches) {
    const current = open.get(batch.rule.id);
    if (current && current.messages + batch.messages.length <= batch.rule.destination.batchSize) {
      current.group.push(batch);
      current.messages += batch.messages.length;
      continue;
    }
    const group = [batch];
    groups.push(group);
    open.set(batch.rule.id, { group, messages: batch.messages.length });
  }
  return groups;
}

/** The next retry delay after `attempts` failures: exponential with full jitter in its upper half. */
export function retryDelay(attempts: number, baseMs: number, maxMs: number, random = Math.random): number {
  const ceiling = Math.min(maxMs, baseMs * 2 ** Math.min(30, Math.max(0, attempts - 1)));
  return Math.round(ceiling / 2 + random() * (ceiling / 2));
}

export class ExportDelivery implements OutboxBudget {
  readonly nodeId = randomBytes(8).toString('hex');
  full = false;
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  private stopped = false;
  private readonly sinks = new Map<string, { key: string; sink: ExportSink }>();
  private readonly skippedSince = new Map<string, { rows: number; from: number }>();
  private averageBytes = 512;
  private lastBudgetCheck = 0;
  private warnedFill = false;
  /** Outbox rows this node wrote and committed, by seq (insertion order = oldest first), and their payload size. */
  private readonly written = new Map<number, OutboxRow>();
  private writtenChars = 0;
  private readonly writtenRow = (seq: number) => this.written.get(seq);
  /** The last piece of work queued by inOwnTurn. */
  private turns: Promise<void> = Promise.resolve();

  constructor(
    private readonly store: { exports: ExportStore },
    private readonly rules: ExportRules,
    private readonly openSink: ExportSinkFactory,
    private readonly settings: ExportSettings,
    private readonly logger: CoreLogger,
    private readonly observer: ExportObserver = {},
  ) {}

  start(): void {
    this.schedule(0);
  }

  private schedule(ms: number): void {
    if (this.stopped) return;
    this.timer = setTimeout(() => {
      // A full batch: go on at once; a partial one: let a little more gather first; nothing: poll.
      this.running = this.tick()
        .then((round) => this.schedule(round === 'full' ? 0 : round === 'some' ? Math.ceil(this.settings.pollMs / 2) : this.settings.pollMs))
        .catch((err) => {
          this.logger.warn({ event: 'export_error', err }, 'export delivery failed; trying again');
          this.schedule(this.settings.pollMs * 5);
        });
    }, ms);
    this.timer.unref?.();
  }

  /** One round: checks the budget now and then, delivers every lane it can claim; says whether a batch was full. */
  async tick(now = Date.now()): Promise<Round> {
    if (now - this.lastBudgetCheck >= 5_000) await this.checkBudget(now);
    if (this.rules.all().length === 0) return 'none';
    const lanes = await this.store.exports.claimLanes(this.nodeId, now, this.settings.leaseMs, this.settings.concurrency);
    if (lanes.length === 0) return 'none';
    const read = (await Promise.all(lanes.map((lane) => this.readLane(lane)))).filter((b): b is LaneBatch => b !== undefined);
    // A rule disabled or deleted while its lanes were read (that takes event-loop turns) sends nothing more.
    const batches: LaneBatch[] = [];
    for (const batch of read) {
      if (this.rules.all().some((r) => r.id === batch.rule.id && r.enabled)) batches.push(batch);
      else await this.store.exports.releaseLane(this.nodeId, batch.lane.ruleId, batch.lane.partition);
    }
    const results = (await Promise.all(groupByRequest(batches).map((group) => this.deliverGroup(group)))).flat();
    await this.complete(results.filter((r): r is Delivered => typeof r === 'object'));
    const rounds = results.map((r) => (typeof r === 'object' ? r.round : r));
    return rounds.includes('full') ? 'full' : rounds.includes('some') ? 'some' : 'none';
  }

  /** Deletes the round's delivered rows and resets their lanes, in one transaction (ExportStore.completeBatches). */
  private async complete(delivered: readonly Delivered[]): Promise<void> {
    if (delivered.length === 0) return;
    const kept = await this.store.exports.completeBatches(
      this.nodeId,
      delivered.map((d) => ({ ruleId: d.rule.id, partition: d.partition, seqs: d.rows.map((r) => r.seq) })),
    );
    delivered.forEach((d, i) => {
      this.forget(d.rows);
      if (!kept[i]) this.logger.warn({ event: 'export_lease_lost', rule: d.rule.name }, 'export lane was taken over during delivery; its batch will be delivered again');
      this.observer.delivered?.(d.rule.name, d.messages);
    });
  }

  /** The lane's oldest batch, rendered; undefined (the lane released) when its rule is gone or disabled or it is empty. */
  private async readLane(lane: ExportLane): Promise<LaneBatch | undefined> {
    const rule = this.rules.all().find((r) => r.id === lane.ruleId);
    if (!rule || !rule.enabled) {
      await this.store.exports.releaseLane(this.nodeId, lane.ruleId, lane.partition);
      return undefined;
    }
    const rows = await this.store.exports.readOutbox(rule.id, lane.partition, rule.destination.batchSize, this.writtenRow);
    if (rows.length === 0) {
      await this.store.exports.releaseLane(this.nodeId, lane.ruleId, lane.partition);
      return undefined;
    }
    // Each lane's rows are taken apart in an event-loop turn of their own: a round's lanes together held it for ms.
    const taken = await this.inOwnTurn(() => {
      let bytes = 0;
      let largest = 0;
      const messages: ExportMessage[] = [];
      const unreadable: { row: OutboxRow; err: unknown }[] = [];
      let readable = rows;
      for (let i = 0; i < rows.length; i++) {
        const row = rows[i];
        let rowMessages: ExportMessage[];
        try {
          rowMessages = messagesOf(row, rule.name);
        } catch (err) {
          // One row that cannot be read goes to the dead letters alone; the rest of the lane (and the round) goes on.
          if (readable === rows) readable = rows.slice(0, i);
          unreadable.push({ row, err });
          continue;
        }
        if (readable !== rows) readable.push(row);
        bytes += rowSize(row);
        largest = Math.max(largest, row.messages ?? 1);
        for (const m of rowMessages) messages.push(m);
      }
      // The budget estimates messages waiting x their average size.
      if (messages.length > 0) this.averageBytes = this.averageBytes * 0.9 + (bytes / messages.length + 120) * 0.1;
      return { readable, messages, largest, unreadable };
    });
    for (const { row, err } of taken.unreadable) await this.deadLetterUnreadable(lane, rule, row, err);
    if (taken.messages.length === 0) {
      await this.store.exports.releaseLane(this.nodeId, lane.ruleId, lane.partition);
      return undefined;
    }
    return { lane, rule, rows: taken.readable, messages: taken.messages, largest: taken.largest };
  }

  /** Moves an outbox row that cannot be decoded to the dead letters at once, with the reason (listed by the admin API). */
  private async deadLetterUnreadable(lane: ExportLane, rule: ExportRule, row: OutboxRow, err: unknown): Promise<void> {
    const error = `unreadable outbox row ${row.seq}: ${err instanceof Error ? err.message : String(err)}`;
    const kept = await this.store.exports.deadLetter(this.nodeId, [unreadableRow(row)], 0, error, Date.now());
    this.forget([row]);
    if (!kept) return; // the lane was taken over: its new holder meets the row itself
    this.observer.deadLettered?.(rule.name, row.messages ?? 1);
    this.logger.warn({ event: 'export_dead_letter', rule: rule.name, partition: lane.partition, seq: row.seq, error }, 'export outbox row could not be read; dead-lettered, the rest is delivered');
  }

  /**
   * Runs `work` in an event-loop turn of its own (setImmediate), after the work queued before it ran: pieces of a round
   * queued at once never run back to back in one turn, so the socket reads and timers of ingestion go between them.
   */
  private inOwnTurn<T>(work: () => T): Promise<T> {
    const run = this.turns.then(() => new Promise<T>((resolve, reject) => setImmediate(() => {
      try {
        resolve(work());
      } catch (err) {
        reject(err);
      }
    })));
    this.turns = run.then(() => {}, () => {});
    return run;
  }

  /**
   * Sends the batches of one rule's lanes in one request (groupByRequest) and returns each accepted batch for the
   * round to complete. When a request of several lanes fails quickly (the destination answered, or refused the
   * connection), each lane is tried alone, so one lane's message a destination refuses holds back only its own lane;
   * one that timed out, or was answered with a Retry-After, is not tried again this round (the lanes back off), keeping
   * the round within the lease.
   */
  private async deliverGroup(group: readonly LaneBatch[]): Promise<(Round | Delivered)[]> {
    const { rule } = group[0];
    const started = Date.now();
    try {
      await this.sinkFor(rule).deliver(group.length === 1 ? group[0].messages : group.flatMap((b) => b.messages));
    } catch (err) {
      // One failed attempt per request, whatever lanes it held (a request of several that is split is one, each lane's
      // own request after it another).
      this.observer.failed?.(rule.name);
      // A destination that said when to come back (Retry-After) gets no request before then: every lane waits.
      const toldToWait = err instanceof SinkError && err.retryAfterMs !== undefined;
      if (group.length > 1 && !toldToWait && Date.now() - started < Math.min(rule.destination.timeoutMs, this.settings.leaseMs / 2) / 2) {
        return (await Promise.all(group.map((b) => this.deliverGroup([b])))).flat();
      }
      return Promise.all(group.map((b) => this.failLane(b, err)));
    }
    // Full when a row more would not have fitted: the lane may hold more, so go on at once.
    const batchSize = rule.destination.batchSize;
    return group.map(({ lane, rows, messages, largest }) => ({ rule, partition: lane.partition, rows, messages: messages.length, round: messages.length + largest > batchSize ? 'full' : 'some' }));
  }

  /** A lane whose batch failed: backs it off (exponential, or Retry-After), or dead-letters the batch past its age. */
  private async failLane({ lane, rule, rows, messages }: LaneBatch, err: unknown): Promise<Round> {
    const now = Date.now();
    const error = err instanceof Error ? err.message : String(err);
    const attempts = lane.attempts + 1;
    if (rows[0].createdTime < now - this.settings.deadLetterAgeMs) {
      const kept = await this.store.exports.deadLetter(this.nodeId, rows.map(readableForDeadLetter), attempts, error, now);
      this.forget(rows);
      if (!kept) {
        this.logger.warn({ event: 'export_lease_lost', rule: rule.name }, 'export lane was taken over during delivery; its new holder delivers or dead-letters the batch');
        return 'none';
      }
      this.observer.deadLettered?.(rule.name, messages.length);
      this.logger.warn({ event: 'export_dead_letter', rule: rule.name, messages: messages.length, attempts, error }, 'export messages dead-lettered');
      return 'some';
    }
    const retryAfter = err instanceof SinkError && err.retryAfterMs !== undefined ? Math.min(err.retryAfterMs, 3_600_000) : undefined;
    const delay = retryAfter ?? retryDelay(attempts, this.settings.retryBaseMs, this.settings.retryMaxMs);
    await this.store.exports.failBatch(this.nodeId, rule.id, lane.partition, now + delay, error);
    if (attempts === 1 || attempts % 10 === 0) this.logger.warn({ event: 'export_retry', rule: rule.name, attempts, delayMs: delay, error }, 'export delivery failed; will retry');
    return 'none';
  }

  /**
   * Keeps committed outbox rows whose seq the store reported (SQLite's group commit), so delivering them needs no read
   * of their payloads: the lane index still says which rows are due, and a row never changes once written.
   */
  remember(entries: readonly OutboxEntry[] | undefined): void {
    if (!entries) return;
    for (const entry of entries) {
      if (entry.seq === undefined || this.written.has(entry.seq)) continue;
      this.written.set(entry.seq, entry as OutboxRow);
      this.writtenChars += rowSize(entry);
    }
    while (this.writtenChars > WRITTEN_CHARS_CAP) {
      const [seq, row] = this.written.entries().next().value as [number, OutboxRow];
      this.written.delete(seq);
      this.writtenChars -= rowSize(row);
    }
  }

  private forget(rows: readonly OutboxRow[]): void {
    for (const row of rows) {
      const kept = this.written.get(row.seq);
      if (kept && this.written.delete(row.seq)) this.writtenChars -= rowSize(kept);
    }
  }

  private sinkFor(rule: ExportRule): ExportSink {
    const destination = { ...rule.destination, timeoutMs: Math.min(rule.destination.timeoutMs, Math.floor(this.settings.leaseMs / 2)) };
    const key = JSON.stringify(destination);
    const cached = this.sinks.get(rule.id);
    if (cached && cached.key === key) return cached.sink;
    if (cached) void cached.sink.close().catch(() => {});
    const sink = this.openSink(destination);
    this.sinks.set(rule.id, { key, sink });
    return sink;
  }

  /** Estimates the outbox's size; past the budget, new rows are skipped (and a `gap` message says so afterwards). */
  private async checkBudget(now: number): Promise<void> {
    this.lastBudgetCheck = now;
    for (const [id, entry] of this.sinks) if (!this.rules.all().some((r) => r.id === id)) {
      this.sinks.delete(id);
      void entry.sink.close().catch(() => {});
    }
    const counts = await this.store.exports.countOutbox();
    let rows = 0;
    for (const n of counts.values()) rows += n;
    const bytes = Math.round(rows * this.averageBytes);
    const fill = this.settings.maxOutboxBytes > 0 ? bytes / this.settings.maxOutboxBytes : 0;
    this.observer.outbox?.(rows, bytes, fill);
    if (fill >= 0.8 && !this.warnedFill) {
      this.warnedFill = true;
      this.logger.warn({ event: 'export_outbox_filling', rows, bytes, fill: Number(fill.toFixed(3)) }, 'export outbox is over 80% of its disk budget: a destination is slow or down');
    } else if (fill < 0.7) this.warnedFill = false;
    if (!this.full && fill >= 1) {
      this.full = true;
      this.logger.error({ event: 'export_outbox_full', rows, bytes }, 'export outbox is full: new messages are stored but not exported until it drains (a gap message will say what was left out)');
    } else if (this.full && fill < 0.9) {
      this.full = false;
      await this.writeGaps(now);
      this.logger.warn({ event: 'export_outbox_drained' }, 'export outbox has room again: exporting resumes');
    }
  }

  skipped(ruleId: string, rows: number): void {
    const entry = this.skippedSince.get(ruleId);
    if (entry) entry.rows += rows;
    else this.skippedSince.set(ruleId, { rows, from: Date.now() });
    const rule = this.rules.all().find((r) => r.id === ruleId);
    this.observer.skipped?.(rule?.name ?? ruleId, rows);
  }

  private async writeGaps(now: number): Promise<void> {
    const gaps: OutboxEntry[] = [];
    for (const [ruleId, { rows, from }] of this.skippedSince) {
      const rule = this.rules.all().find((r) => r.id === ruleId);
      if (!rule) continue;
      gaps.push({ ruleId, partition: laneOf(rule, 0), deviceId: null, kind: 'gap', createdTime: now, payload: JSON.stringify({ skipped: rows, from, to: now }) });
    }
    this.skippedSince.clear();
    if (gaps.length > 0) await this.store.exports.insertOutbox(gaps);
  }

  /** Stops the loop after the round in progress; closes the sinks. Undelivered rows stay in the outbox. */
  async close(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    await this.running?.catch(() => {});
    await Promise.allSettled([...this.sinks.values()].map((s) => s.sink.close()));
    this.sinks.clear();
  }
}
