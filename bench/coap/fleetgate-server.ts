/**
 * The fleetgate side of the CoAP benchmark, in its own process so the load generator does not share its event
 * loop: core on a fresh SQLite file + the CoAP transport on a random port, a provisioning profile and 100 devices.
 * Prints `{"coapPort":N,"receiveBufferBytes":N}` once ready, the group commit's totals and CPU time on SIGUSR2; stops on SIGTERM.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MemoryBus } from '../../src/bus/memory-bus.ts';
import { loadConfig } from '../../src/config.ts';
import { createCore } from '../../src/core/core.ts';
import { DEFAULT_TENANT_ID } from '../../src/core/model.ts';
import { openSqliteStore } from '../../src/store/sqlite.ts';
import { startCoapTransport } from '../../src/transports/coap/index.ts';

const quiet = { info() {}, warn() {}, error() {}, debug() {} };
const actor = { userId: null, userName: 'bench', source: { transport: 'cli' as const } };

// FLEETGATE_* variables apply (e.g. FLEETGATE_COAP_RECEIVE_BUFFER_BYTES=0 for the system default receive buffer).
const config = loadConfig({ env: process.env });
const dir = mkdtempSync(join(tmpdir(), 'fleetgate-bench-coap-'));
const store = await openSqliteStore(join(dir, 'bench.db'), { synchronous: config.sqliteSynchronous });
const settings = { batchMaxRows: config.batchMaxRows, batchMaxDelayMs: config.batchMaxDelayMs, batchIntervalMs: config.batchIntervalMs, rpcDefaultTimeout: 10000, provisionRetryAfterMs: 3000 };
const core = await createCore({ store, bus: new MemoryBus(), logger: quiet, settings });
const transport = await startCoapTransport({ core, config, logger: quiet, host: '127.0.0.1', port: 0 });
await core.profiles.save(
  DEFAULT_TENANT_ID,
  { name: 'bench', provisionType: 'ALLOW_CREATE_NEW_DEVICES', provisionDeviceKey: 'bench-key', profileData: { provisionConfiguration: { type: 'ALLOW_CREATE_NEW_DEVICES', provisionDeviceSecret: 'bench-secret' } } },
  actor,
);
for (let d = 0; d < 100; d++) await core.devices.save(DEFAULT_TENANT_ID, { name: `bench-dev-${d}` }, actor, `bench-token-${d}`);

// SIGUSR2: one line with the group commit's totals and the CPU time used so far (the generator prints them per phase).
process.on('SIGUSR2', () => {
  const cpu = process.cpuUsage();
  process.stdout.write(`${JSON.stringify({ batches: core.committer.stats.batches, rows: core.committer.stats.rows, cpuMicros: cpu.user + cpu.system })}\n`);
});

process.on('SIGTERM', async () => {
  await transport.close();
  await core.close();
  await store.close();
  rmSync(dir, { recursive: true, force: true });
  process.exit(0);
});
process.stdout.write(`${JSON.stringify({ coapPort: transport.port, receiveBufferBytes: transport.receiveBufferBytes })}\n`);
