/**
 * Group commit for small transactions (provisioning): units of work queued in the same turn of the event loop run
 * one after another inside one database transaction, each under its own savepoint, so each stays all-or-nothing
 * while they share one commit. A unit's promise settles only after that commit.
 *
 * A unit may also come with a bulk item (`run(work, { writer, item })`): the group's items of one writer are written
 * first, together, in a few multi-row statements under one savepoint. The writer gives each item its result, or sends
 * it back to run its own `work` under its own savepoint (e.g. its name was taken); if the writer throws, its whole
 * share is undone and every one of its units runs its own `work`, so one failing unit never fails the others.
 */
import type { CoreLogger } from './core-types.ts';
import type { Store } from '../store/store.ts';
import { isDependencyUnavailable } from './errors.ts';
import type { Outages } from './outages.ts';

/** What a bulk writer made of one item: its unit's result or error, or `single`: run the unit's own `work` instead. */
export type BulkOutcome<T> = { ok: true; value: T } | { ok: false; error: unknown } | 'single';

/** Writes the items of many units at once, inside the group's transaction (under a savepoint of its own). */
export interface BulkWriter<I, T> {
  /** One outcome per item, in order. Throwing undoes all of it; each unit then runs its own `work`. */
  write(tx: Store, items: I[]): Promise<BulkOutcome<T>[]>;
}

interface Job {
  work: (tx: Store) => Promise<unknown>;
  bulk?: { writer: BulkWriter<unknown, unknown>; item: unknown };
  resolve: (value: unknown) => void;
  reject: (err: unknown) => void;
}

/**
 * Groups smaller than this are offloaded: on SQLite their statements and commit run on the writer thread while the
 * next group gathers (MQTT provisioning, ~20 sessions in flight: 3,975 sessions/s against 1,962 on the event loop).
 * Larger groups (HTTP provisioning under 64 connections) stay on the event loop, where a commit shared by many units is
 * cheaper than the thread's round trips (13,400 provisions/s against 9,100 offloaded; bench/RESULTS.md, session 6).
 */
export const OFFLOAD_BELOW_UNITS = 16;

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

  /**
   * Runs `work` atomically; resolves with its result once committed, rejects with its error (its writes undone).
   * With `bulk`, the item is first offered to its writer together with the group's other items (see above); `work`
   * must do the same as the writer would for the item, alone.
   */
  run<T, I = never>(work: (tx: Store) => Promise<T>, bulk?: { writer: BulkWriter<I, T>; item: I }): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      this.queue.push({ work, bulk: bulk as Job['bulk'], resolve: resolve as (v: unknown) => void, reject });
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
      outcomes = await this.store.transaction((tx) => this.runGroup(tx, jobs), { offload: jobs.length < OFFLOAD_BELOW_UNITS });
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

  /** The group inside its transaction: bulk items first, writer by writer, then every unit that runs alone, in order. */
  private async runGroup(tx: Store, jobs: Job[]): Promise<Settled[]> {
    const results: Settled[] = new Array(jobs.length);
    const alone: number[] = [];
    const byWriter = new Map<BulkWriter<unknown, unknown>, number[]>();
    jobs.forEach((job, i) => {
      if (!job.bulk) return alone.push(i);
      const share = byWriter.get(job.bulk.writer);
      if (share) share.push(i);
      else byWriter.set(job.bulk.writer, [i]);
    });
    for (const [writer, share] of byWriter) {
      let written: BulkOutcome<unknown>[];
      try {
        written = await tx.savepoint((sp) => writer.write(sp, share.map((i) => jobs[i].bulk!.item)));
      } catch (err) {
        this.logger.warn({ err, units: share.length }, 'bulk write failed; its units run one by one');
        alone.push(...share);
        continue;
      }
      share.forEach((i, k) => {
        const o = written[k];
        if (o === 'single') alone.push(i);
        else results[i] = o;
      });
    }
    if (byWriter.size > 0) alone.sort((a, b) => a - b);
    for (const i of alone) {
      try {
        results[i] = { ok: true, value: await tx.savepoint(jobs[i].work) };
      } catch (error) {
        results[i] = { ok: false, error };
      }
    }
    return results;
  }

  /** Waits until everything queued has committed. */
  async drain(): Promise<void> {
    while (this.running.size > 0 || this.scheduled || this.queue.length > 0) {
      if (this.running.size > 0) await Promise.allSettled([...this.running]);
      else await new Promise((r) => setImmediate(r));
    }
  }
}
