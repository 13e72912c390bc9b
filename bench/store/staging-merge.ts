/**
 * The SQLite telemetry staging under HTTP telemetry's commit shape (issue 17): a store on a temp file (writer thread
 * on, as the server opens it), group commits of `requests` requests × 3 values over `devices` devices written one
 * after another, each from a new turn of the event loop, as the group committer does under a closed loop. Reports
 * the time from the end of one commit to the end of the next (p50/p99/p99.9/max: what a request of a closed loop
 * waits, a merge inside the commit or a merge slice between two commits included), the event loop's delay
 * (p99/p99.9/max, 1 ms resolution), and CPU per request (whole process and main thread). BENCH_ROOT=dir measures the store of another checkout (A/B).
 *
 *   node --import tsx bench/store/staging-merge.ts [commits=4000] [requests=50] [devices=100]
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { pathToFileURL } from 'node:url';
import type { TsPoint } from '../../src/core/model.ts';

const root = process.env.BENCH_ROOT ? pathToFileURL(`${process.env.BENCH_ROOT}/`) : new URL('../../', import.meta.url);
const { openSqliteStore } = (await import(new URL('src/store/sqlite.ts', root).href)) as typeof import('../../src/store/sqlite.ts');
const [commits = 4000, requests = 50, devices = 100] = process.argv.slice(2).map(Number);

const dir = mkdtempSync(join(tmpdir(), 'fleetgate-staging-merge-'));
const store = await openSqliteStore(join(dir, 'bench.db'), { synchronous: 'normal' });
const ids = Array.from({ length: devices }, (_, i) => `0193a5b2-${(1000 + i).toString(16)}-7abc-8def-${String(i).padStart(12, '0')}`);
const keys = ['temperature', 'humidity', 'on'];
let ts = Date.now();
let device = 0;
function batch(): TsPoint[] {
  const points: TsPoint[] = [];
  for (let r = 0; r < requests; r++) {
    const deviceId = ids[device++ % devices];
    ts++;
    points.push({ deviceId, key: keys[0], ts, value: { type: 'DOUBLE', value: 21.5 } });
    points.push({ deviceId, key: keys[1], ts, value: { type: 'LONG', value: 40 } });
    points.push({ deviceId, key: keys[2], ts, value: { type: 'BOOLEAN', value: true } });
  }
  return points;
}
const mainCpuMs = () => {
  const f = readFileSync(`/proc/${process.pid}/task/${process.pid}/stat`, 'utf8').split(') ')[1].split(' ');
  return ((Number(f[11]) + Number(f[12])) * 1000) / 100;
};

for (let i = 0; i < 500; i++) {
  await store.writeBatch({ telemetry: batch(), attributes: [] }); // warm-up
  await new Promise((resolve) => setImmediate(resolve));
}
const loop = monitorEventLoopDelay({ resolution: 1 });
loop.enable();
const cpu0 = process.cpuUsage();
const main0 = mainCpuMs();
const latencies: number[] = [];
const started = performance.now();
let last = performance.now();
for (let i = 0; i < commits; i++) {
  await new Promise((resolve) => setImmediate(resolve)); // the group committer starts each commit from setImmediate
  await store.writeBatch({ telemetry: batch(), attributes: [] });
  const now = performance.now();
  latencies.push(now - last);
  last = now;
}
const wall = performance.now() - started;
const cpu = process.cpuUsage(cpu0);
const mainMs = mainCpuMs() - main0;
loop.disable();
await store.close();
rmSync(dir, { recursive: true, force: true });
latencies.sort((a, b) => a - b);
const at = (q: number) => +latencies[Math.min(latencies.length - 1, Math.floor(q * latencies.length))].toFixed(2);
const n = commits * requests;
console.log(
  JSON.stringify({
    requests: n,
    cpuUsPerRequest: +(((cpu.user + cpu.system) / n)).toFixed(2),
    mainThreadUsPerRequest: +((mainMs * 1000) / n).toFixed(2),
    cycleMs: { p50: at(0.5), p99: at(0.99), p999: at(0.999), max: at(1) },
    cyclesOver10ms: latencies.filter((l) => l > 10).length,
    eventLoopDelayMs: { p99: +(loop.percentile(99) / 1e6).toFixed(1), p999: +(loop.percentile(99.9) / 1e6).toFixed(1), max: +(loop.max / 1e6).toFixed(1) },
    requestsPerSecond: Math.round(n / (wall / 1000)),
  }),
);
