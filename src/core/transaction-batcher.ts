/**
 * Group commit for small transactions (provisioning): units of work queued in the same turn of the event loop run
 * one after another inside one database transaction, each under its own savepoint, so each stays all-or-nothing
 * while they share one commit. A unit's promise settles only after that commit.
 */
import type { CoreLogger } from './core-types.ts';
import type { Store } from '../store/store.ts';
import { isDependencyUnavailable } from './errors.ts';
import type { Outages } from './outages.ts';

interface Job {
  work: (tx: Store) => Promise<unknown>;
  resolve: (value: unknown) => void;
  reject: (err: unknown) => void;
}

type Settled = { ok: true; value: unknown } | { ok: false; error: unknown };

export class TransactionBatcher {
  private queue: Job[] = [];
  private readonly running = new Set<Promise<void>>();
  private scheduled = false;

  /** `concurrency`: grouped transactions in flight at once (store.transactionConcurrency: 1 on SQLite). */
  constructor(
    private readonly store: Store,
    private readonly maxJobs: number,
    private readonly logger: CoreLogger,
    private readonly concurrency = store.transactionConcurrency,
    private readonly outages?: Outages,
  ) {}

  /** Runs `work` atomically; resolves with its result once committed, rejects with its error (its writes undone). */
  run<T>(work: (tx: Store) => Promise<T>): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      this.queue.push({ work, resolve: resolve as (v: unknown) => void, reject });
      this.schedule();
    });
  }

  private schedule(): void {
    if (this.scheduled || this.running.size >= this.concurrency) return;
    this.scheduled = true;
    setImmediate(() => {
      this.scheduled = false;
      if (this.queue.length === 0) return;
      const run: Promise<void> = this.flush().finally(() => {
        this.running.delete(run);
        if (this.queue.length > 0) this.schedule();
      });
      this.running.add(run);
      if (this.queue.length > 0) this.schedule();
    });
  }

  private async flush(): Promise<void> {
    // Spread the queue over the free slots, so PostgreSQL runs several smaller groups at once.
    const free = Math.max(1, this.concurrency - this.running.size);
    const jobs = this.queue.splice(0, Math.min(this.maxJobs, Math.ceil(this.queue.length / free)));
    const refusal = this.outages?.refusal('database');
    if (refusal) {
      for (const job of jobs) job.reject(refusal);
      return;
    }
    let outcomes: Settled[];
    try {
      outcomes = await this.store.transaction(async (tx) => {
        const results: Settled[] = [];
        for (const job of jobs) {
          try {
            results.push({ ok: true, value: await tx.savepoint(job.work) });
          } catch (error) {
            results.push({ ok: false, error });
          }
        }
        return results;
      });
    } catch (err) {
      if (isDependencyUnavailable(err)) {
        // The database is down: every unit gets "not now" at once rather than a retry that would fail too.
        this.outages?.failed(err);
        for (const job of jobs) job.reject(err);
        return;
      }
      if (jobs.length === 1) return jobs[0].reject(err);
      // The shared commit failed: give every unit a transaction of its own.
      this.logger.warn({ err, jobs: jobs.length }, 'grouped transaction failed; retrying units one by one');
      for (const job of jobs) await this.store.transaction(job.work).then(job.resolve, job.reject);
      return;
    }
    this.outages?.recovered('database');
    jobs.forEach((job, i) => {
      const o = outcomes[i];
      if (o.ok) job.resolve(o.value);
      else job.reject(o.error);
    });
  }

  /** Waits until everything queued has committed. */
  async drain(): Promise<void> {
    while (this.running.size > 0 || this.scheduled || this.queue.length > 0) {
      if (this.running.size > 0) await Promise.allSettled([...this.running]);
      else await new Promise((r) => setImmediate(r));
    }
  }
}
