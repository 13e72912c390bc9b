/**
 * A preload for the server (`--import`, e.g. BENCH_SERVER_NODE_ARGS="--import ./bench/support/stall-trace.mjs") that
 * writes one line per event to STALL_TRACE_FILE, with milliseconds since the process started: event-loop gaps of
 * 10 ms or more (wall, the process's CPU over the gap, and the main thread's time running and waiting for a core), GC pauses of 5 ms or more and every mark-compact, the WAL file's size every
 * 100 ms (when it changed), and what the SQLite store publishes on the diagnostics channels 'fleetgate:sqlite-checkpoint'
 * and 'fleetgate:sqlite-merge' (checkpoint passes, write pauses, merge slices). Diagnostics only: nothing in the server
 * imports it.
 */
import { appendFileSync, openSync, readSync, statSync } from 'node:fs';
import { subscribe, unsubscribe } from 'node:diagnostics_channel';
import { createRequire } from 'node:module';
import { PerformanceObserver, performance } from 'node:perf_hooks';

// '%p' in the name stands for the process id (several servers in one bench).
const file = process.env.STALL_TRACE_FILE?.replace('%p', String(process.pid));
if (file) {
  const lines = [];
  // With STALL_TRACE_HRTIME=1 each line also starts with process.hrtime in µs (the clock of a --cpu-prof profile).
  const hr = process.env.STALL_TRACE_HRTIME === '1';
  const out = (line) => lines.push(`${hr ? `${(process.hrtime.bigint() / 1000n).toString()} ` : ''}${performance.now().toFixed(1)} ${line}`);
  setInterval(() => {
    if (lines.length) appendFileSync(file, lines.splice(0).join('\n') + '\n');
  }, 500).unref();
  process.on('exit', () => lines.length && appendFileSync(file, lines.join('\n') + '\n'));

  // The main thread's own time on a core and waiting for one (ns), from the scheduler's statistics: a gap the event loop
  // spent running is its own work; one it spent waiting, the machine's (process.cpuUsage counts every thread).
  const schedstat = (() => {
    try {
      const fd = openSync('/proc/thread-self/schedstat', 'r');
      const buf = Buffer.alloc(128);
      return () => {
        const n = readSync(fd, buf, 0, 128, 0);
        const [run, wait] = buf.toString('latin1', 0, n).split(' ');
        return { run: Number(run) / 1e6, wait: Number(wait) / 1e6 };
      };
    } catch {
      return undefined;
    }
  })();
  let last = performance.now();
  let lastCpu = process.cpuUsage();
  let lastSched = schedstat?.();
  const tick = () => {
    const now = performance.now();
    const cpu = process.cpuUsage();
    const sched = schedstat?.();
    const gap = now - last;
    if (gap >= 10) {
      const main = sched && lastSched ? ` main ran ${(sched.run - lastSched.run).toFixed(1)} ms waited ${(sched.wait - lastSched.wait).toFixed(1)} ms` : '';
      out(`gap ${gap.toFixed(1)} ms cpu ${((cpu.user + cpu.system - lastCpu.user - lastCpu.system) / 1000).toFixed(1)} ms${main}`);
    }
    last = now;
    lastCpu = cpu;
    lastSched = sched;
    setTimeout(tick, 1).unref();
  };
  setTimeout(tick, 1).unref();

  new PerformanceObserver((list) => {
    // Every mark-compact (kind 4), any other pause of 5 ms or more; with V8's callback flags (32: external memory).
    for (const e of list.getEntries()) if (e.duration >= 5 || e.detail?.kind === 4) out(`gc ${e.detail?.kind ?? ''} ${e.duration.toFixed(1)} ms flags ${e.detail?.flags ?? ''}`);
  }).observe({ entryTypes: ['gc'] });

  // The process's CPU each second: tells the measured rounds (busy) from the rest.
  let secondCpu = process.cpuUsage();
  setInterval(() => {
    const c = process.cpuUsage(secondCpu);
    secondCpu = process.cpuUsage();
    out(`second cpu ${((c.user + c.system) / 1000).toFixed(0)} ms`);
  }, 1000).unref();

  const wal = process.env.FLEETGATE_DATABASE ? `${process.env.FLEETGATE_DATABASE}-wal` : undefined;
  let walSize = -1;
  if (wal) {
    setInterval(() => {
      let size = 0;
      try {
        size = statSync(wal).size;
      } catch {}
      if (size !== walSize) out(`wal ${(size / 1048576).toFixed(1)} MiB`);
      walSize = size;
    }, 100).unref();
  }
  // Main-thread better-sqlite3 statements of 10 ms (STALL_TRACE_STATEMENT_MS) or more (wall and the thread's CPU), with the start of their SQL.
  if (process.env.STALL_TRACE_STATEMENTS !== '0') {
    const statementMs = Number(process.env.STALL_TRACE_STATEMENT_MS ?? 10);
    const Database = createRequire(import.meta.url)('better-sqlite3');
    const probe = new Database(':memory:');
    const proto = Object.getPrototypeOf(probe.prepare('select 1'));
    probe.close();
    for (const name of ['run', 'all', 'get']) {
      const original = proto[name];
      proto[name] = function (...args) {
        const t = performance.now();
        const c = process.cpuUsage();
        try {
          return original.apply(this, args);
        } finally {
          const ms = performance.now() - t;
          if (ms >= statementMs) {
            const cpu = process.cpuUsage(c);
            out(`statement ${ms.toFixed(1)} ms cpu ${((cpu.user + cpu.system) / 1000).toFixed(1)} ms ${this.source.slice(0, 40).replace(/\s+/g, ' ')}`);
          }
        }
      };
    }
  }
  // The first connection the server accepts: where a benchmark's load starts (stall-summary.mjs counts from here).
  const accepted = () => {
    out('first connection');
    unsubscribe('net.server.socket', accepted);
  };
  subscribe('net.server.socket', accepted);
  subscribe('fleetgate:sqlite-checkpoint', (m) => out(`checkpoint ${JSON.stringify(m)}`));
  subscribe('fleetgate:sqlite-merge', (m) => out(`merge ${JSON.stringify(m)}`));
}
