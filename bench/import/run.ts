/**
 * Import benchmark: N devices (default 100,000) with access tokens, imported by `fleetgate device import` (a child
 * process, as an operator runs it) into a CHECK_PRE_PROVISIONED_DEVICES profile of a server on SQLite (in this
 * process); then, unless --import-only, imported again (all duplicates) and exported.
 * Usage: node --import tsx bench/import/run.ts [--devices 100000] [--chunk 5000] [--import-only]
 * Prints wall time, the CPU time of the server and of the CLI, and their peak RSS (the CLI's from /usr/bin/time, the
 * server's sampled every 100 ms). Loopback only; temp files are removed.
 */
import { spawn } from 'node:child_process';
import { createWriteStream, mkdtempSync, rmSync } from 'node:fs';
import { once } from 'node:events';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { loadConfig } from '../../src/config.ts';
import { createLogger } from '../../src/log.ts';
import { startServer } from '../../src/server.ts';

const { values } = parseArgs({
  options: { devices: { type: 'string', default: '100000' }, chunk: { type: 'string', default: '5000' }, 'import-only': { type: 'boolean', default: false } },
});
const N = Number(values.devices);
const BIN = join(import.meta.dirname, '..', '..', 'bin', 'fleetgate.js');
const PASSWORD = 'bench-import-pw';

interface CliRun {
  code: number | null;
  ms: number;
  stdout: string;
  stderr: string;
  /** The CLI's user + system CPU (ms) and peak RSS (KB), from /usr/bin/time. */
  cpuMs: number;
  maxRssKb: number;
}

function cli(args: string[], env: Record<string, string>): Promise<CliRun> {
  const started = performance.now();
  return new Promise((resolve, reject) => {
    const child = spawn('/usr/bin/time', ['-f', 'TIME %U %S %M', process.execPath, BIN, ...args], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    child.on('error', reject);
    child.on('close', (code) => {
      const t = /TIME ([\d.]+) ([\d.]+) (\d+)/.exec(stderr);
      resolve({ code, ms: performance.now() - started, stdout, stderr, cpuMs: t ? (Number(t[1]) + Number(t[2])) * 1000 : NaN, maxRssKb: t ? Number(t[3]) : NaN });
    });
  });
}

/** Runs `work` while sampling this process's RSS; returns its result, the CPU this process used and the peak RSS. */
async function measured<T>(work: () => Promise<T>): Promise<{ result: T; cpuMs: number; peakRssMb: number; startRssMb: number }> {
  const startRssMb = process.memoryUsage().rss / 2 ** 20;
  let peak = startRssMb;
  const sampler = setInterval(() => (peak = Math.max(peak, process.memoryUsage().rss / 2 ** 20)), 100);
  const cpu = process.cpuUsage();
  try {
    const result = await work();
    const used = process.cpuUsage(cpu);
    return { result, cpuMs: (used.user + used.system) / 1000, peakRssMb: peak, startRssMb };
  } finally {
    clearInterval(sampler);
  }
}

const dir = mkdtempSync(join(tmpdir(), 'fleetgate-bench-import-'));
const config = { ...loadConfig({ env: {} }), host: '127.0.0.1', httpPort: 0, mqttPort: 0, database: join(dir, 'fleetgate.db'), adminPassword: PASSWORD, logLevel: 'warn' };
const server = await startServer(config, { logger: createLogger('warn') });
try {
  const env = { FLEETGATE_URL: `http://127.0.0.1:${server.ports.http}`, FLEETGATE_ADMIN_PASSWORD: PASSWORD };
  const profile = await cli(['profile', 'create', 'Factory', '--strategy', 'check-pre-provisioned', '--json'], env);
  if (profile.code !== 0) throw new Error(profile.stderr);
  const file = join(dir, 'devices.csv');
  const out = createWriteStream(file);
  out.write('name,label,accessToken\n');
  for (let i = 0; i < N; i++) {
    if (!out.write(`unit-${String(i).padStart(7, '0')},batch 1,TOKEN${i.toString(36).padStart(8, '0')}\n`)) await once(out, 'drain');
  }
  out.end();
  await once(out, 'finish');

  const s = (ms: number) => (ms / 1000).toFixed(1);
  const run = await measured(() => cli(['device', 'import', file, '--profile', 'Factory', '--chunk', values.chunk!, '--json'], env));
  const imported = run.result;
  if (imported.code !== 0) throw new Error(`import failed (${imported.code}): ${imported.stderr}`);
  const summary = JSON.parse(imported.stdout) as { created: number; skipped: number; rejected: number };
  console.log(`devices: ${N}, chunk: ${values.chunk}, cpus: ${cpus().length}, load average before: ${loadavg().map((l) => l.toFixed(1)).join(' ')}`);
  console.log(`import:    ${s(imported.ms)} s (created ${summary.created}, skipped ${summary.skipped}, rejected ${summary.rejected}) = ${Math.round(N / (imported.ms / 1000))} devices/s`);
  console.log(`           server CPU ${s(run.cpuMs)} s (${((run.cpuMs * 1000) / N).toFixed(1)} us a device), RSS ${run.startRssMb.toFixed(0)} -> peak ${run.peakRssMb.toFixed(0)} MB`);
  console.log(`           CLI CPU ${s(imported.cpuMs)} s, peak RSS ${(imported.maxRssKb / 1024).toFixed(0)} MB`);
  if (!values['import-only']) {
    const again = await cli(['device', 'import', file, '--profile', 'Factory', '--chunk', values.chunk!, '--json'], env);
    const second = JSON.parse(again.stdout) as { created: number; skipped: number };
    const exported = await cli(['device', 'export', '--profile', 'Factory', '-o', join(dir, 'export.csv')], env);
    console.log(`re-import: ${s(again.ms)} s (created ${second.created}, skipped ${second.skipped})`);
    console.log(`export:    ${s(exported.ms)} s (exit ${exported.code})`);
  }
  console.log(`target: ${N} devices in under 60 s -> ${imported.ms < 60_000 && summary.created === N ? 'met' : 'NOT met'}`);
} finally {
  await server.close();
  rmSync(dir, { recursive: true, force: true });
}
