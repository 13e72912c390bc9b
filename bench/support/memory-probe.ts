/**
 * Memory probe for benchmark child processes: a line `measure` on stdin runs full garbage collections (the
 * "last-resort" kind, which also shrinks the young generation and compacts), waits for the heap to settle, and answers
 * one JSON line `{"memory":{...}}` on stdout with process.memoryUsage() and the young generation's size. The parent
 * reads RSS from /proc itself, the same way for every server (mosquitto included), after this answer.
 * A line `snapshot <path>` writes a heap snapshot there and answers `{"snapshot":path}`.
 */
import { createInterface } from 'node:readline';
import v8 from 'node:v8';
import { runInNewContext } from 'node:vm';

type Gc = (options?: { type: 'major'; execution: 'sync'; flavor: 'last-resort' }) => void;
let gc: Gc | undefined;

/** What the probe reports, bytes. */
export interface MemoryReport {
  rss: number;
  heapUsed: number;
  heapTotal: number;
  external: number;
  arrayBuffers: number;
  newSpace: number;
  /** Used bytes per V8 heap space (new_space, old_space, code_space, large_object_space, ...). */
  spaces: Record<string, number>;
}

const pause = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A class no object is ever made of: what `v8.queryObjects` is asked to count (see allAvailableGarbage). */
class NoInstances {}

/**
 * V8's most thorough collection, the one a heap snapshot runs (Heap::CollectAllAvailableGarbage): it first clears the
 * compilation cache (eval, `new Function`, RegExp and script tables), then runs full GCs that reduce the memory
 * footprint until nothing more is freed. Node 20's `gc({ flavor: 'last-resort' })` does not reach it (V8 11.3's gc
 * extension ignores `flavor` and runs one ordinary full GC), so the cache kept 5-40 MB of otherwise dead heap, a
 * different amount at each probe. `v8.queryObjects` runs this collection before it counts (and counts nothing here);
 * its one-time ExperimentalWarning is kept off stderr.
 */
function allAvailableGarbage(): void {
  const emitWarning = process.emitWarning;
  process.emitWarning = () => {};
  try {
    v8.queryObjects(NoInstances, { format: 'count' });
  } finally {
    process.emitWarning = emitWarning;
  }
}

/** The most thorough collection, then full GCs until the used heap stops shrinking, then a settle pause; returns the figures. */
export async function settledMemory(thorough = true): Promise<MemoryReport> {
  let last = Infinity;
  if (thorough) allAvailableGarbage();
  for (let i = 0; i < 6; i++) {
    gc!({ type: 'major', execution: 'sync', flavor: 'last-resort' });
    await pause(200);
    const used = process.memoryUsage().heapUsed;
    if (used >= last * 0.999) break;
    last = used;
  }
  await pause(500);
  const m = process.memoryUsage();
  const stats = v8.getHeapSpaceStatistics();
  const newSpace = stats.find((s) => s.space_name === 'new_space')?.space_size ?? 0;
  const spaces = Object.fromEntries(stats.map((s) => [s.space_name, s.space_used_size]));
  return { rss: m.rss, heapUsed: m.heapUsed, heapTotal: m.heapTotal, external: m.external, arrayBuffers: m.arrayBuffers, newSpace, spaces };
}

/**
 * Answers `measure` lines on stdin; stdin's end is ignored. Only in a process started with BENCH_MEMORY_PROBE=1 (as
 * bench/mqtt/idle-measure.ts starts its servers): elsewhere the V8 flags below would change what another bench measures.
 */
export function installMemoryProbe(): void {
  if (process.env.BENCH_MEMORY_PROBE !== '1') return;
  v8.setFlagsFromString('--expose-gc');
  // Functions not run for a while lose their bytecode at some later GC; that would shrink the heap between two probes
  // for reasons that have nothing to do with what is measured.
  v8.setFlagsFromString('--no-flush-bytecode');
  gc = runInNewContext('gc') as Gc;
  const lines = createInterface({ input: process.stdin });
  lines.on('line', (line) => {
    const [command, path] = line.trim().split(' ');
    if (command === 'snapshot' && path) {
      // Heap snapshot for bench/support/heap-diff.ts (a full GC runs first, as part of taking it).
      v8.writeHeapSnapshot(path);
      process.stdout.write(`${JSON.stringify({ snapshot: path })}\n`);
      return;
    }
    // `measure-plain`: the same without V8's most thorough collection (ordinary full GCs only; bench/mqtt/idle-regrow.ts).
    if (command !== 'measure' && command !== 'measure-plain') return;
    void settledMemory(command === 'measure').then((memory) => process.stdout.write(`${JSON.stringify({ memory })}\n`));
  });
  lines.on('error', () => {});
}
