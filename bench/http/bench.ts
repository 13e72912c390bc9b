/**
 * HTTP benchmark (issue: Foundation, Speed): provisioning of new devices and telemetry, fleetgate on SQLite against
 * a bare node:http server returning a fixed JSON body, alternating rounds in one run. Usage:
 *   node --import tsx bench/http/bench.ts [--seconds 10] [--rounds 2] [--postgres]
 * With --postgres, fleetgate runs on a PostgreSQL 15 the bench starts (durable commits, stock settings).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir, cpus } from 'node:os';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { NODE_FLAGS } from '../../bin/node-flags.js';
import { startPostgres } from '../../test/support/postgres.ts';
import { freePort, runWrk, startProcess, stopProcess, waitForHttp, type WrkResult } from '../support/processes.ts';

const here = dirname(fileURLToPath(import.meta.url));
const root = join(here, '..', '..');
const { values } = parseArgs({ options: { seconds: { type: 'string', default: '10' }, rounds: { type: 'string', default: '2' }, connections: { type: 'string', default: '64' }, postgres: { type: 'boolean', default: false } } });
const postgres = values.postgres ? await startPostgres({ durable: true }) : undefined;
const seconds = Number(values.seconds);
const rounds = Number(values.rounds);
const connections = Number(values.connections);

/** fetch with one retry: a kept-alive socket the server closed while idle fails once with "other side closed". */
async function fetchRetry(url: string, init?: RequestInit): Promise<Response> {
  try {
    return await fetch(url, init);
  } catch {
    return fetch(url, init);
  }
}

async function startFleetgate() {
  const dir = mkdtempSync(join(tmpdir(), 'fleetgate-bench-'));
  const port = await freePort();
  const child = startProcess(process.execPath, [...NODE_FLAGS, join(root, 'bin/fleetgate.js'), 'start'], {
    FLEETGATE_HOST: '127.0.0.1',
    FLEETGATE_HTTP_PORT: String(port),
    FLEETGATE_MQTT_PORT: String(await freePort()),
    FLEETGATE_COAP_PORT: String(await freePort()),
    FLEETGATE_DATABASE: postgres ? await postgres.createDatabase() : join(dir, 'bench.db'),
    FLEETGATE_ADMIN_PASSWORD: 'bench-password',
    FLEETGATE_LOG_LEVEL: 'warn',
  });
  const url = `http://127.0.0.1:${port}`;
  await waitForHttp(`${url}/healthz`);
  const login = await fetch(`${url}/api/auth/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ username: 'admin@fleetgate.local', password: 'bench-password' }) });
  const { token } = (await login.json()) as { token: string };
  const headers = { 'content-type': 'application/json', 'x-authorization': `Bearer ${token}` };
  const profile = await fetch(`${url}/api/deviceProfile`, {
    method: 'POST',
    headers,
    body: JSON.stringify({ name: 'bench', provisionType: 'ALLOW_CREATE_NEW_DEVICES', provisionDeviceKey: 'bench-key', profileData: { provisionConfiguration: { type: 'ALLOW_CREATE_NEW_DEVICES', provisionDeviceSecret: 'bench-secret' } } }),
  });
  if (profile.status !== 200) throw new Error(`profile: ${profile.status} ${await profile.text()}`);
  const tokens: string[] = [];
  for (let i = 0; i < 100; i++) {
    const res = await fetch(`${url}/api/device?accessToken=bench-token-${i}`, { method: 'POST', headers, body: JSON.stringify({ name: `telemetry-${i}` }) });
    if (res.status !== 200) throw new Error(`device: ${res.status}`);
    tokens.push(`bench-token-${i}`);
  }
  const countDevices = async () => ((await (await fetchRetry(`${url}/api/tenant/devices?pageSize=1&page=0`, { headers })).json()) as { totalElements: number }).totalElements;
  return { child, url, tokens, countDevices, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

async function startBare() {
  const port = await freePort();
  const child = startProcess(process.execPath, [join(here, 'bare-server.mjs'), String(port)]);
  const url = `http://127.0.0.1:${port}`;
  await waitForHttp(url);
  return { child, url };
}

function line(name: string, r: WrkResult) {
  return `${name.padEnd(34)} ${r.requestsPerSec.toFixed(0).padStart(8)} req/s  avg latency ${r.latencyAvg.padStart(8)}  non-2xx ${r.non2xx}${r.socketErrors ? `  socket errors: ${r.socketErrors}` : ''}`;
}

const fleet = await startFleetgate();
const bare = await startBare();
const results: Record<string, WrkResult[]> = { bareProvision: [], fleetProvision: [], bareTelemetry: [], fleetTelemetry: [], fleetTelemetry1Key: [] };
try {
  const devicesBefore = await fleet.countDevices();
  let provisionRequests = 0;
  for (let round = 0; round < rounds; round++) {
    process.env.RUN_ID = `r${round}b`;
    results.bareProvision.push(runWrk(bare.url, { connections, threads: 2, seconds, script: join(here, 'provision.lua') }));
    process.env.RUN_ID = `r${round}f`;
    const p = runWrk(fleet.url, { connections, threads: 2, seconds, script: join(here, 'provision.lua') });
    provisionRequests += p.requests;
    results.fleetProvision.push(p);
    process.env.TOKENS = fleet.tokens.join(',');
    results.bareTelemetry.push(runWrk(bare.url, { connections, threads: 2, seconds, script: join(here, 'telemetry.lua') }));
    results.fleetTelemetry.push(runWrk(fleet.url, { connections, threads: 2, seconds, script: join(here, 'telemetry.lua') }));
    process.env.KEYS = '1';
    results.fleetTelemetry1Key.push(runWrk(fleet.url, { connections, threads: 2, seconds, script: join(here, 'telemetry.lua') }));
    delete process.env.KEYS;
  }
  const created = (await fleet.countDevices()) - devicesBefore;
  const best = (rs: WrkResult[]) => rs.reduce((a, b) => (b.requestsPerSec > a.requestsPerSec ? b : a));
  console.log(`# HTTP benchmark ${new Date().toISOString()} — fleetgate on ${postgres ? 'PostgreSQL 15' : 'SQLite'}, ${cpus().length} cores (${cpus()[0]?.model}), node ${process.version}, wrk -t2 -c${connections} -d${seconds}s, ${rounds} rounds alternating`);
  for (const [name, rs] of Object.entries(results)) rs.forEach((r, i) => console.log(line(`${name} round ${i + 1}`, r)));
  const bp = best(results.bareProvision).requestsPerSec;
  const fp = best(results.fleetProvision).requestsPerSec;
  const bt = best(results.bareTelemetry).requestsPerSec;
  const ft = best(results.fleetTelemetry).requestsPerSec;
  console.log(`provisioning: fleetgate ${fp.toFixed(0)}/s vs bare ${bp.toFixed(0)}/s (ratio ${(fp / bp).toFixed(2)}); devices created ${created} of ${provisionRequests} requests`);
  console.log(`telemetry, three values per request: fleetgate ${ft.toFixed(0)}/s vs bare ${bt.toFixed(0)}/s (ratio ${(ft / bt).toFixed(2)})`);
  const ft1 = best(results.fleetTelemetry1Key).requestsPerSec;
  console.log(`telemetry, one value per request ({"temperature":N}): fleetgate ${ft1.toFixed(0)}/s (ratio to bare ${(ft1 / bt).toFixed(2)})`);
} finally {
  await stopProcess(fleet.child);
  await stopProcess(bare.child);
  fleet.cleanup();
  await postgres?.stop();
}
