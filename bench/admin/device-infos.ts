/**
 * Device list benchmark: N devices (default 200,000) imported by `fleetgate device import` into a server on SQLite (in
 * this process), then GET /api/tenant/deviceInfos pages timed: the first page, a deep page, sorted by name and by
 * profile name, and a text search. These are the calls the console's device list makes for a large fleet.
 * Usage: node --import tsx bench/admin/device-infos.ts [--devices 200000] [--repeat 5]
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { createWriteStream, mkdtempSync, rmSync } from 'node:fs';
import { once } from 'node:events';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { loadConfig } from '../../src/config.ts';
import { createLogger } from '../../src/log.ts';
import { startServer } from '../../src/server.ts';

const { values } = parseArgs({ options: { devices: { type: 'string', default: '200000' }, repeat: { type: 'string', default: '5' } } });
const N = Number(values.devices);
const REPEAT = Number(values.repeat);
const BIN = join(import.meta.dirname, '..', '..', 'bin', 'fleetgate.js');
const PASSWORD = 'bench-infos-pw';

const dir = mkdtempSync(join(tmpdir(), 'fleetgate-bench-infos-'));
const config = { ...loadConfig({ env: {} }), host: '127.0.0.1', httpPort: 0, mqttPort: 0, coapPort: 0, database: join(dir, 'fleetgate.db'), adminPassword: PASSWORD, logLevel: 'warn' };
const server = await startServer(config, { logger: createLogger('warn') });
try {
  const base = `http://127.0.0.1:${server.ports.http}`;
  const env = { ...process.env, FLEETGATE_URL: base, FLEETGATE_ADMIN_PASSWORD: PASSWORD };
  const cli = (args: string[]) => promisify(execFile)(process.execPath, [BIN, ...args], { env, maxBuffer: 1 << 26 });
  await cli(['profile', 'create', 'Factory', '--strategy', 'check-pre-provisioned', '--json']);
  const file = join(dir, 'devices.csv');
  const out = createWriteStream(file);
  out.write('name,label\n');
  for (let i = 0; i < N; i++) if (!out.write(`unit-${String(i).padStart(7, '0')},batch ${i % 100}\n`)) await once(out, 'drain');
  out.end();
  await once(out, 'finish');
  await cli(['device', 'import', file, '--profile', 'Factory', '--json']);

  const login = await fetch(`${base}/api/auth/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ username: 'admin@fleetgate.local', password: PASSWORD }) });
  const { token } = (await login.json()) as { token: string };
  const cases: [string, string][] = [
    ['first page', 'pageSize=20&page=0'],
    ['deep page', `pageSize=20&page=${Math.floor(N / 40)}`],
    ['by name desc', 'pageSize=20&page=0&sortProperty=name&sortOrder=DESC'],
    ['by profile name', 'pageSize=20&page=0&sortProperty=deviceProfileName&sortOrder=ASC'],
    ['text search', 'pageSize=20&page=0&textSearch=unit-00012'],
    ['active=false', 'pageSize=20&page=0&active=false'],
  ];
  console.log(`devices: ${N}, cpus: ${cpus().length}, load average: ${loadavg().map((l) => l.toFixed(1)).join(' ')}, ${new Date().toISOString()}`);
  for (const [name, query] of cases) {
    const ms: number[] = [];
    let total = 0;
    for (let i = 0; i < REPEAT; i++) {
      const t = performance.now();
      const res = await fetch(`${base}/api/tenant/deviceInfos?${query}`, { headers: { 'x-authorization': `Bearer ${token}` } });
      const body = (await res.json()) as { totalElements: number; data: unknown[] };
      ms.push(performance.now() - t);
      if (res.status !== 200) throw new Error(`${name}: ${res.status} ${JSON.stringify(body)}`);
      total = body.totalElements;
    }
    ms.sort((a, b) => a - b);
    console.log(`${name.padEnd(16)} median ${ms[Math.floor(ms.length / 2)].toFixed(1)} ms, max ${ms[ms.length - 1].toFixed(1)} ms, totalElements ${total}`);
  }
} finally {
  await server.close();
  if (process.env.KEEP_DB) console.log('kept', dir); else rmSync(dir, { recursive: true, force: true });
}
