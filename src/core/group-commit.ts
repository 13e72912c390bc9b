/**
 * Group commit: telemetry and attribute writes from many requests are committed in one transaction, and each
 * request's promise resolves only after the transaction holding it has committed (DESIGN "Data flow").
 */
import type { AttributeWrite, TsPoint } from './model.ts';
import type { Store, WriteBatch } from '../store/store.ts';
import type { CoreLogger } from './core-types.ts';

interface Submission {
  batch: WriteBatch;
  rows: number;
  resolve: () => void;
  reject: (err: unknown) => void;
}

export interface GroupCommitSettings {
  /** Most rows per transaction; a larger backlog is written in several transactions. */
  maxRows: number;
  /** Wait this long for more writes before committing (0: commit on the next turn of the event loop). */
  maxDelayMs: number;
}

export interface GroupCommitStats {
  batches: number;
  rows: number;
  lastCommitMs: number;
}

export class GroupCommitter {
  private queue: Submission[] = [];
  private scheduled = false;
  private flushing: Promise<void> | undefined;
  private closed = false;
  readonly stats: GroupCommitStats = { batches: 0, rows: 0, lastCommitMs: 0 };
  /** Called after each commit with its duration in ms and row count (metrics hook). */
  onCommit: ((ms: number, rows: number) => void) | undefined;

  constructor(
    private readonly store: Store,
    private readonly settings: GroupCommitSettings,
    private readonly logger: CoreLogger,
  ) {}

  /** Queues writes; resolves once they are committed, rejects if their transaction failed. */
  submit(telemetry: TsPoint[], attributes: AttributeWrite[] = []): Promise<void> {
    if (this.closed) return Promise.reject(new Error('storage is closing'));
    const rows = telemetry.length + attributes.reduce((n, a) => n + a.entries.length, 0);
    if (rows === 0) return Promise.resolve();
    return new Promise<void>((resolve, reject) => {
      this.queue.push({ batch: { telemetry, attributes }, rows, resolve, reject });
      this.schedule();
    });
  }

  private schedule(): void {
    if (this.scheduled || this.flushing) return;
    this.scheduled = true;
    const run = () => {
      this.scheduled = false;
      this.flushing = this.flush().finally(() => {
        this.flushing = undefined;
        if (this.queue.length > 0) this.schedule();
      });
    };
    if (this.settings.maxDelayMs > 0) setTimeout(run, this.settings.maxDelayMs);
    else setImmediate(run);
  }

  private takeBatch(): Submission[] {
    let rows = 0;
    let n = 0;
    while (n < this.queue.length && (n === 0 || rows + this.queue[n].rows <= this.settings.maxRows)) rows += this.queue[n++].rows;
    return this.queue.splice(0, n);
  }

  private async flush(): Promise<void> {
    const taken = this.takeBatch();
    if (taken.length === 0) return;
    const merged: WriteBatch = { telemetry: [], attributes: [] };
    let rows = 0;
    for (const s of taken) {
      for (const p of s.batch.telemetry) merged.telemetry.push(p);
      for (const a of s.batch.attributes) merged.attributes.push(a);
      rows += s.rows;
    }
    const started = performance.now();
    try {
      await this.store.writeBatch(merged);
      this.record(started, rows);
      for (const s of taken) s.resolve();
    } catch (err) {
      if (taken.length === 1) {
        taken[0].reject(err);
        return;
      }
      // One bad submission must not fail its neighbours: write each on its own.
      this.logger.warn({ err, submissions: taken.length }, 'batch commit failed; retrying submissions one by one');
      for (const s of taken) {
        try {
          await this.store.writeBatch(s.batch);
          s.resolve();
        } catch (e) {
          s.reject(e);
        }
      }
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
