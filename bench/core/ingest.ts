/**
 * Micro-benchmark of the shared telemetry ingest path, without any transport: a real core on a temp SQLite file
 * (as src/server.ts builds it), `devices` devices each keeping `window` `core.telemetry.ingestJson` calls in
 * flight (the MQTT bench's shape: 100 × 64), payload `{"temperature":21.5,"humidity":40,"ok":true}` as a Buffer.
 *
 *   node --import tsx bench/core/ingest.ts [messages=400000] [devices=100] [window=64] [attributes=0] [metrics=1]
 *
 * `attributes=1` sends client attributes (saveClientAttributesJson) instead of telemetry; `metrics=0` leaves out the
 * Prometheus observer (on in the server by default).
 * Prints one JSON line: msg/s, CPU µs per message (user + system; the figure that survives a shared machine),
 * GC time share and count. BENCH_ROOT=dir measures the core of another checkout (A/B: bench/core/ab.ts).
 * BENCH_ALLOC=1 samples the measured run's allocations (including objects already collected) and adds
 * allocBytesPerMsg (the timings are then slower); BENCH_HEAP_PROFILE=file.heapprofile also saves that profile
 * (open it in Chrome DevTools).
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Session } from 'node:inspector/promises';
import { PerformanceObserver } from 'node:perf_hooks';
import { pathToFileURL } from 'node:url';
import type { DeviceIdentity } from '../../src/core/api.ts';

/** The tree whose core is measured: this one, or BENCH_ROOT (e.g. a `git archive` of the base commit, for A/B). */
const root = process.env.BENCH_ROOT ? pathToFileURL(`${process.env.BENCH_ROOT}/`) : new URL('../../', import.meta.url);
const load = <T>(path: string): Promise<T> => import(new URL(path, root).href);
const { openSqliteStore } = await load<typeof import('../../src/store/sqlite.ts')>('src/store/sqlite.ts');
const { MemoryBus } = await load<typeof import('../../src/bus/memory-bus.ts')>('src/bus/memory-bus.ts');
const { createCore } = await load<typeof import('../../src/core/core.ts')>('src/core/core.ts');
const { FleetgateMetrics } = await load<typeof import('../../src/metrics/metrics.ts')>('src/metrics/metrics.ts');
const { DEFAULT_TENANT_ID } = await load<typeof import('../../src/core/model.ts')>('src/core/model.ts');

const [messages = 400_000, devices = 100, window = 64, attributes = 0, withMetrics = 1] = process.argv.slice(2).map(Number);
const payload = Buffer.from('{"temperature":21.5,"humidity":40,"ok":true}');
const actor = { userId: null, userName: 'bench', source: { transport: 'cli' as const } };

// As src/server.ts builds it: SQLite synchronous=normal, default batch settings, metrics on unless withMetrics=0.
const dir = mkdtempSync(join(tmpdir(), 'fleetgate-ingest-'));
// FLEETGATE_SQLITE_WRITER_THREAD=off: statements on the event loop (config sqliteWriterThread); BENCH_ROOT trees may not know it.
const store = await openSqliteStore(join(dir, 'bench.db'), { synchronous: 'normal', writerThread: process.env.FLEETGATE_SQLITE_WRITER_THREAD !== 'off' } as Parameters<typeof openSqliteStore>[1]);
const metrics = withMetrics ? new FleetgateMetrics() : undefined;
const silent = { info() {}, warn() {}, error() {}, debug() {} };
const settings = { batchMaxRows: 5000, batchMaxDelayMs: 0, rpcDefaultTimeout: 2000, provisionRetryAfterMs: 3000 };
const core = await createCore({ store, bus: new MemoryBus(), logger: silent, settings, observer: metrics?.coreObserver });
if (metrics) core.committer.onCommit = metrics.onCommit;
const identities: DeviceIdentity[] = [];
for (let i = 0; i < devices; i++) {
  await core.devices.save(DEFAULT_TENANT_ID, { name: `bench-${i}` }, actor, `bench-token-${i}`);
  identities.push((await core.auth.byAccessToken(`bench-token-${i}`))!);
}
// BENCH_DISTINCT_TS=1: each message `{"ts":…,"values":{…}}` with a ts of its own (every point a row, as bench/mqtt/distinct-ts.ts).
let lastTs = 1_700_000_000_000;
const send = attributes
  ? (d: DeviceIdentity) => core.telemetry.saveClientAttributesJson(d, payload)
  : process.env.BENCH_DISTINCT_TS
    ? (d: DeviceIdentity) => core.telemetry.ingestJson(d, Buffer.from(`{"ts":${++lastTs},"values":{"temperature":21.5,"humidity":40}}`))
    : (d: DeviceIdentity) => core.telemetry.ingestJson(d, payload);

/** Runs `count` messages through core; resolves when all are committed. */
function run(count: number): Promise<void> {
  let started = 0;
  let done = 0;
  return new Promise((resolve, reject) => {
    const next = (d: DeviceIdentity) => {
      if (started >= count) return;
      started++;
      send(d).then(() => {
        if (++done === count) resolve();
        else next(d);
      }, reject);
    };
    for (const d of identities) for (let i = 0; i < window; i++) next(d);
  });
}

await run(Math.min(50_000, messages)); // warm-up
let gcMs = 0;
let gcs = 0;
const observer = new PerformanceObserver((list) => {
  for (const e of list.getEntries()) {
    gcMs += e.duration;
    gcs++;
  }
});
observer.observe({ entryTypes: ['gc'] });
const heapProfile = process.env.BENCH_HEAP_PROFILE;
const session = heapProfile || process.env.BENCH_ALLOC ? new Session() : undefined;
let allocated: number | undefined;
if (session) {
  session.connect();
  await session.post('HeapProfiler.startSampling', { samplingInterval: 512, includeObjectsCollectedByMajorGC: true, includeObjectsCollectedByMinorGC: true });
}
// Thread CPU: the writer thread is counted only for this tree's store (not under BENCH_ROOT).
const { mainThreadCpuMs, writerThreadCpuMs } = await import('../support/thread-cpu.ts');
const main0 = mainThreadCpuMs();
const writer0 = await writerThreadCpuMs();
const cpu0 = process.cpuUsage();
const t0 = performance.now();
await run(messages);
const ms = performance.now() - t0;
const cpu = process.cpuUsage(cpu0);
const mainUs = ((mainThreadCpuMs() - main0) * 1000) / messages;
const writerUs = (((await writerThreadCpuMs()) - writer0) * 1000) / messages;
await new Promise((r) => setImmediate(r));
observer.disconnect();
if (session) {
  const { profile } = await session.post('HeapProfiler.stopSampling');
  if (heapProfile) writeFileSync(heapProfile, JSON.stringify(profile));
  allocated = 0;
  const walk = (node: typeof profile.head): void => {
    allocated! += node.selfSize;
    node.children.forEach(walk);
  };
  walk(profile.head);
  session.disconnect();
}
const cpuUs = cpu.user + cpu.system;
console.log(
  JSON.stringify({
    msgPerSec: Math.round((messages / ms) * 1000),
    cpuUsPerMsg: +(cpuUs / messages).toFixed(2),
    mainThreadUsPerMsg: +mainUs.toFixed(2),
    writerThreadUsPerMsg: +writerUs.toFixed(2),
    gcShare: +((gcMs * 1000) / cpuUs).toFixed(3),
    gcs,
    ...(allocated === undefined ? {} : { allocBytesPerMsg: Math.round(allocated / messages) }),
    batches: core.committer.stats.batches,
  }),
);
await core.close();
await store.close();
rmSync(dir, { recursive: true, force: true });
