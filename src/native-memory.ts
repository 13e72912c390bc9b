/**
 * Gives freed native (malloc) memory back to the operating system after a burst of connections (issue 17 item 5).
 *
 * A connect storm leaves memory that glibc's allocator has freed but keeps resident: every socket read goes into a
 * 64 KB buffer that Node shrinks to the bytes read, and those short-lived buffers, the storm's SQLite lookups and the
 * long-lived state of each new socket interleave in the main malloc arena. Once the storm is over, the pages between
 * the live chunks are free but glibc only ever returns the top of its heap on its own (about 1.9 KB per idle MQTT
 * session after 19,000 connects: bench/RESULTS.md, "Idle MQTT sessions, session 7"). glibc's `malloc_trim` gives
 * those pages back; Node has no binding for it, so it is called through SQLite's extension loader (better-sqlite3,
 * already a dependency): `loadExtension('libc.so.6', 'malloc_trim')` looks the function up in the C library the
 * process already runs on and calls it as the extension's entry point. Its first argument is then the (in-memory,
 * private) database handle, a large number as `malloc_trim`'s `pad`: the free pages inside the heap are released
 * (that part of glibc's trim does not look at `pad`), the top of the heap is left to glibc's own trimming.
 * Where the C library is not glibc (musl, macOS) the lookup fails once and the releaser does nothing from then on.
 */
import Database from 'better-sqlite3';
import v8 from 'node:v8';
import { runInNewContext } from 'node:vm';

/** How the releaser decides when to trim. */
export interface NativeMemoryOptions {
  /** Connections opened or closed since the last trim that make a burst worth a trim. */
  minChurn: number;
  /** Quiet needed after the burst's last connection event before trimming, ms. */
  quietMs: number;
  /** How often the releaser looks, ms. */
  checkMs: number;
  /** Delay from the full GC to the trim, ms: V8 frees dead ArrayBuffers' memory on a background thread after the GC. */
  afterGcMs: number;
}

/**
 * Defaults: a burst of 1,000 connections, released after 10 s without a connect or disconnect (looked at every 5 s), the
 * trim 1 s after the GC.
 */
export const NATIVE_MEMORY_DEFAULTS: NativeMemoryOptions = { minChurn: 1000, quietMs: 10_000, checkMs: 5000, afterGcMs: 1000 };

/** What the releaser tells its owner. */
export interface NativeMemoryLogger {
  debug(obj: object, msg: string): void;
}

/** Counts connection churn and trims the allocator once a burst of it has gone quiet. */
export interface NativeMemoryReleaser {
  /** A connection was opened or closed. */
  noteChurn(): void;
  /** Stops the timer and closes the handle used for the trim. */
  close(): void;
}

/** What one trim did. */
export interface TrimResult {
  /** Whether glibc reported memory given back. */
  released: boolean;
  /** Time the call took, ms. */
  ms: number;
}

let trimDb: Database.Database | undefined;
let unavailable = false;

/**
 * Calls glibc's `malloc_trim` once. Returns undefined where it cannot be called (not glibc, or the lookup failed
 * before); never throws.
 */
export function releaseFreedNativeMemory(): TrimResult | undefined {
  if (unavailable) return undefined;
  const started = performance.now();
  try {
    trimDb ??= new Database(':memory:');
    // Returns normally when malloc_trim answered 0 (nothing given back); throws "error during initialization" when it
    // answered 1 (memory given back): SQLite reads any non-zero answer of an entry point as a failed initialisation.
    // better-sqlite3 takes the entry point as a second argument; its type declarations do not list it yet.
    (trimDb.loadExtension as (file: string, entryPoint: string) => Database.Database)('libc.so.6', 'malloc_trim');
    return { released: false, ms: performance.now() - started };
  } catch (err) {
    if (err instanceof Error && err.message.startsWith('error during initialization')) return { released: true, ms: performance.now() - started };
    unavailable = true;
    trimDb?.close();
    trimDb = undefined;
    return undefined;
  }
}

type Gc = (options: { type: 'major'; execution: 'async' }) => Promise<void>;
let gc: Gc | undefined;

/**
 * V8's full garbage collection, run incrementally (`execution: 'async'`): the `gc` function of a fresh context, made
 * available with --expose-gc set at run time (the main context's globals do not change). Undefined if V8 refuses.
 */
function fullGc(): Gc | undefined {
  if (gc) return gc;
  try {
    v8.setFlagsFromString('--expose-gc');
    gc = runInNewContext('gc') as Gc;
  } catch {
    gc = undefined;
  }
  return gc;
}

/**
 * Starts a releaser; its timer does not keep the process alive. Most of a storm's freed native memory is freed only
 * by V8: the memory of the read buffers belongs to Buffer objects that live until a garbage collection, which may come
 * minutes later on a server that has gone quiet. So once a burst has gone quiet the releaser runs one full GC
 * (incremental: V8 marks between event-loop turns), waits `afterGcMs` for V8 to free the dead buffers' memory, and
 * trims (about 1 ms with 19,000 sessions). Nothing runs without a burst: steady telemetry on open connections never
 * triggers it.
 */
export function startNativeMemoryReleaser(logger: NativeMemoryLogger, options: Partial<NativeMemoryOptions> = {}): NativeMemoryReleaser {
  const { minChurn, quietMs, checkMs, afterGcMs } = { ...NATIVE_MEMORY_DEFAULTS, ...options };
  let churn = 0;
  let seen = 0;
  let quietTicks = 0;
  let running = false;
  let stopped = false;
  const release = async (events: number) => {
    const started = performance.now();
    await fullGc()?.({ type: 'major', execution: 'async' });
    const gcMs = performance.now() - started;
    await new Promise((r) => setTimeout(r, afterGcMs).unref());
    if (stopped) return;
    const result = releaseFreedNativeMemory();
    if (!result) {
      stop();
      return;
    }
    logger.debug({ event: 'malloc-trim', connectionEvents: events, gcMs: Math.round(gcMs), released: result.released, ms: Math.round(result.ms * 10) / 10 }, 'freed native memory given back to the OS after a burst of connections');
  };
  const timer = setInterval(() => {
    if (churn !== seen) {
      seen = churn;
      quietTicks = 0;
      return;
    }
    quietTicks++;
    if (running || churn < minChurn || quietTicks * checkMs < quietMs) return;
    const events = churn;
    churn = seen = 0;
    running = true;
    void release(events).finally(() => (running = false));
  }, checkMs);
  timer.unref();
  function stop(): void {
    stopped = true;
    clearInterval(timer);
  }
  return {
    noteChurn() {
      churn++;
    },
    close() {
      stop();
      trimDb?.close();
      trimDb = undefined;
    },
  };
}
