/**
 * Console budgets (issue 12 §7):
 * 1. first load: the compressed size (gzip and brotli, as the server sends them) of the JS and CSS that `/` loads;
 * 2. the device table: GET /api/tenant/deviceInfos pages through N devices (default 100,000, imported over the admin
 *    API into a server on SQLite, or PostgreSQL with --postgres URL): first, middle and last page, sorted by name both
 *    ways, searched, filtered by profile and by connection; each request timed from the client (loopback), 5 rounds.
 * Usage: node --import tsx bench/console/bench.ts [--devices 100000] [--postgres postgres://...]
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { loadConfig } from '../../src/config.ts';
import { CONSOLE_DIR } from '../../src/admin/console-static.ts';
import { createLogger } from '../../src/log.ts';
import { startServer } from '../../src/server.ts';

const { values } = parseArgs({ options: { devices: { type: 'string', default: '100000' }, postgres: { type: 'string' }, keep: { type: 'string' } } });
const N = Number(values.devices);
const ROOT = join(import.meta.dirname, '..', '..');

/** Sizes of the assets index.html loads (script and stylesheet links), raw, gzip and brotli. */
export function firstLoad(dir: string): { files: string[]; raw: number; gzip: number; brotli: number } {
  const html = readFileSync(join(dir, 'index.html'), 'utf8');
  const files = [...html.matchAll(/(?:src|href)="\/(assets\/[^"]+\.(?:js|css))"/g)].map((m) => m[1]);
  const size = (path: string) => statSync(join(dir, path)).size;
  return {
    files,
    raw: files.reduce((n, f) => n + size(f), 0),
    gzip: files.reduce((n, f) => n + size(`${f}.gz`), 0),
    brotli: files.reduce((n, f) => n + size(`${f}.br`), 0),
  };
}

execFileSync(process.execPath, [join(ROOT, 'scripts', 'build-ui.mjs'), '--if-missing'], { stdio: 'inherit' });
const load = firstLoad(CONSOLE_DIR);
console.log(`# console bench ${new Date().toISOString()} — ${cpus().length} cores (${cpus()[0]?.model.trim()}), node ${process.version}`);
console.log(`first load: ${load.files.join(' + ')}: raw ${(load.raw / 1024).toFixed(1)} KB, gzip ${(load.gzip / 1024).toFixed(1)} KB, brotli ${(load.brotli / 1024).toFixed(1)} KB (budget 250 KB)`);

// --keep DIR: use (and keep) the SQLite database in DIR, to look at the queries afterwards.
const dir = values.keep ?? mkdtempSync(join(tmpdir(), 'fleetgate-bench-console-'));
const config = { ...loadConfig({ env: {} }), host: '127.0.0.1', httpPort: 0, mqttPort: 0, coapPort: 0, database: values.postgres ?? join(dir, 'fleetgate.db'), adminPassword: 'bench-console-pw', logLevel: 'warn' };
const server = await startServer(config, { logger: createLogger('warn') });
const base = `http://127.0.0.1:${server.ports.http}`;
try {
  const login = await fetch(`${base}/api/auth/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ username: config.adminUsername, password: 'bench-console-pw' }) });
  const token = ((await login.json()) as { token: string }).token;
  const call = async (path: string, body?: unknown) => {
    const res = await fetch(`${base}${path}`, {
      method: body === undefined ? 'GET' : 'POST',
      headers: { 'x-authorization': `Bearer ${token}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    if (!res.ok) throw new Error(`${path}: ${res.status} ${await res.text()}`);
    return res.json() as Promise<any>;
  };
  const existing = await call('/api/deviceProfiles?pageSize=10&page=0&textSearch=Factory');
  const profile = existing.data.find((p: { name: string }) => p.name === 'Factory') ?? await call('/api/deviceProfile', { name: 'Factory', provisionType: 'CHECK_PRE_PROVISIONED_DEVICES', provisionDeviceKey: 'bench-key', profileData: { provisionConfiguration: { type: 'CHECK_PRE_PROVISIONED_DEVICES', provisionDeviceSecret: 'bench-secret' } } });
  const started = performance.now();
  const already = (await call('/api/tenant/devices?pageSize=1&page=0')).totalElements as number;
  for (let from = already; from < N; from += 10_000) {
    const rows = [];
    for (let i = from; i < Math.min(N, from + 10_000); i++) rows.push({ name: `unit-${String(i).padStart(7, '0')}`, label: `batch ${i % 10}`, accessToken: `TOKEN${i.toString(36).padStart(8, '0')}` });
    await call(`/api/devices/import?deviceProfileId=${profile.id.id}`, { rows });
  }
  console.log(`imported ${N} devices in ${((performance.now() - started) / 1000).toFixed(1)} s`);
  const pages = Math.ceil(N / 20);
  const cases: [string, string][] = [
    ['first page, newest first', 'sortProperty=createdTime&sortOrder=DESC&page=0'],
    ['middle page, newest first', `sortProperty=createdTime&sortOrder=DESC&page=${Math.floor(pages / 2)}`],
    ['last page, newest first', `sortProperty=createdTime&sortOrder=DESC&page=${pages - 1}`],
    ['first page by name', 'sortProperty=name&sortOrder=ASC&page=0'],
    ['last page by name descending', `sortProperty=name&sortOrder=DESC&page=${pages - 1}`],
    ['search "unit-00999"', 'textSearch=unit-00999&page=0'],
    ['profile filter, middle page', `deviceProfileId=${profile.id.id}&page=${Math.floor(pages / 2)}`],
    ['disconnected filter, middle page', `active=false&page=${Math.floor(pages / 2)}`],
    ['sorted by profile, middle page', `sortProperty=deviceProfileName&sortOrder=ASC&page=${Math.floor(pages / 2)}`],
  ];
  const worst: Record<string, number> = {};
  for (const route of ['/api/tenant/deviceInfos', '/api/fleetgate/devices'])
  for (const [name, q] of cases) {
    const times: number[] = [];
    let total = 0;
    for (let round = 0; round < 5; round++) {
      const t = performance.now();
      const page = await call(`${route}?pageSize=20&${q}`);
      times.push(performance.now() - t);
      total = page.totalElements;
    }
    times.sort((a, b) => a - b);
    worst[route] = Math.max(worst[route] ?? 0, times[times.length - 1]);
    console.log(`${route.padEnd(26)} ${name.padEnd(34)} median ${times[2].toFixed(1).padStart(6)} ms  max ${times[4].toFixed(1).padStart(6)} ms  (totalElements ${total})`);
  }
  for (const [route, ms] of Object.entries(worst)) console.log(`${route}: slowest page request ${ms.toFixed(1)} ms (budget 200 ms)`);
} finally {
  await server.close();
  if (!values.keep) rmSync(dir, { recursive: true, force: true });
}
