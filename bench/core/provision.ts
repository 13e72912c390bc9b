/**
 * Provisioning through core on SQLite (no transport), with the server's logger at its default level (info, to a
 * file) and the audit on: `total` new devices with unique names, `concurrency` requests in flight. Reports the CPU
 * per provisioning (this process: core + SQLite, which run on the event loop), the latency percentiles and the
 * longest event-loop stall, median of `rounds` rounds. Machine-load independent enough to compare changes.
 *
 *   node --import tsx bench/core/provision.ts [total=20000] [concurrency=64] [rounds=3]
 */
import { mkdtempSync, rmSync, createWriteStream } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { MemoryBus } from '../../src/bus/memory-bus.ts';
import { createCore } from '../../src/core/core.ts';
import { createLogger } from '../../src/log.ts';
import { openSqliteStore } from '../../src/store/sqlite.ts';
import { seedDevices } from '../postgres/seed.ts';
import { mainThreadCpuMs, writerThreadCpuMs, writerThreadWanted } from '../support/thread-cpu.ts';

const total = Number(process.argv[2] ?? 20000);
const concurrency = Number(process.argv[3] ?? 64);
const rounds = Number(process.argv[4] ?? 3);

const dir = mkdtempSync(join(tmpdir(), 'fleetgate-bench-core-provision-'));
try {
  const store = await openSqliteStore(join(dir, 'bench.db'), { synchronous: 'normal', writerThread: writerThreadWanted });
  console.log(`SQLite writer thread: ${writerThreadWanted ? 'on' : 'off'} (FLEETGATE_SQLITE_WRITER_THREAD)`);
  await seedDevices(store, 1); // the bench profile: key bench-key, secret bench-secret
  const logger = createLogger('info', createWriteStream(join(dir, 'server.log')));
  const core = await createCore({ store, bus: new MemoryBus(), logger, settings: { batchMaxRows: 5000, batchMaxDelayMs: 0, rpcDefaultTimeout: 10_000, provisionRetryAfterMs: 3000 } });
  const source = { transport: 'http' as const, address: '127.0.0.1' };
  const provision = (name: string) => core.provisioning.provision({ provisionDeviceKey: 'bench-key', provisionDeviceSecret: 'bench-secret', deviceName: name }, source);
  for (let i = 0; i < 2000; i++) await provision(`warmup-${i}`);
  const results: { us: number; mainUs: number; writerUs: number; rate: number; p50: number; p99: number; p999: number; stall: number }[] = [];
  for (let round = 0; round < rounds; round++) {
    const latencies = new Float64Array(total);
    const loop = monitorEventLoopDelay({ resolution: 1 });
    loop.enable();
    const cpu0 = process.cpuUsage();
    const main0 = mainThreadCpuMs();
    const writer0 = await writerThreadCpuMs();
    let next = 0;
    const started = performance.now();
    await Promise.all(
      Array.from({ length: concurrency }, async () => {
        while (next < total) {
          const i = next++;
          const t0 = performance.now();
          const r = await provision(`bench-${round}-${i}`);
          latencies[i] = performance.now() - t0;
          if (r.status !== 'SUCCESS') throw new Error(`provisioning failed: ${JSON.stringify(r)}`);
        }
      }),
    );
    const seconds = (performance.now() - started) / 1000;
    const cpu = process.cpuUsage(cpu0);
    const mainUs = ((mainThreadCpuMs() - main0) * 1000) / total;
    const writerUs = (((await writerThreadCpuMs()) - writer0) * 1000) / total;
    loop.disable();
    latencies.sort();
    const at = (q: number) => latencies[Math.min(total - 1, Math.floor(q * total))];
    results.push({ us: (cpu.user + cpu.system) / total, mainUs, writerUs, rate: total / seconds, p50: at(0.5), p99: at(0.99), p999: at(0.999), stall: loop.max / 1e6 });
    const r = results[results.length - 1];
    console.log(`round ${round + 1}: ${r.rate.toFixed(0)}/s, ${r.us.toFixed(1)} us CPU per provisioning (main thread ${r.mainUs.toFixed(1)}, writer thread ${r.writerUs.toFixed(1)}), latency p50 ${r.p50.toFixed(1)} ms p99 ${r.p99.toFixed(1)} ms p99.9 ${r.p999.toFixed(1)} ms, longest event-loop stall ${r.stall.toFixed(1)} ms`);
  }
  const median = (f: (r: (typeof results)[number]) => number) => results.map(f).sort((a, b) => a - b)[Math.floor(results.length / 2)];
  console.log(`median of ${rounds}: ${median((r) => r.us).toFixed(1)} us CPU per provisioning (main thread ${median((r) => r.mainUs).toFixed(1)}, writer ${median((r) => r.writerUs).toFixed(1)}), ${median((r) => r.rate).toFixed(0)}/s, p50 ${median((r) => r.p50).toFixed(1)} ms, p99 ${median((r) => r.p99).toFixed(1)} ms, p99.9 ${median((r) => r.p999).toFixed(1)} ms`);
  await core.close();
  await store.close();
} finally {
  rmSync(dir, { recursive: true, force: true });
}
