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
import type { Store } from './ports/store.ts';
import { isDependencyUnavailable } from './errors.ts';
import type { Outages } from './outages.ts';
import { channel } from 'node:diagnostics_channel';
import { performance } from 'node:perf_hooks';

/**
 * Each group, when someone listens (bench/support/group-trace.mjs), twice: as it starts (its units, whether it is
 * offloaded, startedAt) and once committed (also when its units were queued, and when its work ended and its commit
 * returned; performance.now() ms).
 */
const groups = channel('fleetgate:transaction-group');

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
  /** performance.now() when queued, only while the diagnostics channel has subscribers. */
  queuedAt?: number;
}

/**
 * Groups smaller than this are offloaded: on SQLite their statements and commit run on the writer thread while the
 * next group gathers (MQTT provisioning, ~20 sessions in flight: 3,975 sessions/s against 1,962 on the event loop).
 * Larger groups (HTTP provisioning under 64 connections) stay on the event loop, where a commit shared by many units is
 * cheaper than the thread's round trips (13,400 provisions/s against 9,100 offloaded; bench/RESULTS.md, session 6).
 */
export const OFFLOAD_BELOW_UNITS = 16;

/**
 * The offload decision also looks at the batcher's typical group (a moving average of group sizes, each new group
 * weighing 1/OFFLOAD_AVERAGE_OVER): a small group under a load of large ones stays on the event loop. Such a group
 * forms right after a stall (a checkpoint's write pause, a descheduled event loop) from the few requests that arrived
 * meanwhile; on the thread it paid a round trip per statement while the thread competed for the 2 cores, 3-12 ms
 * against ~1 ms on the event loop (bench/RESULTS.md, "HTTP provisioning's tail, session 7"), and the requests gathering
 * behind it waited as long.
 */
export const OFFLOAD_AVERAGE_OVER = 8;

type Settled = { ok: true; value: unknown } | { ok: false; error: unknown };

export class TransactionBatcher {
  private queue: Job[] = [];
  private readonly running = new Set<Promise<void>>();
  private scheduled = false;
  /** Moving average of the sizes of the groups so far (OFFLOAD_AVERAGE_OVER). */
  private typicalUnits = 0;

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
      const job: Job = { work, bulk: bulk as Job['bulk'], resolve: resolve as (v: unknown) => void, reject };
      if (groups.hasSubscribers) job.queuedAt = performance.now();
      this.queue.push(job);
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
    const offload = jobs.length < OFFLOAD_BELOW_UNITS && this.typicalUnits < OFFLOAD_BELOW_UNITS;
    this.typicalUnits += (jobs.length - this.typicalUnits) / OFFLOAD_AVERAGE_OVER;
    const startedAt = groups.hasSubscribers ? performance.now() : 0;
    if (startedAt) groups.publish({ units: jobs.length, offload, startedAt });
    let executedAt = 0;
    try {
      outcomes = await this.store.transaction(async (tx) => {
        const settled = await this.runGroup(tx, jobs);
        if (startedAt) executedAt = performance.now();
        return settled;
      }, { offload });
      if (startedAt) {
        const queuedAt = jobs.map((j) => j.queuedAt ?? startedAt);
        groups.publish({ units: jobs.length, offload, queuedAt, startedAt, executedAt, committedAt: performance.now() });
      }
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
