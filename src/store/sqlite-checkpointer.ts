/**
 * WAL checkpoints off the event loop. SQLite copies the write-ahead log back into the database file (a checkpoint)
 * inside whichever commit crosses `wal_autocheckpoint`; with fleetgate's 10,000 pages that commit blocked the event
 * loop for 80-200 ms on this machine (measured: ~6,700 pages took 77-208 ms of wall time and only 10 ms of CPU, the
 * rest waiting for the disk), which is where the provisioning tail came from. Here a worker thread with its own
 * connection runs a PASSIVE checkpoint every `intervalMs` (it never blocks the writer or readers), and the main
 * connection's automatic checkpoint moves far out, to a safety net that only acts if the worker falls behind or dies.
 */
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

// Runs in the worker (CommonJS, evaluated): one connection, a PASSIVE checkpoint whenever asked.
const WORKER_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads');
const Database = require(workerData.driver);
const db = new Database(workerData.path, { fileMustExist: true });
parentPort.on('message', (message) => {
  if (message === 'close') {
    db.close();
    parentPort.close();
    return;
  }
  try {
    const [result] = db.pragma('wal_checkpoint(PASSIVE)');
    parentPort.postMessage({ ok: true, log: result.log, checkpointed: result.checkpointed });
  } catch (err) {
    parentPort.postMessage({ ok: false, error: String(err && err.message || err) });
  }
});
`;

/** What the checkpointer reports (for tests and logs). */
export interface CheckpointStats {
  /** Checkpoints the worker ran. */
  runs: number;
  /** WAL pages in the log and how many were copied back, at the last run. */
  lastLog: number;
  lastCheckpointed: number;
  /** The last error (the main connection then checkpoints by itself again). */
  error: string | undefined;
}

export class SqliteCheckpointer {
  readonly stats: CheckpointStats = { runs: 0, lastLog: 0, lastCheckpointed: 0, error: undefined };
  private readonly worker: Worker;
  private readonly timer: NodeJS.Timeout;
  private busy = false;
  private stopped = false;

  private constructor(
    path: string,
    private readonly main: CheckpointedConnection,
    intervalMs: number,
  ) {
    const driver = createRequire(import.meta.url).resolve('better-sqlite3');
    this.worker = new Worker(WORKER_SOURCE, { eval: true, execArgv: [], workerData: { path, driver } });
    this.worker.unref();
    this.worker.on('message', (m: { ok: boolean; log?: number; checkpointed?: number; error?: string }) => {
      this.busy = false;
      if (m.ok) {
        this.stats.runs++;
        this.stats.lastLog = m.log!;
        this.stats.lastCheckpointed = m.checkpointed!;
      } else this.fail(m.error!);
    });
    this.worker.on('error', (err) => this.fail(err.message));
    this.worker.on('exit', () => {
      if (!this.stopped) this.fail('checkpoint worker exited');
    });
    setAutocheckpoint(main, SAFETY_NET_PAGES);
    this.timer = setInterval(() => this.tick(), intervalMs);
    this.timer.unref();
  }

  /** Starts checkpointing the database at `path` (in WAL mode, opened by `main`) every `intervalMs`. */
  static start(path: string, main: CheckpointedConnection, intervalMs = 1000): SqliteCheckpointer {
    return new SqliteCheckpointer(path, main, intervalMs);
  }

  private tick(): void {
    if (this.busy || this.stopped) return;
    this.busy = true;
    this.worker.postMessage('checkpoint');
  }

  /** The worker failed: the main connection checkpoints by itself again, as it did before. */
  private fail(error: string): void {
    if (this.stopped) return;
    this.stats.error = error;
    this.stopped = true;
    clearInterval(this.timer);
    try {
      setAutocheckpoint(this.main, FALLBACK_PAGES);
    } catch {
      /* the store is closing */
    }
    void this.worker.terminate();
  }

  /** Stops the worker (its connection closed) before the store closes its own. */
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    clearInterval(this.timer);
    const exited = new Promise<void>((resolve) => this.worker.once('exit', () => resolve()));
    this.worker.postMessage('close');
    const timeout = setTimeout(() => void this.worker.terminate(), 5000);
    await exited;
    clearTimeout(timeout);
  }
}
