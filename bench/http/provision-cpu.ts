/**
 * HTTP provisioning of new devices as the issue measures it: fleetgate started like `npm start` (its node flags, the
 * default configuration: info logging, written here to a file, audit on) on SQLite, wrk with 64 connections, each
 * request a new device name. Reports the rate, the server's CPU per provisioning (user + system from /proc, so it
 * holds on a busy machine) and the latency p50/p99/p99.9. Each round first runs the same wrk load against a bare
 * node:http server answering a fixed provisioning-sized body (bench/http/bare-server.mjs, the floor of issue 17 item 4)
 * and prints the ratio. A 3 s warm-up against fleetgate comes first, unmeasured. BENCH_SERVER_NODE_ARGS adds node flags (e.g. --cpu-prof).
 * Usage: node --import tsx bench/http/provision-cpu.ts [--seconds 10] [--rounds 2] [--connections 64] [--bin bin/fleetgate.js] [--no-bare]
 */
import { spawn, spawnSync } from 'node:child_process';
import { openSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { once } from 'node:events';
import { loadavg, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { NODE_FLAGS } from '../../bin/node-flags.js';
import { freePort, waitForHttp } from '../support/processes.ts';

const root = join(import.meta.dirname, '..', '..');
const { values } = parseArgs({
  options: {
    seconds: { type: 'string', default: '10' },
    rounds: { type: 'string', default: '2' },
    connections: { type: 'string', default: '64' },
    bin: { type: 'string', default: join(root, 'bin', 'fleetgate.js') },
    'no-bare': { type: 'boolean', default: false },
  },
});

const cpuMsOf = (pid: number) => {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
  return ((Number(fields[11]) + Number(fields[12])) * 1000) / 100;
};

/** CPU ms of the main thread and of all other threads (checkpoint worker, libuv pool, GC helpers) of `pid`. */
const threadSplitMs = (pid: number) => {
  let main = 0;
  let others = 0;
  for (const t of readdirSync(`/proc/${pid}/task`)) {
    try {
      const f = readFileSync(`/proc/${pid}/task/${t}/stat`, 'utf8').split(') ')[1].split(' ');
      const ms = ((Number(f[11]) + Number(f[12])) * 1000) / 100;
      if (t === String(pid)) main += ms;
      else others += ms;
    } catch {
      /* the thread ended */
    }
  }
  return { main, others };
};

const dir = mkdtempSync(join(tmpdir(), 'fleetgate-bench-provision-'));
const port = await freePort();
const log = openSync(join(dir, 'server.log'), 'a');
const extra = (process.env.BENCH_SERVER_NODE_ARGS ?? '').split(' ').filter(Boolean);
const child = spawn(process.execPath, [...NODE_FLAGS, ...extra, resolve(values.bin!), 'start'], {
  env: {
    ...process.env,
    FLEETGATE_HOST: '127.0.0.1',
    FLEETGATE_HTTP_PORT: String(port),
    FLEETGATE_MQTT_PORT: String(await freePort()),
    FLEETGATE_COAP_PORT: String(await freePort()),
    FLEETGATE_DATABASE: join(dir, 'bench.db'),
    FLEETGATE_ADMIN_PASSWORD: 'bench-password',
  },
  stdio: ['ignore', log, log],
});
const barePort = await freePort();
const bare = values['no-bare'] ? undefined : spawn(process.execPath, [join(import.meta.dirname, 'bare-server.mjs'), String(barePort)], { stdio: 'ignore' });
const wrk = (target: string, round: number | string, seconds = values.seconds) => {
  const out = spawnSync('wrk', ['-t2', `-c${values.connections}`, `-d${seconds}s`, '-s', join(import.meta.dirname, 'provision-latency.lua'), target], {
    encoding: 'utf8',
    env: { ...process.env, RUN_ID: `r${round}-${Date.now()}` },
  });
  const [p50, p99, p999, max] = (/PERCENTILES (\d+) (\d+) (\d+) (\d+)/.exec(out.stdout) ?? []).slice(1).map((v) => Number(v) / 1000);
  return {
    total: Number(/(\d+) requests in/.exec(out.stdout)?.[1] ?? 0),
    non2xx: Number(/Non-2xx or 3xx responses: (\d+)/.exec(out.stdout)?.[1] ?? 0),
    rate: Number(/Requests\/sec:\s+([\d.]+)/.exec(out.stdout)?.[1] ?? 0),
    p50,
    p99,
    p999,
    max,
  };
};
try {
  if (bare) await waitForHttp(`http://127.0.0.1:${barePort}/`, 30_000);
  const url = `http://127.0.0.1:${port}`;
  await waitForHttp(`${url}/healthz`, 60_000);
  const login = await fetch(`${url}/api/auth/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ username: 'admin@fleetgate.local', password: 'bench-password' }) });
  const { token } = (await login.json()) as { token: string };
  const profile = await fetch(`${url}/api/deviceProfile`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'x-authorization': `Bearer ${token}` },
    body: JSON.stringify({ name: 'bench', provisionType: 'ALLOW_CREATE_NEW_DEVICES', provisionDeviceKey: 'bench-key', profileData: { provisionConfiguration: { type: 'ALLOW_CREATE_NEW_DEVICES', provisionDeviceSecret: 'bench-secret' } } }),
  });
  if (profile.status !== 200) throw new Error(`profile: ${profile.status}`);
  console.log(`# provisioning, wrk -t2 -c${values.connections} -d${values.seconds}s, load average ${loadavg().map((l) => l.toFixed(1)).join(' ')}, ${values.bin}`);
  wrk(url, 'warmup', '3'); // JIT, caches and heap growth of a fresh process: not measured
  for (let round = 1; round <= Number(values.rounds); round++) {
    let bareRate: number | undefined;
    if (bare) {
      const b = wrk(`http://127.0.0.1:${barePort}`, round);
      bareRate = b.rate;
      console.log(`round ${round} bare node:http: ${b.rate.toFixed(0)} req/s, latency p50 ${b.p50?.toFixed(1)} ms, p99 ${b.p99?.toFixed(1)} ms`);
    }
    const before = cpuMsOf(child.pid!);
    const splitBefore = threadSplitMs(child.pid!);
    const r = wrk(url, round);
    const cpu = cpuMsOf(child.pid!) - before;
    const splitAfter = threadSplitMs(child.pid!);
    console.log(
      `round ${round}: ${r.rate.toFixed(0)} provisions/s (${r.total} requests, ${r.non2xx} not 2xx), server CPU ${((cpu * 1000) / Math.max(1, r.total)).toFixed(0)} us per provisioning, ` +
        `latency p50 ${r.p50?.toFixed(1)} ms, p99 ${r.p99?.toFixed(1)} ms, p99.9 ${r.p999?.toFixed(1)} ms, max ${r.max?.toFixed(0)} ms (p99/p50 ${(r.p99 / r.p50).toFixed(1)})` +
        (bareRate ? `, ratio to bare node:http ${(r.rate / bareRate).toFixed(2)}` : '') +
        ` (main thread ${(((splitAfter.main - splitBefore.main) * 1000) / Math.max(1, r.total)).toFixed(0)} us, other threads ${(((splitAfter.others - splitBefore.others) * 1000) / Math.max(1, r.total)).toFixed(0)} us)`,
    );
  }
} finally {
  bare?.kill('SIGTERM');
  child.kill('SIGTERM');
  await once(child, 'exit');
  rmSync(dir, { recursive: true, force: true });
}
