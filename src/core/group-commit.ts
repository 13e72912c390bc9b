/**
 * Group commit: telemetry and attribute writes from many requests are committed in one transaction, and each
 * request's promise resolves only after the transaction holding it has committed (DESIGN "Data flow").
 */
import type { CommitListener } from './api.ts';
import type { AttributeWrite, TsPoint } from './model.ts';
import type { Store, WriteBatch } from './ports/store.ts';
import type { CoreLogger } from './core-types.ts';
import { isDependencyUnavailable } from './errors.ts';
import type { Outages } from './outages.ts';

/** Called once a submission is committed, with its number of points, before its promise resolves. */
export type CommittedHook = (points: number) => void;

/**
 * Writes for one transaction: the submissions' points and attribute writes merged as they arrive, and per
 * submission where its share ends and how to settle it.
 */
class PendingBatch {
  readonly telemetry: TsPoint[];
  readonly attributes: AttributeWrite[] = [];
  points = 0;
  rows = 0;
  submissions = 0;
  /** Per submission, two entries: the end of its points in `telemetry`, the end of its writes in `attributes`. */
  readonly ends: number[];
  /** Per submission, three entries: resolve, reject, its CommittedHook or undefined; or a CommitListener, undefined, the hook. */
  readonly callbacks: (((arg?: any) => void) | CommitListener | undefined)[];

  /** Arrays are presized for the expected number of points and submissions (the previous batch's), so they rarely grow. */
  constructor(
    points: number,
    submissions: number,
    private readonly logger: CoreLogger,
  ) {
    this.telemetry = new Array(points);
    this.ends = new Array(2 * submissions);
    this.callbacks = new Array(3 * submissions);
  }

  add(telemetry: readonly TsPoint[], attributes: readonly AttributeWrite[] | undefined, rows: number, resolve: (() => void) | CommitListener, reject: ((err: unknown) => void) | undefined, committed: CommittedHook | undefined): void {
    for (const p of telemetry) this.telemetry[this.points++] = p;
    if (attributes) for (const a of attributes) this.attributes.push(a);
    this.rows += rows;
    const n = this.submissions++;
    this.ends[2 * n] = this.points;
    this.ends[2 * n + 1] = this.attributes.length;
    this.callbacks[3 * n] = resolve;
    this.callbacks[3 * n + 1] = reject;
    this.callbacks[3 * n + 2] = committed;
  }

  /** The batch to write (its arrays trimmed to what was added). */
  seal(): WriteBatch {
    this.telemetry.length = this.points;
    this.ends.length = 2 * this.submissions;
    this.callbacks.length = 3 * this.submissions;
    return this;
  }

  /** Submission `i`'s own writes. */
  part(i: number): WriteBatch {
    const telemetryFrom = i === 0 ? 0 : this.ends[2 * i - 2];
    const attributesFrom = i === 0 ? 0 : this.ends[2 * i - 1];
    return { telemetry: this.telemetry.slice(telemetryFrom, this.ends[2 * i]), attributes: this.attributes.slice(attributesFrom, this.ends[2 * i + 1]) };
  }

  /** Settles submission `i` as committed: its hook, then its promise (rejected with the hook's error, if it throws). */
  committed(i: number): void {
    const hook = this.callbacks[3 * i + 2] as CommittedHook | undefined;
    if (hook) {
      try {
        hook(this.ends[2 * i] - (i === 0 ? 0 : this.ends[2 * i - 2]));
      } catch (err) {
        return this.failed(i, err);
      }
    }
    const reject = this.callbacks[3 * i + 1];
    if (reject === undefined) tell(this.callbacks[3 * i] as CommitListener, this.logger);
    else (this.callbacks[3 * i] as () => void)();
  }

  failed(i: number, err: unknown): void {
    const reject = this.callbacks[3 * i + 1] as ((err: unknown) => void) | undefined;
    if (reject === undefined) tell(this.callbacks[3 * i] as CommitListener, this.logger, err, true);
    else reject(err);
  }
}

/**
 * Tells a listener how its submission ended. A listener runs synchronously inside flush() (a promise's resolvers
 * cannot throw; a listener can): what it throws is logged and goes no further, so it can neither fail a batch that
 * committed (its neighbours told again, their writes retried) nor stop the listeners after it being told.
 */
function tell(listener: CommitListener, logger: CoreLogger, err?: unknown, failed = false): void {
  try {
    if (failed) listener.failed(err);
    else listener.committed();
  } catch (thrown) {
    logger.error({ err: thrown }, 'commit listener failed');
  }
}

/** Rows a submission writes: its points and attribute entries. */
function rowsOf(telemetry: readonly TsPoint[], attributes: readonly AttributeWrite[] | undefined): number {
  let rows = telemetry.length;
  if (attributes) for (const a of attributes) rows += a.entries.length;
  return rows;
}

let capturedResolve: (() => void) | undefined;
let capturedReject: ((err: unknown) => void) | undefined;
/** One executor for every submission's promise (no closure per call): hands its resolvers to submit(). */
function capture(resolve: () => void, reject: (err: unknown) => void): void {
  capturedResolve = resolve;
  capturedReject = reject;
}

function runScheduled(committer: GroupCommitter): void {
  committer.runFlush();
}

/** Retries of a batch whose write failed because the database seemed down, before devices are told "not now". */
const WRITE_RETRIES = 3;

export interface GroupCommitSettings {
  /** Most rows per transaction; a larger backlog is written in several transactions. */
  maxRows: number;
  /** Wait this long for more writes before committing (0: commit on the next turn of the event loop). */
  maxDelayMs: number;
  /**
   * Shortest time between the starts of two commits, ms (default 0). Writes that arrive sooner after a commit
   * started wait for the rest of it, so a steady stream is committed in batches of at least this long; a write
   * after a quiet moment is committed at once.
   */
  minIntervalMs?: number;
}

export interface GroupCommitStats {
  batches: number;
  rows: number;
  lastCommitMs: number;
}

export class GroupCommitter {
  /** Batches not yet being written, oldest first; only the last one takes new submissions. */
  private queue: PendingBatch[] = [];
  /** Points and submissions of the newest batch closed to new submissions, to size the next one. */
  private lastSize = { points: 0, submissions: 0 };
  private scheduled = false;
  /** performance.now() when the last commit started. */
  private lastStart = -Infinity;
  private flushing: Promise<void> | undefined;
  private closed = false;
  readonly stats: GroupCommitStats = { batches: 0, rows: 0, lastCommitMs: 0 };
  /** Adds rows that must commit with a batch (the export outbox, issue 16) just before it is written. */
  decorate: ((batch: WriteBatch) => void) | undefined;
  /** Called with each committed batch (or submission written alone), before its submissions are settled (issue 16). */
  afterCommit: ((batch: WriteBatch) => void) | undefined;
  /** Called after each commit with its duration in ms and row count (metrics hook). */
  onCommit: ((ms: number, rows: number) => void) | undefined;
  /**
   * Called with the writes of each committed transaction, after its submissions are settled (live updates,
   * src/core/live-updates.ts). It must not throw; an error it throws is logged and never fails the commit.
   */
  onBatchCommitted: ((batch: WriteBatch) => void) | undefined;

  constructor(
    private readonly store: Store,
    private readonly settings: GroupCommitSettings,
    private readonly logger: CoreLogger,
    private readonly outages?: Outages,
  ) {}

  /**
   * Queues writes; resolves once they are committed, rejects if their transaction failed. `committed`, if given,
   * runs after the commit and before the promise resolves (also when there is nothing to write).
   */
  submit(telemetry: readonly TsPoint[], attributes?: readonly AttributeWrite[], committed?: CommittedHook): Promise<void> {
    if (this.closed) return Promise.reject(new Error('storage is closing'));
    const rows = rowsOf(telemetry, attributes);
    if (rows === 0) return committed ? Promise.resolve(0).then(committed) : Promise.resolve();
    const promise = new Promise<void>(capture);
    this.enqueue(telemetry, attributes, rows, capturedResolve!, capturedReject!, committed);
    return promise;
  }

  /**
   * submit() telling `listener` instead of returning a promise (the same order and guarantees: `committed` only after
   * the commit, then `listener.committed()`; a refusal is told on a later microtask, never during this call).
   */
  submitTo(telemetry: readonly TsPoint[], listener: CommitListener, committed?: CommittedHook): void {
    const rows = rowsOf(telemetry, undefined);
    if (this.closed || rows === 0) this.settleLater(listener, committed);
    else this.enqueue(telemetry, undefined, rows, listener, undefined, committed);
  }

  /**
   * submitTo's answer when nothing is queued: refused while closing, else committed with nothing to write. (A function
   * of its own: a closure in submitTo would make V8 allocate its captured variables on every call, issue 17.)
   */
  private settleLater(listener: CommitListener, committed: CommittedHook | undefined): void {
    const closed = this.closed;
    queueMicrotask(() => {
      if (closed) return tell(listener, this.logger, new Error('storage is closing'), true);
      try {
        committed?.(0);
      } catch (err) {
        return tell(listener, this.logger, err, true);
      }
      tell(listener, this.logger);
    });
  }

  /** Tells `listener` that its submission failed with `err`, on a later microtask (a throw of the listener is logged). */
  refuse(listener: CommitListener, err: unknown): void {
    queueMicrotask(() => tell(listener, this.logger, err, true));
  }

  private enqueue(telemetry: readonly TsPoint[], attributes: readonly AttributeWrite[] | undefined, rows: number, resolve: (() => void) | CommitListener, reject: ((err: unknown) => void) | undefined, committed: CommittedHook | undefined): void {
    let batch = this.queue.at(-1);
    // A batch takes submissions while they fit in maxRows; the first one always fits.
    if (!batch || (batch.rows > 0 && batch.rows + rows > this.settings.maxRows)) {
      const like = batch ?? this.lastSize;
      const max = this.settings.maxRows;
      this.queue.push((batch = new PendingBatch(Math.min(like.points, max), Math.min(like.submissions, max), this.logger)));
    }
    batch.add(telemetry, attributes, rows, resolve, reject, committed);
    this.schedule();
  }

  private schedule(): void {
    if (this.scheduled || this.flushing) return;
    this.scheduled = true;
    const interval = this.settings.minIntervalMs ?? 0;
    const early = interval - (performance.now() - this.lastStart);
    const wait = Math.max(this.settings.maxDelayMs, this.queue.length > 1 ? 0 : early); // a full batch goes at once
    if (wait > 0) setTimeout(runScheduled, wait, this);
    else setImmediate(runScheduled, this);
  }

  /** The scheduled commit (runScheduled; no closure made per submission). */
  runFlush(): void {
    this.scheduled = false;
    this.flushing = this.flush().finally(() => {
      this.flushing = undefined;
      if (this.queue.length > 0) this.schedule();
    });
  }

  private async flush(): Promise<void> {
    const batch = this.queue.shift();
    if (!batch) return;
    this.lastStart = performance.now();
    this.lastSize = { points: batch.points, submissions: batch.submissions };
    const started = performance.now();
    try {
      const sealed = batch.seal();
      this.decorate?.(sealed);
      await this.write(sealed);
      this.afterCommit?.(sealed);
      this.record(started, batch.rows);
      for (let i = 0; i < batch.submissions; i++) batch.committed(i);
      this.announce(batch);
    } catch (err) {
      // The database is down or full: every submission gets "not now" at once (transports answer 503, 5.03,
      // PUBACK 0x83, or no PUBACK), nothing is acknowledged, and nobody waits for a retry that would fail too.
      if (batch.submissions === 1 || isDependencyUnavailable(err)) {
        for (let i = 0; i < batch.submissions; i++) batch.failed(i, err);
        return;
      }
      // One bad submission must not fail its neighbours: write each on its own.
      this.logger.warn({ err, submissions: batch.submissions }, 'batch commit failed; retrying submissions one by one');
      for (let i = 0; i < batch.submissions; i++) {
        try {
          const part = batch.part(i);
          this.decorate?.(part);
          await this.store.writeBatch(part);
          this.afterCommit?.(part);
        } catch (e) {
          batch.failed(i, e);
          continue;
        }
        batch.committed(i);
        this.announce(batch.part(i));
      }
    }
  }

  /**
   * Writes one batch. The first failure after commits worked is retried (WRITE_RETRIES times, 20, 40, 60 ms apart):
   * it is often connections that broke (an administrator ended them, a failover), and the pool's next one works. A retry after an
   * uncertain commit is safe: every write is an upsert on its key, so a batch written twice is stored once. While
   * the database is down, batches are refused without trying until the outage's backoff has passed.
   */
  private async write(batch: WriteBatch): Promise<void> {
    const refusal = this.outages?.refusal('database');
    if (refusal) throw refusal;
    try {
      await this.store.writeBatch(batch);
    } catch (err) {
      if (!isDependencyUnavailable(err)) throw err;
      if (this.outages?.of('database')) {
        this.outages.failed(err);
        throw err;
      }
      for (let retry = 1; ; retry++) {
        // Let the pool notice its other broken connections first (their errors arrive a moment later).
        await new Promise((resolve) => setTimeout(resolve, 20 * retry));
        try {
          await this.store.writeBatch(batch);
          break;
        } catch (again) {
          if (!isDependencyUnavailable(again) || retry === WRITE_RETRIES) {
            if (isDependencyUnavailable(again)) this.outages?.failed(again);
            throw again;
          }
        }
      }
    }
    this.outages?.recovered('database');
  }

  private announce(batch: WriteBatch): void {
    if (!this.onBatchCommitted) return;
    try {
      this.onBatchCommitted(batch);
    } catch (err) {
      this.logger.warn({ err }, 'batch-committed listener failed');
    }
  }

  private record(started: number, rows: number): void {
    const ms = performance.now() - started;
    this.stats.batches++;
    this.stats.rows += rows;
    this.stats.lastCommitMs = ms;
    this.onCommit?.(ms, rows);
  }

  /** Stops accepting writes and commits everything queued. */
  async close(): Promise<void> {
    this.closed = true;
    while (this.queue.length > 0 || this.flushing || this.scheduled) {
      if (this.flushing) await this.flushing;
      else if (this.queue.length > 0) {
        this.scheduled = false;
        this.flushing = this.flush().finally(() => (this.flushing = undefined));
      } else await new Promise((r) => setImmediate(r));
    }
  }
}
