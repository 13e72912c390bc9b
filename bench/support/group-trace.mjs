/**
 * A preload for the server (`--import`, through BENCH_SERVER_NODE_ARGS) that records, for every provisioning group
 * the TransactionBatcher commits (diagnostics channel 'fleetgate:transaction-group'), its size and its phases, and for
 * every HTTP request its time in the server (node's 'http.server.request.start' to 'http.server.response.finish').
 * At exit it writes a summary to GROUP_TRACE_FILE ('%p': the process id): per-request latency percentiles, each
 * unit's time queued before its group started, its group's execution and commit, and latency by group size, only for
 * the busiest seconds (a second in which ≥ 1,000 units started: HTTP, MQTT or CoAP provisioning). Diagnostics only: nothing in the server imports it.
 */
import { appendFileSync, readFileSync } from 'node:fs';
import { subscribe } from 'node:diagnostics_channel';
import { performance } from 'node:perf_hooks';

const file = process.env.GROUP_TRACE_FILE?.replace('%p', String(process.pid));
if (file) {
  const units = []; // [queuedMs, execMs, commitMs, size, startedAt]
  const groupRows = []; // [size, execMs, commitMs, startedAt, offload]
  const requests = []; // [ms, finishedAt]
  const started = new WeakMap();
  const slowLines = [];
  // The main thread's scheduler figures (ns on CPU, ns runnable but waiting for a CPU): a slow group's wall time splits
  // into its own work, descheduling (the 2 cores shared with the load generator and the server's other threads) and
  // the rest (blocked: the write mutex of a checkpoint's final pass, the disk).
  const schedFile = `/proc/self/task/${process.pid}/schedstat`;
  const sched = () => readFileSync(schedFile, 'utf8').split(' ').map(Number);
  let schedAtStart = [0, 0];
  const split = { oncpu: 0, runqueue: 0, blocked: 0, groups: 0 };
  subscribe('fleetgate:transaction-group', (g) => {
    if (g.committedAt === undefined) return void (schedAtStart = sched());
    const [cpuNs, waitNs] = sched();
    const oncpu = (cpuNs - schedAtStart[0]) / 1e6;
    const runqueue = (waitNs - schedAtStart[1]) / 1e6;
    const exec = g.executedAt - g.startedAt;
    const commit = g.committedAt - g.executedAt;
    groupRows.push([g.units, exec, commit, g.startedAt, g.offload ? 1 : 0]);
    const waited = g.startedAt - g.queuedAt[0];
    // Slow groups, one line each (timestamps as stall-trace.mjs writes them: ms since the process started).
    const blocked = exec + commit - oncpu - runqueue;
    if (exec + commit >= 8) Object.assign(split, { oncpu: split.oncpu + oncpu, runqueue: split.runqueue + runqueue, blocked: split.blocked + blocked, groups: split.groups + 1 });
    if (exec + commit + waited >= 10) slowLines.push(`${g.startedAt.toFixed(1)} slow-group size ${g.units} waited ${waited.toFixed(1)} exec ${exec.toFixed(1)} commit ${commit.toFixed(1)} main on cpu ${oncpu.toFixed(1)} runqueue ${runqueue.toFixed(1)} blocked ${blocked.toFixed(1)}`);
    for (const q of g.queuedAt) units.push([g.startedAt - q, exec, commit, g.units, g.startedAt]);
  });
  subscribe('http.server.request.start', ({ request }) => started.set(request, performance.now()));
  subscribe('http.server.response.finish', ({ request }) => {
    const t = started.get(request);
    if (t !== undefined) requests.push([performance.now() - t, t]);
  });

  const pct = (xs, p) => (xs.length ? xs[Math.min(xs.length - 1, Math.floor((p / 100) * xs.length))] : NaN);
  const line = (name, xs) => {
    xs.sort((a, b) => a - b);
    const mean = xs.reduce((a, b) => a + b, 0) / (xs.length || 1);
    return `${name.padEnd(26)} n ${String(xs.length).padStart(7)}  mean ${mean.toFixed(2)}  p50 ${pct(xs, 50).toFixed(2)}  p90 ${pct(xs, 90).toFixed(2)}  p99 ${pct(xs, 99).toFixed(2)}  p99.9 ${pct(xs, 99.9).toFixed(2)}  max ${pct(xs, 100).toFixed(2)}`;
  };
  process.on('exit', () => {
    // Busy seconds only (warm-up and idle gaps out).
    const perSecond = new Map();
    for (const r of units) perSecond.set(Math.floor(r[4] / 1000), (perSecond.get(Math.floor(r[4] / 1000)) ?? 0) + 1);
    const busy = (t) => (perSecond.get(Math.floor(t / 1000)) ?? 0) >= 1000;
    const out = [];
    const req = requests.filter(([, t]) => busy(t)).map(([ms]) => ms);
    out.push(line('request in server (ms)', req));
    const u = units.filter((r) => busy(r[4]));
    out.push(line('unit queued before group', u.map((r) => r[0])));
    out.push(line('unit group exec', u.map((r) => r[1])));
    out.push(line('unit group commit', u.map((r) => r[2])));
    out.push(line('unit queued+exec+commit', u.map((r) => r[0] + r[1] + r[2])));
    const g = groupRows.filter((r) => busy(r[3]));
    out.push(line('group size', g.map((r) => r[0])));
    out.push(line('group exec', g.map((r) => r[1])));
    out.push(line('group commit', g.map((r) => r[2])));
    out.push(`groups offloaded ${g.filter((r) => r[4]).length} of ${g.length}`);
    // Size buckets: how long a group of that size takes, and how long its units waited before it.
    const buckets = [1, 8, 16, 24, 32, 40, 48, 56, 64, 1e9];
    for (let i = 0; i < buckets.length - 1; i++) {
      const inB = (s) => s >= buckets[i] && s < buckets[i + 1];
      const gb = g.filter((r) => inB(r[0]));
      if (!gb.length) continue;
      const ub = u.filter((r) => inB(r[3]));
      const m = (xs) => (xs.length ? (xs.reduce((a, b) => a + b, 0) / xs.length).toFixed(2) : '-');
      const total = ub.map((r) => r[0] + r[1] + r[2]).sort((a, b) => a - b);
      out.push(
        `size ${String(buckets[i]).padStart(2)}-${String(Math.min(buckets[i + 1] - 1, 999)).padStart(3)}: groups ${String(gb.length).padStart(5)} exec ${m(gb.map((r) => r[1]))} commit ${m(gb.map((r) => r[2]))} ms; units ${String(ub.length).padStart(6)} queued ${m(ub.map((r) => r[0]))} total p50 ${pct(total, 50).toFixed(2)} p99 ${pct(total, 99).toFixed(2)}`,
      );
    }
    // The slowest 1% of requests' units: what made them slow.
    const slow = [...u].sort((a, b) => b[0] + b[1] + b[2] - (a[0] + a[1] + a[2])).slice(0, Math.ceil(u.length / 100));
    const m = (xs) => (xs.reduce((a, b) => a + b, 0) / (xs.length || 1)).toFixed(2);
    out.push(`slowest 1% of units: queued ${m(slow.map((r) => r[0]))} exec ${m(slow.map((r) => r[1]))} commit ${m(slow.map((r) => r[2]))} size ${m(slow.map((r) => r[3]))}`);
    const per = (v) => (v / (split.groups || 1)).toFixed(2);
    out.push(`groups of >= 8 ms (${split.groups}), mean ms: main thread on CPU ${per(split.oncpu)}, runnable but waiting ${per(split.runqueue)}, blocked ${per(split.blocked)}`);
    appendFileSync(file, out.join('\n') + '\n' + slowLines.join('\n') + '\n');
  });
}
