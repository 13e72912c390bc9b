/**
 * Bench child: the MQTT bench server (100 token devices, bench/mqtt/fleetgate-server.ts's setup) plus, when
 * BENCH_EXPORT_URL is set, one export rule sending all telemetry to that webhook. Prints `{"mqttPort","httpPort"}`.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadConfig } from '../../src/config.ts';
import { createLogger } from '../../src/log.ts';
import { DEFAULT_TENANT_ID } from '../../src/core/model.ts';
import { startServer } from '../../src/server.ts';

const devices = Number(process.env.BENCH_DEVICES ?? 100);
const dir = mkdtempSync(join(tmpdir(), 'fleetgate-export-bench-'));
const config = {
  ...loadConfig({ env: process.env }),
  host: '127.0.0.1',
  httpPort: 0,
  mqttPort: 0,
  coapPort: 0,
  database: process.env.BENCH_DATABASE ?? join(dir, 'bench.db'),
  adminUsername: 'bench@local',
  adminPassword: 'bench-password',
  logLevel: 'warn',
};
const server = await startServer(config, { logger: createLogger('warn', process.stderr), announce: () => {} });
const actor = { userId: null, userName: 'bench', source: { transport: 'cli' as const } };
for (let i = 0; i < devices; i += 500) {
  const batch = [];
  for (let j = i; j < Math.min(devices, i + 500); j++) batch.push(server.core.devices.save(DEFAULT_TENANT_ID, { name: `bench-device-${j}` }, actor, `bench-${j}`));
  await Promise.all(batch);
}
if (process.env.BENCH_EXPORT_URL) {
  await server.core.exports.rules.save(DEFAULT_TENANT_ID, { name: 'bench', kinds: ['telemetry'], destination: { type: 'webhook', url: process.env.BENCH_EXPORT_URL, batchSize: 1000 } });
}
process.stdout.write(`${JSON.stringify({ mqttPort: server.ports.mqtt, httpPort: server.ports.http })}\n`);

const stop = async () => {
  await server.close();
  rmSync(dir, { recursive: true, force: true });
  process.exit(0);
};
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
