/**
 * The SQLite writer thread, seen from the main thread: a worker_threads Worker owning the one writing connection
 * (sqlite-writer-worker.ts), so statement execution, the larger part of a write's CPU, runs on the second core.
 * `run(ops)` sends a list of statements in one message and resolves with their results once the thread ran them all
 * (a COMMIT among them has returned: durable). Messages are answered in order, one at a time.
 *
 * If the thread dies, every waiting request fails with "database unavailable" and the next request starts a new
 * thread (after a cool-down when threads keep dying as soon as they start); `generation` tells a transaction that the connection it began on is gone (sqlite-writer-dialect.ts).
 */
import { createRequire } from 'node:module';
import { Worker } from 'node:worker_threads';
import BetterSqlite3 from 'better-sqlite3';
import { DependencyUnavailableError } from '../core/errors.ts';
import { WRITER_WORKER_SOURCE } from './sqlite-writer-worker.ts';
import { OpsEncoder } from './sqlite-writer-codec.ts';

/** One statement for the writer thread. `ifChanged`: run only if the statement before it changed (or read) a row. */
export interface WriterOp {
  sql: string;
  params: readonly unknown[];
  ifChanged?: boolean;
  /**
   * What the statement weighs when the dialect picks the connection for a group commit (sqlite-writer-dialect.ts
   * parameterCount), if not its parameter count: a ts_kv_chunk insert weighs the ts_kv rows its points would be.
   */
  weight?: number;
  /**
   * Called on the main thread with what the statement gave, once the list it is in ran (a skipped statement gives
   * changes 0). Inside a transaction this may be before its COMMIT: a caller keeps what it learns until that returned.
   * In a list whose result is unread (sqlite-writer-dialect.ts statements()), it comes with the message that carried
   * the list, usually the COMMIT's, and never if that message failed.
   */
  done?: (result: WriterResult) => void;
}

/** What one statement gave: rows (a reader) or changes and the last insert rowid (a writer). */
export interface WriterResult {
  rows?: Record<string, unknown>[];
  changes?: number;
  insertId?: number | bigint;
}

/** How the thread opens its connection (as sqlite.ts opens the in-process one). */
export interface WriterOptions {
  path: string;
  synchronous: 'normal' | 'full';
  maxSizeMb?: number;
  /** wal_autocheckpoint pages at open. */
  autocheckpoint: number;
  /** Statement and savepoint journals in memory (temp_store = MEMORY, as sqlite.ts `journalsInMemory`). */
  journalsInMemory?: boolean;
}

interface Pending {
  resolve: (results: WriterResult[]) => void;
  reject: (err: unknown) => void;
}

interface Answer {
  id?: number;
  ready?: boolean;
  closed?: boolean;
  results?: WriterResult[];
  blobs?: boolean;
  error?: { message: string; code?: string };
}

const ADVICE = 'see the server log; the next write starts a new writer thread';

/**
 * A thread that stops within QUICK_DEATH_MS of starting (or never opens its file) is replaced only after a cool-down,
 * doubling from RESTART_BASE_MS to RESTART_MAX_MS while each replacement dies as quickly, so a fault that kills every
 * new thread at once (a file that cannot be opened, a crash on open) does not start threads in a tight loop.
 * A thread that ran longer is replaced at once, as before.
 */
const QUICK_DEATH_MS = 5_000;
const RESTART_BASE_MS = 100;
const RESTART_MAX_MS = 30_000;

/** Told each time a thread stopped unexpectedly: when its replacement may start, and why it stopped (no secrets in it). */
export type WriterRestartListener = (info: { delayMs: number; cause: string; quickDeaths: number }) => void;

/** Rows' Uint8Array values (a Buffer after the structured clone) as Buffers again, as better-sqlite3 returns blobs. */
function restoreBuffers(results: WriterResult[]): void {
  for (const r of results) {
    if (!r.rows) continue;
    for (const row of r.rows) {
      for (const k in row) {
        const v = row[k];
        if (v instanceof Uint8Array && !Buffer.isBuffer(v)) row[k] = Buffer.from(v.buffer, v.byteOffset, v.byteLength);
      }
    }
  }
}

export class SqliteWriterThread {
  /** The threads open in this process (benchmarks read their CPU time). */
  static readonly open = new Set<SqliteWriterThread>();
  /** Increases each time a thread starts: a transaction begun on an earlier one cannot continue. */
  generation = 0;
  private worker: Worker | undefined;
  private ready: Promise<void> | undefined;
  private readonly pending = new Map<number, Pending>();
  private nextId = 1;
  private closing = false;
  private readonly encoder = new OpsEncoder();
  private readonly driver = createRequire(import.meta.url).resolve('better-sqlite3');
  /** When the running thread started; threads that died in a row soon after starting; when the next may start. */
  private startedAt = 0;
  private quickDeaths = 0;
  private restartAt = 0;
  private restarting: Promise<void> | undefined;
  /** Ends the cool-down at once (close: the requests waiting for it are then answered "closed"). */
  private endCoolDown: (() => void) | undefined;

  constructor(
    private readonly options: WriterOptions,
    private readonly onRestart?: WriterRestartListener,
  ) {}

  /** Starts the thread and waits until its connection is open (errors opening the file reject). */
  async start(): Promise<void> {
    SqliteWriterThread.open.add(this);
    this.spawn();
    await this.ready;
  }

  private spawn(): void {
    this.generation++;
    this.startedAt = Date.now();
    this.encoder.forget();
    // execArgv: none of the parent's (--input-type=module would make this CommonJS source a module; tsx is not needed),
    // except a CPU profile of the thread when FLEETGATE_WRITER_CPU_PROF names a directory (diagnostics).
    const profile = process.env.FLEETGATE_WRITER_CPU_PROF;
    const execArgv = profile ? ['--cpu-prof', `--cpu-prof-dir=${profile}`] : [];
    const worker = new Worker(WRITER_WORKER_SOURCE, { eval: true, execArgv, workerData: { ...this.options, driver: this.driver } });
    this.worker = worker;
    this.ready = new Promise<void>((resolve, reject) => {
      const onAnswer = (m: Answer) => {
        if (m.ready === true) {
          // Referenced only while a request waits (run), so an idle store does not keep the process alive.
          if (this.pending.size === 0) worker.unref();
          resolve();
        }
        else if (m.ready === false) {
          // Could not open: this thread never serves; the next request starts a new one (else every write failed).
          const err = this.error(m.error!);
          reject(err);
          this.lost(worker, err);
          void worker.terminate();
        }
        else this.answer(m);
      };
      worker.on('message', onAnswer);
      worker.on('error', (err) => {
        reject(err);
        this.lost(worker, err);
      });
      worker.on('exit', (code) => {
        reject(new Error(`SQLite writer thread exited (${code})`));
        this.lost(worker, new Error(`exit code ${code}`));
      });
    });
    this.ready.catch(() => {});
  }

  private error(e: { message: string; code?: string }): Error {
    return e.code ? new BetterSqlite3.SqliteError(e.message, e.code) : new Error(e.message);
  }

  private answer(m: Answer): void {
    const request = this.pending.get(m.id!);
    if (!request) return;
    this.pending.delete(m.id!);
    if (this.pending.size === 0) this.worker?.unref();
    if (m.error) request.reject(this.error(m.error));
    else {
      if (m.blobs) restoreBuffers(m.results!);
      request.resolve(m.results ?? []);
    }
  }

  /** The thread stopped: its requests fail as "database unavailable" (its connection, and any transaction, are gone). */
  private lost(worker: Worker, cause: unknown): void {
    if (this.worker !== worker) return;
    this.worker = undefined;
    const err = this.closing
      ? new DependencyUnavailableError('database', 'the SQLite store is closed', 'open the store again', cause)
      : new DependencyUnavailableError('database', `the SQLite writer thread stopped (${String((cause as Error)?.message ?? cause)})`, ADVICE, cause);
    for (const p of this.pending.values()) p.reject(err);
    this.pending.clear();
    if (this.closing) return;
    const now = Date.now();
    this.quickDeaths = now - this.startedAt < QUICK_DEATH_MS ? this.quickDeaths + 1 : 0;
    const delayMs = this.quickDeaths === 0 ? 0 : Math.min(RESTART_BASE_MS * 2 ** (this.quickDeaths - 1), RESTART_MAX_MS);
    this.restartAt = now + delayMs;
    this.onRestart?.({ delayMs, cause: String((cause as Error)?.message ?? cause), quickDeaths: this.quickDeaths });
  }

  /** Starts a new thread once the cool-down after the last one's death has passed (one start for every caller waiting). */
  private restart(): Promise<void> {
    const wait = this.restartAt - Date.now();
    if (wait <= 0) {
      this.spawn();
      return Promise.resolve();
    }
    return (this.restarting ??= new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, wait);
      this.endCoolDown = () => {
        clearTimeout(timer);
        resolve();
      };
    }).then(() => {
      this.restarting = this.endCoolDown = undefined;
      if (!this.worker && !this.closing) this.spawn();
    }));
  }

  /** The generation the next request runs on (starting a thread if none runs). */
  current(): number {
    if (this.worker || this.closing) return this.generation;
    if (this.restartAt > Date.now()) return this.generation + 1; // the thread run() starts after the cool-down
    this.spawn();
    return this.generation;
  }

  /**
   * Runs `ops` in order on the writer connection; resolves with one result per statement. With `generation` (a
   * transaction that began on that thread), fails unless that very thread is still running.
   */
  async run(ops: WriterOp[], generation?: number): Promise<WriterResult[]> {
    if (!this.worker) {
      if (this.closing) throw new DependencyUnavailableError('database', 'the SQLite store is closed', 'open the store again');
      // Only a transaction that current() promised the next thread may wait for it; an older one's thread is gone.
      if (generation !== undefined && generation !== this.generation + 1) {
        throw new DependencyUnavailableError('database', 'the SQLite writer thread stopped during a transaction', 'retry; the transaction was rolled back');
      }
      await this.restart();
      if (!this.worker) throw new DependencyUnavailableError('database', 'the SQLite store is closed', 'open the store again');
    }
    if (generation !== undefined && generation !== this.generation) {
      throw new DependencyUnavailableError('database', 'the SQLite writer thread stopped during a transaction', 'retry; the transaction was rolled back');
    }
    await this.ready;
    const worker = this.worker!;
    const id = this.nextId++;
    return new Promise<WriterResult[]>((resolve, reject) => {
      if (this.pending.size === 0) worker.ref();
      this.pending.set(id, { resolve, reject });
      const [encoded, transfer] = this.encoder.encode(ops);
      worker.postMessage({ id, ops: encoded }, transfer);
    });
  }

  /** The thread's CPU time in ms (user + system, 10 ms resolution; -1 where /proc is missing), for benchmarks. */
  async cpuMs(): Promise<number> {
    if (!this.worker) return 0;
    const worker = this.worker;
    const id = this.nextId++;
    const [r] = await new Promise<WriterResult[]>((resolve, reject) => {
      if (this.pending.size === 0) worker.ref();
      this.pending.set(id, { resolve, reject });
      worker.postMessage({ id, cpu: true });
    });
    return r.changes! < 0 ? -1 : r.changes! * 10;
  }

  /** Sets the writer connection's wal_autocheckpoint (the checkpointer moves it out while it runs). */
  setAutocheckpoint(pages: number): void {
    this.options.autocheckpoint = pages; // a restarted thread opens with it
    this.worker?.postMessage({ autocheckpoint: pages });
  }

  /**
   * Keeps the connection's statement and savepoint journals in memory from now on (sqlite.ts `journalsInMemory`:
   * called after the migrations). A group commit's multi-row statements run inside a transaction, so past 64 KiB
   * their sub-journal went to a temporary file, a pwrite(2) per page.
   */
  keepJournalsInMemory(): void {
    this.options.journalsInMemory = true; // a restarted thread opens with it
    this.worker?.postMessage({ journalsInMemory: true });
  }

  /** Closes the connection after the requests already sent, and ends the thread. */
  async close(): Promise<void> {
    this.closing = true;
    this.endCoolDown?.();
    SqliteWriterThread.open.delete(this);
    const worker = this.worker;
    if (!worker) return;
    const exited = new Promise<void>((resolve) => worker.once('exit', () => resolve()));
    worker.ref();
    worker.postMessage({ close: true, id: 0 });
    const timeout = setTimeout(() => void worker.terminate(), 5000);
    await exited;
    clearTimeout(timeout);
  }
}
