/**
 * Import benchmark: N devices (default 100,000) with access tokens, imported by `fleetgate device import` (a child
 * process, as an operator runs it) into a CHECK_PRE_PROVISIONED_DEVICES profile of a server on SQLite; then exported.
 * Usage: node --import tsx bench/import/run.ts [--devices 100000] [--chunk 5000]
 * Prints the timings and the line for bench/RESULTS.md. Loopback only; temp files are removed.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { loadConfig } from '../../src/config.ts';
import { createLogger } from '../../src/log.ts';
import { startServer } from '../../src/server.ts';

const { values } = parseArgs({ options: { devices: { type: 'string', default: '100000' }, chunk: { type: 'string', default: '5000' } } });
const N = Number(values.devices);
const BIN = join(import.meta.dirname, '..', '..', 'bin', 'fleetgate.js');
const PASSWORD = 'bench-import-pw';

function cli(args: string[], env: Record<string, string>): Promise<{ code: number | null; ms: number; stdout: string; stderr: string }> {
  const started = performance.now();
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [BIN, ...args], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, ms: performance.now() - started, stdout, stderr }));
  });
}

const dir = mkdtempSync(join(tmpdir(), 'fleetgate-bench-import-'));
const config = { ...loadConfig({ env: {} }), host: '127.0.0.1', httpPort: 0, mqttPort: 0, database: join(dir, 'fleetgate.db'), adminPassword: PASSWORD, logLevel: 'warn' };
const server = await startServer(config, { logger: createLogger('warn') });
try {
  const env = { FLEETGATE_URL: `http://127.0.0.1:${server.ports.http}`, FLEETGATE_ADMIN_PASSWORD: PASSWORD };
  const profile = await cli(['profile', 'create', 'Factory', '--strategy', 'check-pre-provisioned', '--json'], env);
  if (profile.code !== 0) throw new Error(profile.stderr);
  const lines = ['name,label,accessToken'];
  for (let i = 0; i < N; i++) lines.push(`unit-${String(i).padStart(7, '0')},batch 1,TOKEN${i.toString(36).padStart(8, '0')}`);
  const file = join(dir, 'devices.csv');
  writeFileSync(file, lines.join('\n') + '\n');

  const imported = await cli(['device', 'import', file, '--profile', 'Factory', '--chunk', values.chunk!, '--json'], env);
  if (imported.code !== 0) throw new Error(`import failed (${imported.code}): ${imported.stderr}`);
  const summary = JSON.parse(imported.stdout) as { created: number; skipped: number; rejected: number };
  const again = await cli(['device', 'import', file, '--profile', 'Factory', '--chunk', values.chunk!, '--json'], env);
  const second = JSON.parse(again.stdout) as { created: number; skipped: number };
  const exported = await cli(['device', 'export', '--profile', 'Factory', '-o', join(dir, 'export.csv')], env);

  const s = (ms: number) => (ms / 1000).toFixed(1);
  console.log(`devices: ${N}, chunk: ${values.chunk}, cpus: ${cpus().length}`);
  console.log(`import:    ${s(imported.ms)} s (created ${summary.created}, skipped ${summary.skipped}, rejected ${summary.rejected}) = ${Math.round(N / (imported.ms / 1000))} devices/s`);
  console.log(`re-import: ${s(again.ms)} s (created ${second.created}, skipped ${second.skipped})`);
  console.log(`export:    ${s(exported.ms)} s (exit ${exported.code})`);
  console.log(`target: ${N} devices in under 30 s -> ${imported.ms < 30_000 && summary.created === N ? 'met' : 'NOT met'}`);
} finally {
  await server.close();
  rmSync(dir, { recursive: true, force: true });
}
