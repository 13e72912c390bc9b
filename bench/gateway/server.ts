/**
 * Bench child process for bench/gateway/run.ts: a fleetgate server on 127.0.0.1 with a temp SQLite database (kept after
 * SIGTERM so the runner can count the stored rows), `BENCH_DEVICES` direct devices with tokens `direct-0..n-1`, and
 * one gateway with token `bench-gateway`. Prints one JSON line `{"mqttPort","database","dir"}` when ready.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadConfig } from '../../src/config.ts';
import { DEFAULT_TENANT_ID } from '../../src/core/model.ts';
import { createLogger } from '../../src/log.ts';
import { startServer } from '../../src/server.ts';

const devices = Number(process.env.BENCH_DEVICES ?? 1000);
const dir = mkdtempSync(join(tmpdir(), 'fleetgate-gw-bench-'));
const database = join(dir, 'bench.db');
const config = {
  ...loadConfig({ env: process.env }),
  host: '127.0.0.1',
  httpPort: 0,
  mqttPort: 0,
  coapPort: 0,
  database,
  adminUsername: 'bench@local',
  adminPassword: 'bench-password',
  logLevel: 'warn',
};
const server = await startServer(config, { logger: createLogger('warn', process.stderr), announce: () => {} });
const actor = { userId: null, userName: 'bench', source: { transport: 'cli' as const } };
await server.core.devices.save(DEFAULT_TENANT_ID, { name: 'bench-gateway', additionalInfo: { gateway: true } }, actor, 'bench-gateway');
for (let i = 0; i < devices; i += 500) {
  const batch = [];
  for (let j = i; j < Math.min(devices, i + 500); j++) batch.push(server.core.devices.save(DEFAULT_TENANT_ID, { name: `direct-${j}` }, actor, `direct-${j}`));
  await Promise.all(batch);
}
process.stdout.write(`${JSON.stringify({ mqttPort: server.ports.mqtt, database, dir })}\n`);

const stop = async () => {
  await server.close();
  process.exit(0);
};
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
