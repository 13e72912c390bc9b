/**
 * Provisioning on PostgreSQL through core (no transport): `total` new devices with unique names, `concurrency`
 * requests in flight, each a full provisioning transaction (profile lookup, device + credentials + provisionState
 * attribute + audit row). Starts its own durable PostgreSQL 15.
 *
 *   node --import tsx bench/postgres/provisioning.ts [total=5000] [concurrency=64]
 */
import { MemoryBus } from '../../src/bus/memory-bus.ts';
import { createCore } from '../../src/core/core.ts';
import { openPostgresStore } from '../../src/store/postgres.ts';
import { startPostgres } from '../../test/support/postgres.ts';
import { seedDevices } from './seed.ts';

const total = Number(process.argv[2] ?? 5000);
const concurrency = Number(process.argv[3] ?? 64);
const silent = { info() {}, warn() {}, error() {}, debug() {} };

const server = await startPostgres({ durable: true });
try {
  const store = await openPostgresStore(await server.createDatabase(), { poolSize: 10 });
  await seedDevices(store, 1); // the bench profile: key bench-key, secret bench-secret
  const core = await createCore({ store, bus: new MemoryBus(), logger: silent, settings: { batchMaxRows: 5000, batchMaxDelayMs: 0, rpcDefaultTimeout: 10_000, provisionRetryAfterMs: 3000 } });
  const source = { transport: 'http' as const, address: '127.0.0.1' };
  const provision = (name: string) => core.provisioning.provision({ provisionDeviceKey: 'bench-key', provisionDeviceSecret: 'bench-secret', deviceName: name }, source);
  for (let i = 0; i < 200; i++) await provision(`warmup-${i}`);
  const cpu0 = process.cpuUsage();
  const pg0 = server.cpuSeconds();
  let next = 0;
  let ok = 0;
  const started = performance.now();
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < total) {
        const r = await provision(`bench-new-${next++}`);
        if (r.status === 'SUCCESS') ok++;
      }
    }),
  );
  const seconds = (performance.now() - started) / 1000;
  if (ok !== total) throw new Error(`only ${ok} of ${total} provisions succeeded`);
  const cpu = process.cpuUsage(cpu0);
  const cpuSeconds = (cpu.user + cpu.system) / 1e6 + (server.cpuSeconds() - pg0);
  const fmt = (n: number) => Math.round(n).toLocaleString('en-US');
  console.log(`| ${total} | ${concurrency} | ${fmt(total / seconds)} | ${fmt(total / cpuSeconds)} |`);
  await core.close();
  await store.close();
} finally {
  await server.stop();
}
