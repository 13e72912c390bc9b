/**
 * WAL checkpoints off the event loop and off the writer. SQLite copies the write-ahead log back into the database file
 * (a checkpoint) inside whichever commit crosses `wal_autocheckpoint`; with fleetgate's 10,000 pages that commit
 * blocked the event loop for 80-200 ms on this machine (measured: ~6,700 pages took 77-208 ms of wall time and only
 * 10 ms of CPU, the rest waiting for the disk). Here a worker thread with its own connection runs PASSIVE checkpoints
 * (they never block the writer or readers), and the writing connections' automatic checkpoint moves far out, to a
 * safety net that only acts if the worker falls behind or dies.
 *
 * Starting the WAL over (issue 17). SQLite writes the WAL from its start again only when a write transaction begins
 * with every frame already copied back; under back-to-back commits a pass never ends between two of them (writes land
 * while it copies and fsyncs), so the WAL only grew, to the safety net's ~400 MB, whose checkpoint then ran inside a
 * COMMIT (62-237 ms). So, with `pauseWrites` (the store's write mutex, sqlite-writer-dialect.ts), once the WAL holds
 * `restartPages` frames: one more unpaused pass copies what arrived during the last one, then a final pass runs
 * while no transaction may begin (the event loop keeps running; writes queue). It finds only the frames written during
 * the pass before it, so it is short (its two fsyncs cover little), and the next write transaction starts the WAL
 * over. Durability is SQLite's own: the final pass is an ordinary checkpoint with the connection's sync flags.
 *
 * The database file's writes are flushed before the pause (`presync`). A PASSIVE pass that writes land during does not
 * fsync the database file (SQLite syncs it only when a pass copies the whole WAL, since only then may the WAL start
 * over), so the final pass's fsync used to flush every page the unpaused passes had copied since the last restart,
 * about a second of provisioning: 20-30 ms of write pause, once a second, nearly all of it that fsync (bench/RESULTS.md
 * "HTTP provisioning, session 8"). The worker now flushes the database and WAL files itself (fdatasync on descriptors
 * of its own) while writes go on, and the final pass's fsyncs find only what the last moments wrote. This moves
 * work in time and adds no durability step that was not there: the final pass still syncs as SQLite does.
 *
 * Each pass is published on the diagnostics channel 'fleetgate:sqlite-checkpoint' (bench/support/stall-trace.mjs).
 */
import { channel } from 'node:diagnostics_channel';
import { closeSync, openSync } from 'node:fs';
import { createRequire } from 'node:module';
import { Worker } from 'node:worker_threads';
import type BetterSqlite3 from 'better-sqlite3';

/** The writing connection whose automatic checkpoint the checkpointer moves: in process, or the writer thread's. */
export type CheckpointedConnection = BetterSqlite3.Database | { setAutocheckpoint(pages: number): void };

function setAutocheckpoint(main: CheckpointedConnection, pages: number): void {
  if ('setAutocheckpoint' in main) main.setAutocheckpoint(pages);
  else if (main.open) main.pragma(`wal_autocheckpoint = ${pages}`);
}

/** The main connection's automatic checkpoint while the worker runs (pages): only if the worker cannot keep up. */
export const SAFETY_NET_PAGES = 100_000;
/** Without the worker (it failed), the main connection checkpoints as before (pages). */
export const FALLBACK_PAGES = 10_000;
/** WAL frames (pages) from which the checkpointer starts the WAL over, with a write pause (64 MiB of 4 KiB pages). */
export const RESTART_PAGES = 16_384;
/** Unpaused passes at most before the final one: each copies what arrived during the one before. */
const CATCH_UP_PASSES = 6;
/** A WAL this many times the restart size goes straight to the final pass (a longer pause, a bounded WAL). */
const OVERDUE_FACTOR = 4;
/** A pass that took less than this (ms) leaves little for the final one: it follows at once. */
const SHORT_PASS_MS = 10;
/** Flushes of the files before a final pass at most, each after a pass that copied what arrived during the one before. */
const PRESYNC_ROUNDS = 3;
/** A flush shorter than this (ms) left little for the final pass's fsyncs: the final pass follows at once. */
const SHORT_SYNC_MS = 5;
/** Longest wait for the final pass (ms): a worker that hangs fails, the pause ends and the main connection checkpoints. */
export const FINAL_PASS_TIMEOUT_MS = 10_000;

// Runs in the worker (CommonJS, evaluated): one connection, a PASSIVE checkpoint whenever asked, timed; on 'sync',
// fdatasync of the descriptors it was given (the database and WAL files), timed.
const WORKER_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads');
const { fdatasyncSync } = require('node:fs');
const Database = require(workerData.driver);
const db = new Database(workerData.path, { fileMustExist: true });
db.pragma('synchronous = ' + workerData.synchronous);
parentPort.on('message', (message) => {
  if (message === 'close') {
    db.close();
    parentPort.close();
    return;
  }
  try {
    const started = performance.now();
    if (message === 'sync') {
      for (const fd of workerData.files) fdatasyncSync(fd);
      parentPort.postMessage({ ok: true, log: 0, checkpointed: 0, ms: performance.now() - started });
      return;
    }
    const [result] = db.pragma('wal_checkpoint(PASSIVE)');
    parentPort.postMessage({ ok: true, log: result.log, checkpointed: result.checkpointed, ms: performance.now() - started });
  } catch (err) {
    parentPort.postMessage({ ok: false, error: String(err && err.message || err) });
  }
});
`;

/** What the checkpointer reports (for tests and logs). */
export interface CheckpointStats {
  /** Checkpoint passes the worker ran. */
  runs: number;
  /** WAL pages in the log and how many were copied back, at the last run. */
  lastLog: number;
  lastCheckpointed: number;
  /** Final passes run while writes waited, and the longest such wait (ms). */
  pauses: number;
  longestPauseMs: number;
  /** The most WAL frames any pass found. */
  maxLog: number;
  /** The last error (the main connection then checkpoints by itself again). */
  error: string | undefined;
}

/** How the checkpointer runs. */
export interface CheckpointerOptions {
  /** Pause between passes while the WAL is small (ms). */
  intervalMs?: number;
  /** Runs `final` while no write transaction may begin (the store's write mutex); without it the WAL is never restarted here. */
  pauseWrites?: (final: () => Promise<void>) => Promise<void>;
  /** WAL frames from which the WAL is started over (RESTART_PAGES). */
  restartPages?: number;
  /** The store's synchronous setting: the worker's checkpoints sync as the writers' would. */
  synchronous?: 'normal' | 'full';
  /** Longest wait for the final pass while writes queue (FINAL_PASS_TIMEOUT_MS). */
  finalPassTimeoutMs?: number;
}

interface PassResult {
  log: number;
  checkpointed: number;
  ms: number;
}

const published = channel('fleetgate:sqlite-checkpoint');

export class SqliteCheckpointer {
  readonly stats: CheckpointStats = { runs: 0, lastLog: 0, lastCheckpointed: 0, pauses: 0, longestPauseMs: 0, maxLog: 0, error: undefined };
  private readonly worker: Worker;
  private stopped = false;
  private waiting: { resolve: (r: PassResult) => void; reject: (err: Error) => void } | undefined;
  private sleeping: { timer: NodeJS.Timeout; resolve: () => void } | undefined;
  private readonly loop: Promise<void>;
  private readonly intervalMs: number;
  private readonly restartPages: number;
  /** The WAL's frames after the last final pass: found again, nothing was written since (the WAL starts over at the next write). */
  private finalLog = -1;
  /** The worker thread has ended (it emits 'exit' once). */
  private exited = false;
  /**
   * Read-only descriptors of the database and WAL files, which the worker flushes before a final pass. Closed only by
   * `releaseFiles`, after the store's connections: closing a descriptor of the database file drops every POSIX lock
   * this process holds on it, SQLite's included.
   */
  private readonly files: number[] = [];

  private constructor(
    path: string,
    private readonly main: CheckpointedConnection,
    private readonly options: CheckpointerOptions,
  ) {
    this.intervalMs = options.intervalMs ?? 1000;
    this.restartPages = options.restartPages ?? RESTART_PAGES;
    const driver = createRequire(import.meta.url).resolve('better-sqlite3');
    const synchronous = (options.synchronous ?? 'normal').toUpperCase();
    if (options.pauseWrites) {
      for (const file of [path, `${path}-wal`]) {
        try {
          this.files.push(openSync(file, 'r'));
        } catch {
          /* no such file (yet): the final pass then flushes it as before */
        }
      }
    }
    this.worker = new Worker(WORKER_SOURCE, { eval: true, execArgv: [], workerData: { path, driver, synchronous, files: this.files } });
    this.worker.unref();
    this.worker.on('message', (m: { ok: boolean; log?: number; checkpointed?: number; ms?: number; error?: string }) => {
      const waiting = this.waiting;
      this.waiting = undefined;
      if (m.ok) waiting?.resolve({ log: m.log!, checkpointed: m.checkpointed!, ms: m.ms! });
      else waiting?.reject(new Error(m.error!));
    });
    this.worker.on('error', (err) => this.fail(err.message));
    this.worker.on('exit', () => {
      this.exited = true;
      if (!this.stopped) return this.fail('checkpoint worker exited');
      // Stopping: a pass in flight (a final one holds the write pause) must still end, or stop() never would.
      this.waiting?.reject(new Error('checkpoint worker exited'));
      this.waiting = undefined;
    });
    setAutocheckpoint(main, SAFETY_NET_PAGES);
    this.loop = this.run().catch((err: Error) => this.fail(err.message));
  }

  /**
   * Starts checkpointing the database at `path` (in WAL mode, opened by `main`) every `intervalMs`, or as
   * `options` say (a number: the interval).
   */
  static start(path: string, main: CheckpointedConnection, options: number | CheckpointerOptions = {}): SqliteCheckpointer {
    return new SqliteCheckpointer(path, main, typeof options === 'number' ? { intervalMs: options } : options);
  }

  /**
   * One PASSIVE pass on the worker, referenced while it runs: writes may be waiting for a final pass, and a process
   * with nothing else to do (a CLI command) must not exit under them.
   */
  private pass(): Promise<PassResult> {
    return this.ask('checkpoint').then((r) => {
      this.stats.runs++;
      this.stats.lastLog = r.log;
      this.stats.lastCheckpointed = r.checkpointed;
      if (r.log > this.stats.maxLog) this.stats.maxLog = r.log;
      return r;
    });
  }

  /** One request to the worker ('checkpoint' or 'sync'), referenced while it runs (see `pass`). */
  private ask(message: 'checkpoint' | 'sync'): Promise<PassResult> {
    this.worker.ref();
    return new Promise<PassResult>((resolve, reject) => {
      this.waiting = { resolve, reject };
      this.worker.postMessage(message);
    }).finally(() => this.worker.unref());
  }

  private sleep(ms: number): Promise<void> {
    return new Promise<void>((resolve) => {
      const timer = setTimeout(() => {
        this.sleeping = undefined;
        resolve();
      }, ms);
      timer.unref();
      this.sleeping = { timer, resolve };
    });
  }

  private async run(): Promise<void> {
    await this.sleep(this.intervalMs);
    while (!this.stopped) {
      let r = await this.pass();
      if (this.stopped) return;
      if (published.hasSubscribers) published.publish({ pass: 'passive', ...r });
      const pauseWrites = this.options.pauseWrites;
      if (pauseWrites && r.log >= this.restartPages && r.log === r.checkpointed && r.log !== this.finalLog) {
        // Catch up without a pause while passes are long (each finds what arrived during the one before).
        const overdue = r.log >= OVERDUE_FACTOR * this.restartPages;
        for (let i = 0; i < CATCH_UP_PASSES && r.ms >= SHORT_PASS_MS && !overdue && !this.stopped; i++) {
          r = await this.pass();
          if (published.hasSubscribers) published.publish({ pass: 'catch-up', ...r });
        }
        if (this.stopped) return;
        // The database pages the passes above copied are flushed now, while writes go on, not by the final pass's
        // fsync. A long flush is followed by a pass (what arrived meanwhile) and another flush, until one is short.
        for (let i = 0; this.files.length > 0 && i < PRESYNC_ROUNDS; i++) {
          const synced = await this.ask('sync');
          if (published.hasSubscribers) published.publish({ pass: 'presync', ms: synced.ms });
          if (this.stopped) return;
          if (synced.ms < SHORT_SYNC_MS || i === PRESYNC_ROUNDS - 1) break;
          r = await this.pass();
          if (published.hasSubscribers) published.publish({ pass: 'catch-up', ...r });
          if (this.stopped) return;
        }
        let waited = 0;
        let final: PassResult | undefined;
        const asked = performance.now();
        await pauseWrites(async () => {
          if (this.stopped) return;
          const started = performance.now();
          const limit = this.options.finalPassTimeoutMs ?? FINAL_PASS_TIMEOUT_MS;
          const hung = setTimeout(() => this.fail(`checkpoint worker did not answer the final pass within ${limit} ms`), limit);
          try {
            final = await this.pass();
          } finally {
            clearTimeout(hung);
          }
          waited = performance.now() - started;
        });
        if (final) {
          this.finalLog = (final as PassResult).log;
          this.stats.pauses++;
          if (waited > this.stats.longestPauseMs) this.stats.longestPauseMs = waited;
          if (published.hasSubscribers) published.publish({ pass: 'final', ...final, pausedMs: waited, queuedMs: performance.now() - asked - waited });
        }
        continue; // the WAL starts over at the next write; the next pass finds only what came after
      }
      await this.sleep(this.intervalMs);
    }
  }

  /** The worker failed: the main connection checkpoints by itself again, as it did before. */
  private fail(error: string): void {
    if (this.stopped) return;
    this.stats.error = error;
    this.stopped = true;
    this.wake();
    this.waiting?.reject(new Error(error));
    this.waiting = undefined;
    try {
      setAutocheckpoint(this.main, FALLBACK_PAGES);
    } catch {
      /* the store is closing */
    }
    void this.worker.terminate();
  }

  private wake(): void {
    if (!this.sleeping) return;
    clearTimeout(this.sleeping.timer);
    this.sleeping.resolve();
    this.sleeping = undefined;
  }

  /** Closes the checkpointer's descriptors of the database files: call it after stop() and after the store's connections closed. */
  releaseFiles(): void {
    for (const fd of this.files.splice(0)) {
      try {
        closeSync(fd);
      } catch {
        /* already closed */
      }
    }
  }

  /** Stops the worker (after its pass, its connection closed) before the store closes its own. */
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    this.wake();
    await this.loop;
    if (this.exited) return;
    const exited = new Promise<void>((resolve) => this.worker.once('exit', () => resolve()));
    this.worker.postMessage('close');
    const timeout = setTimeout(() => void this.worker.terminate(), 5000);
    await exited;
    clearTimeout(timeout);
  }
}
