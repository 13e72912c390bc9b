/**
 * HTTP telemetry as issue 17 measures it: fleetgate started like `npm start` (its node flags, the default
 * configuration: info logging, written here to a file, audit on) on SQLite, against a bare node:http server in the
 * same run, rounds alternating. wrk with 64 connections posts three values per request over 100 devices
 * (telemetry.lua). Reports per round the rate, the ratio to the bare server's best round, the latency
 * p50/p99/p99.9/max, and the server's CPU per request (user + system from /proc, so it holds on a busy machine), in
 * all and on its main thread (the event loop, which bounds the rate).
 * The main thread's idle share of the wall time (neither running nor waiting in the run queue: schedstat) shows pacing that leaves the event loop waiting.
 * `--bin` may be given twice (e.g. a checkout of the code before a change): each round then runs every server. A
 * `--bin` value may name environment variables for that server after its path: `--bin 'bin/fleetgate.js
 * FLEETGATE_SQLITE_THREAD_MIN_PARAMETERS=0'` (the same build with another setting).
 * BENCH_SERVER_NODE_ARGS adds node flags to the fleetgate servers (e.g. --cpu-prof).
 * Usage: node --import tsx bench/http/telemetry-cpu.ts [--seconds 10] [--rounds 3] [--connections 64] [--bin bin/fleetgate.js]...
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { openSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { once } from 'node:events';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { NODE_FLAGS } from '../../bin/node-flags.js';
import { freePort, waitForHttp } from '../support/processes.ts';

const root = join(import.meta.dirname, '..', '..');
const { values } = parseArgs({
  options: {
    seconds: { type: 'string', default: '10' },
    rounds: { type: 'string', default: '3' },
    connections: { type: 'string', default: '64' },
    bin: { type: 'string', multiple: true },
  },
});
/** Each server to run: its bin and the environment variables given after the path. */
const bins = (values.bin ?? [join(root, 'bin', 'fleetgate.js')]).map((spec) => {
  const [path, ...vars] = spec.trim().split(/\s+/);
  return { path: resolve(path!), env: Object.fromEntries(vars.map((v) => [v.slice(0, v.indexOf('=')), v.slice(v.indexOf('=') + 1)])), label: vars.join(' ') };
});
const DEVICES = 100;

/** CPU ms (user + system) of process `pid`, all threads; with `mainThread`, of its main thread (the event loop) only. */
const cpuMsOf = (pid: number, mainThread = false) => {
  const fields = readFileSync(mainThread ? `/proc/${pid}/task/${pid}/stat` : `/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
  return ((Number(fields[11]) + Number(fields[12])) * 1000) / 100;
};

/**
 * The main thread's time waiting to run (in the run queue: the machine is busy) and its CPU time, in ms, from
 * /proc/<pid>/task/<pid>/schedstat: the rest of the wall time the thread was idle (its event loop had nothing to do).
 */
const schedOf = (pid: number) => {
  const [cpuNs, waitNs] = readFileSync(`/proc/${pid}/task/${pid}/schedstat`, 'utf8').split(' ').map(Number);
  return { cpu: cpuNs! / 1e6, wait: waitNs! / 1e6, at: performance.now() };
};

interface Server {
  name: string;
  child: ChildProcess;
  url: string;
}

const dir = mkdtempSync(join(tmpdir(), 'fleetgate-bench-telemetry-'));

async function startFleetgate({ path: bin, env, label }: (typeof bins)[number], n: number): Promise<Server> {
  const port = await freePort();
  const log = openSync(join(dir, `server-${n}.log`), 'a');
  const extra = (process.env.BENCH_SERVER_NODE_ARGS ?? '').split(' ').filter(Boolean);
  const child = spawn(process.execPath, [...NODE_FLAGS, ...extra, bin, 'start'], {
    env: {
      ...process.env,
      FLEETGATE_HOST: '127.0.0.1',
      FLEETGATE_HTTP_PORT: String(port),
      FLEETGATE_MQTT_PORT: String(await freePort()),
      FLEETGATE_COAP_PORT: String(await freePort()),
      FLEETGATE_DATABASE: join(dir, `bench-${n}.db`),
      FLEETGATE_ADMIN_PASSWORD: 'bench-password',
      ...env,
    },
    stdio: ['ignore', log, log],
  });
  const url = `http://127.0.0.1:${port}`;
  await waitForHttp(`${url}/healthz`, 60_000);
  const login = await fetch(`${url}/api/auth/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ username: 'admin@fleetgate.local', password: 'bench-password' }) });
  const { token } = (await login.json()) as { token: string };
  const headers = { 'content-type': 'application/json', 'x-authorization': `Bearer ${token}` };
  for (let i = 0; i < DEVICES; i++) {
    const res = await fetch(`${url}/api/device?accessToken=bench-token-${i}`, { method: 'POST', headers, body: JSON.stringify({ name: `telemetry-${i}` }) });
    if (res.status !== 200) throw new Error(`device: ${res.status}`);
  }
  return { name: bins.length > 1 ? `fleetgate#${n} ${bin.replace(/\/bin\/fleetgate\.js$/, '')}${label ? ` ${label}` : ''}` : 'fleetgate', child, url };
}

async function startBare(): Promise<Server> {
  const port = await freePort();
  const child = spawn(process.execPath, [join(import.meta.dirname, 'bare-server.mjs'), String(port)], { stdio: 'ignore' });
  const url = `http://127.0.0.1:${port}`;
  await waitForHttp(url);
  return { name: 'bare node:http', child, url };
}

interface Round {
  rate: number;
  line: string;
}

/** Commit duration buckets reported per round (upper bounds in seconds, fleetgate_batch_commit_seconds). */
const SLOW_BUCKETS = ['0.01', '0.025', '0.05', '0.1', '+Inf'];

/** Group commits so far, and cumulative counts at SLOW_BUCKETS (fleetgate's /metrics); undefined for the bare server. */
async function commitsOf(server: Server): Promise<number[] | undefined> {
  if (server.name.startsWith('bare')) return undefined;
  const text = await (await fetch(`${server.url}/metrics`)).text();
  return SLOW_BUCKETS.map((le) => Number(new RegExp(`^fleetgate_batch_commit_seconds_bucket\\{le="${le.replace(/[.+]/g, '\\$&')}"\\} (\\d+)`, 'm').exec(text)?.[1] ?? NaN));
}

/** "N commits (R requests each; 10-25 ms: a, 25-50 ms: b, ...)" from two commitsOf readings. */
function commitSummary(before: number[], after: number[], requests: number): string {
  const d = after.map((v, i) => v - before[i]!);
  const all = d.at(-1)!;
  const slow = SLOW_BUCKETS.slice(1).map((le, i) => `${le === '+Inf' ? `over ${Number(SLOW_BUCKETS[i]) * 1000}` : `${Number(SLOW_BUCKETS[i]) * 1000}-${Number(le) * 1000}`} ms: ${d[i + 1]! - d[i]!}`);
  return `${all} commits (${(requests / Math.max(1, all)).toFixed(1)} requests each; ${slow.join(', ')})`;
}

async function round(server: Server): Promise<Round> {
  const commitsBefore = await commitsOf(server);
  const before = cpuMsOf(server.child.pid!);
  const mainBefore = cpuMsOf(server.child.pid!, true);
  const schedBefore = schedOf(server.child.pid!);
  const out = spawnSync('wrk', ['-t2', `-c${values.connections}`, `-d${values.seconds}s`, '-s', join(import.meta.dirname, 'telemetry.lua'), server.url], {
    encoding: 'utf8',
    env: { ...process.env, TOKENS: Array.from({ length: DEVICES }, (_, i) => `bench-token-${i}`).join(',') },
  });
  const cpu = cpuMsOf(server.child.pid!) - before;
  const mainCpu = cpuMsOf(server.child.pid!, true) - mainBefore;
  const schedAfter = schedOf(server.child.pid!);
  const wall = schedAfter.at - schedBefore.at;
  const waiting = (schedAfter.wait - schedBefore.wait) / wall;
  const idle = 1 - waiting - (schedAfter.cpu - schedBefore.cpu) / wall;
  const commitsAfter = await commitsOf(server);
  const total = Number(/(\d+) requests in/.exec(out.stdout)?.[1] ?? 0);
  const non2xx = Number(/Non-2xx or 3xx responses: (\d+)/.exec(out.stdout)?.[1] ?? 0);
  const errors = /Socket errors: (.*)/.exec(out.stdout)?.[1];
  const rate = Number(/Requests\/sec:\s+([\d.]+)/.exec(out.stdout)?.[1] ?? 0);
  const [p50, p99, p999, max] = (/PERCENTILES (\d+) (\d+) (\d+) (\d+)/.exec(out.stdout) ?? []).slice(1).map((v) => Number(v) / 1000);
  const line =
    `${rate.toFixed(0).padStart(6)} req/s (${total} requests, ${non2xx} not 2xx${errors ? `, socket errors ${errors}` : ''}), server CPU ${((cpu * 1000) / Math.max(1, total)).toFixed(1)} us/request (main thread ${((mainCpu * 1000) / Math.max(1, total)).toFixed(1)}; idle ${(idle * 100).toFixed(0)}%, run queue ${(waiting * 100).toFixed(0)}%), ` +
    `latency p50 ${p50?.toFixed(2)} ms, p99 ${p99?.toFixed(2)} ms, p99.9 ${p999?.toFixed(2)} ms, max ${max?.toFixed(0)} ms` +
    (commitsBefore && commitsAfter ? `, ${commitSummary(commitsBefore, commitsAfter, total)}` : '');
  return { rate, line };
}

const servers: Server[] = [];
try {
  servers.push(await startBare());
  for (const [n, bin] of bins.entries()) servers.push(await startFleetgate(bin, n + 1));
  console.log(`# HTTP telemetry ${new Date().toISOString()}: ${cpus().length} cores (${cpus()[0]?.model}), node ${process.version}, wrk -t2 -c${values.connections} -d${values.seconds}s, 3 values per POST over ${DEVICES} devices, load average ${loadavg().map((l) => l.toFixed(1)).join(' ')}`);
  const best = new Map<Server, number>();
  for (let r = 1; r <= Number(values.rounds); r++) {
    for (const server of servers) {
      const result = await round(server);
      best.set(server, Math.max(best.get(server) ?? 0, result.rate));
      console.log(`round ${r} ${server.name.padEnd(16)} ${result.line}`);
    }
  }
  const bare = best.get(servers[0]) ?? 1;
  for (const server of servers.slice(1)) console.log(`${server.name}: best ${best.get(server)!.toFixed(0)} req/s, ratio to bare node:http's best (${bare.toFixed(0)}) ${(best.get(server)! / bare).toFixed(2)}`);
  console.log(`load average at the end ${loadavg().map((l) => l.toFixed(1)).join(' ')}`);
} finally {
  for (const server of servers) {
    server.child.kill('SIGTERM');
    if (server.child.exitCode === null) await once(server.child, 'exit');
  }
  rmSync(dir, { recursive: true, force: true });
}
