/**
 * Telemetry persisted on PostgreSQL through Store.writeBatch, the way GroupCommitter writes it: one batch per commit,
 * `writers` commits in flight at once (1 = one node's group committer; 2 = two nodes). Starts its own durable
 * PostgreSQL 15 (fsync and synchronous_commit on), so every counted data point is committed to disk.
 *
 *   node --import tsx bench/postgres/telemetry.ts [seconds=10] [batchSizes=500,2000,5000] [writers=1,2]
 */
import { openPostgresStore } from '../../src/store/postgres.ts';
import type { KyselyStore } from '../../src/store/kysely/kysely-store.ts';
import type { TsPoint } from '../../src/core/model.ts';
import { seedDevices } from './seed.ts';
import { startPostgres } from '../../test/support/postgres.ts';

const seconds = Number(process.argv[2] ?? 10);
const batchSizes = (process.argv[3] ?? '500,2000,5000').split(',').map(Number);
const writerCounts = (process.argv[4] ?? '1,2').split(',').map(Number);
const DEVICES = 1000;
const KEYS = ['temperature', 'humidity', 'pressure', 'voltage', 'rssi'];

const server = await startPostgres({ durable: true });
try {
  const url = await server.createDatabase();
  const store = await openPostgresStore(url, { poolSize: 10 });
  const deviceIds = await seedDevices(store, DEVICES);
  let ts = Date.now();
  /** One batch like a busy node's group commit: many devices, each sending all keys (ThingsBoard-style payloads). */
  const batch = (size: number): TsPoint[] => {
    const out: TsPoint[] = [];
    while (out.length < size) {
      const now = ts++;
      const deviceId = deviceIds[now % DEVICES];
      for (const key of KEYS) if (out.length < size) out.push({ deviceId, key, ts: now, value: key === 'rssi' ? { type: 'LONG', value: -60 - (now % 30) } : { type: 'DOUBLE', value: (now % 1000) / 10 } });
    }
    return out;
  };
  const results: string[] = [];
  for (const writers of writerCounts) {
    for (const size of batchSizes) {
      const cpu0 = process.cpuUsage();
      const pg0 = server.cpuSeconds();
      const { rate, rows } = await measure(store, writers, size, batch);
      const cpu = process.cpuUsage(cpu0);
      const cpuSeconds = (cpu.user + cpu.system) / 1e6 + (server.cpuSeconds() - pg0);
      const perCpu = rows / cpuSeconds;
      const fmt = (n: number) => Math.round(n).toLocaleString('en-US');
      results.push(`| ${writers} | ${size} | ${fmt(rate)} | ${fmt(perCpu)} |`);
      console.error(`writers=${writers} batch=${size}: ${fmt(rate)} data points/s, ${fmt(perCpu)} per CPU-second`);
    }
  }
  console.log('| concurrent writers | rows per batch | data points/s | data points per CPU-second (node + PostgreSQL) |\n|---|---|---|---|');
  console.log(results.join('\n'));
  await store.close();
} finally {
  await server.stop();
}

async function measure(store: KyselyStore, writers: number, size: number, batch: (size: number) => TsPoint[]): Promise<{ rate: number; rows: number }> {
  // Warm up (connections, plans), then count whole committed batches for `seconds`.
  await store.writeBatch({ telemetry: batch(size), attributes: [] });
  const batches = Array.from({ length: 8 }, () => batch(size)); // built up front, so generation is not measured
  let rows = 0;
  const deadline = performance.now() + seconds * 1000;
  const started = performance.now();
  await Promise.all(
    Array.from({ length: writers }, async (_, w) => {
      for (let i = w; performance.now() < deadline; i += writers) {
        const telemetry = batches[i % batches.length].map((p) => ({ ...p, ts: p.ts + (i + 1) * 1_000_000 }));
        await store.writeBatch({ telemetry, attributes: [] });
        rows += telemetry.length;
      }
    }),
  );
  return { rate: rows / ((performance.now() - started) / 1000), rows };
}
