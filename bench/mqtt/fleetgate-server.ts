/**
 * Bench child process: a whole fleetgate server on 127.0.0.1 with a temp SQLite database, seeded with
 * `BENCH_DEVICES` devices whose access tokens are `bench-0..n-1` and a provisioning profile
 * (key `bench-key`, secret `bench-secret`); with BENCH_EXPORT_URL, one export rule sending all telemetry to that webhook
 * (bench/export). Prints one JSON line `{"mqttPort":..,"httpPort":..}` when ready.
 * BENCH_FROM_DIST=1 runs the compiled dist/ (as `npm start` does; build it first with `node scripts/build.mjs`) instead
 * of src/ through tsx, whose transform gives every arrow function kept in a field a `name` property of its own (about
 * 250 bytes each on the heap); BENCH_DIST_DIR=/abs/dist runs another checkout's build (a before/after A/B). Answers the memory probe (bench/support/memory-probe.ts) on stdin.
 */
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { installMemoryProbe } from '../support/memory-probe.ts';

const distDir = process.env.BENCH_DIST_DIR ?? (process.env.BENCH_FROM_DIST ? join(import.meta.dirname, '../../dist') : undefined);
const code = (path: string) => (distDir ? pathToFileURL(join(distDir, `${path}.js`)).href : `../../src/${path}.ts`);
const { loadConfig } = (await import(code('config'))) as typeof import('../../src/config.ts');
const { createLogger } = (await import(code('log'))) as typeof import('../../src/log.ts');
const { DEFAULT_TENANT_ID } = (await import(code('core/model'))) as typeof import('../../src/core/model.ts');
const { startServer } = (await import(code('server'))) as typeof import('../../src/server.ts');

const devices = Number(process.env.BENCH_DEVICES ?? 100);
const dir = mkdtempSync(join(tmpdir(), 'fleetgate-bench-'));
const config = {
  ...loadConfig({ env: process.env }), // FLEETGATE_* variables tune the benched server (e.g. limits on or off)
  host: '127.0.0.1',
  httpPort: 0,
  mqttPort: 0,
  coapPort: 0,
  database: join(dir, 'bench.db'),
  adminUsername: 'bench@local',
  adminPassword: 'bench-password',
  logLevel: 'warn',
};
const server = await startServer(config, { logger: createLogger('warn', process.stderr), announce: () => {} });
const actor = { userId: null, userName: 'bench', source: { transport: 'cli' as const } };
await server.core.profiles.save(
  DEFAULT_TENANT_ID,
  {
    name: 'bench-provisioning',
    provisionType: 'ALLOW_CREATE_NEW_DEVICES',
    provisionDeviceKey: 'bench-key',
    profileData: { provisionConfiguration: { type: 'ALLOW_CREATE_NEW_DEVICES', provisionDeviceSecret: 'bench-secret' } },
  },
  actor,
);
for (let i = 0; i < devices; i += 500) {
  const batch = [];
  for (let j = i; j < Math.min(devices, i + 500); j++) batch.push(server.core.devices.save(DEFAULT_TENANT_ID, { name: `bench-device-${j}` }, actor, `bench-${j}`));
  await Promise.all(batch);
}
if (process.env.BENCH_EXPORT_URL) {
  await server.core.exports.rules.save(DEFAULT_TENANT_ID, { name: 'bench', kinds: ['telemetry'], destination: { type: 'webhook', url: process.env.BENCH_EXPORT_URL, batchSize: 1000 } });
}
installMemoryProbe();
process.stdout.write(`${JSON.stringify({ mqttPort: server.ports.mqtt, httpPort: server.ports.http })}\n`);

const stop = async () => {
  // The WAL file's size is its high-water mark (SQLite writes it from the start again after a full checkpoint, never
  // shrinking it): how far it grew during the run (bench/mqtt/distinct-ts.ts).
  let walBytes = 0;
  try {
    walBytes = statSync(`${config.database}-wal`).size;
  } catch {
    /* no WAL */
  }
  await server.close();
  if (process.env.BENCH_COUNT_ROWS) {
    // The points this run stored (bench/mqtt/distinct-ts.ts), counted after close merged the staged ones.
    const { default: Database } = await import('better-sqlite3');
    const db = new Database(config.database, { readonly: true });
    const count = (table: string) => Number((db.prepare(`select count(*) as n from ${table}`).get() as { n: number }).n);
    // Points stored: ts_kv and staged rows, and the points of ts_kv_chunk rows (16 bytes each; absent in builds
    // before migration 014). Each ts is written once by the bench, so no point is counted twice.
    const hasChunks = db.prepare(`select count(*) as n from sqlite_master where name = 'ts_kv_chunk'`).get() as { n: number };
    const chunkPoints = hasChunks.n ? Number((db.prepare('select coalesce(sum(length(points)) / 16, 0) as n from ts_kv_chunk').get() as { n: number }).n) : 0;
    const chunks = hasChunks.n ? count('ts_kv_chunk') : 0;
    process.stdout.write(`${JSON.stringify({ rows: count('ts_kv') + count('ts_kv_recent') + chunkPoints, chunkPoints, chunks, walBytes })}\n`);
    db.close();
  }
  rmSync(dir, { recursive: true, force: true });
  process.exit(0);
};
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
