// Preload for a benchmark server (BENCH_SERVER_NODE_ARGS="--import ./bench/support/gc-stats.mjs"): counts GC by kind
// (scavenges, mark-compacts, their pause times) with a PerformanceObserver and, with GC_STATS_ALLOC=1, samples
// allocations with V8's sampling heap profiler, objects collected by scavenges included (garbage, not only what
// lives). Every 3 s it writes $GC_STATS_DIR/gc-<tag>-<pid>.json (and alloc-<tag>-<pid>.json: a Chrome
// .heapprofile-shaped tree; sampled bytes ÷ messages = bytes allocated a message). Tag: $GC_STATS_TAG.
import { PerformanceObserver, constants } from 'node:perf_hooks';
import { mkdirSync, writeFileSync } from 'node:fs';
import { Session } from 'node:inspector';

const dir = process.env.GC_STATS_DIR ?? '/tmp/gc-stats';
const tag = process.env.GC_STATS_TAG ?? 'run';
mkdirSync(dir, { recursive: true });
const counts = { minor: 0, major: 0, incremental: 0, other: 0, minorMs: 0, majorMs: 0 };
new PerformanceObserver((list) => {
  for (const e of list.getEntries()) {
    const kind = e.detail?.kind;
    if (kind === constants.NODE_PERFORMANCE_GC_MINOR) {
      counts.minor++;
      counts.minorMs += e.duration;
    } else if (kind === constants.NODE_PERFORMANCE_GC_MAJOR) {
      counts.major++;
      counts.majorMs += e.duration;
    } else if (kind === constants.NODE_PERFORMANCE_GC_INCREMENTAL) counts.incremental++;
    else counts.other++;
  }
}).observe({ entryTypes: ['gc'] });
let session;
if (process.env.GC_STATS_ALLOC === '1') {
  session = new Session();
  session.connect();
  session.post('HeapProfiler.startSampling', { samplingInterval: 4096, includeObjectsCollectedByMajorGC: true, includeObjectsCollectedByMinorGC: true });
}
setInterval(() => {
  writeFileSync(`${dir}/gc-${tag}-${process.pid}.json`, JSON.stringify({ at: Date.now(), ...counts }));
  session?.post('HeapProfiler.getSamplingProfile', (err, result) => {
    if (!err) writeFileSync(`${dir}/alloc-${tag}-${process.pid}.json`, JSON.stringify(result.profile));
  });
}, 3000).unref();
