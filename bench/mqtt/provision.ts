/**
 * MQTT provisioning against its floor (issue 17 item 4), alternating rounds in one run:
 * - fleetgate started like `npm start` (its node flags, default configuration: info logging, here to a file, audit on,
 *   SQLite): each session CONNECTs as `provision`, SUBSCRIBEs `/provision/response`, PUBLISHes the request on
 *   `/provision/request` (QoS 1), reads the answer (it must say SUCCESS), PUBACKs it and DISCONNECTs; a new device
 *   name every time.
 * - Debian's mosquitto echoing the same exchange: the same CONNECT and SUBSCRIBE, the same request body PUBLISHed to
 *   `/provision/response` itself, the echo read, PUBACKed, DISCONNECT. A broker that stores nothing: the cost of the
 *   protocol alone.
 * - optionally a second fleetgate (`--base-bin`, e.g. a copy of bin/ + dist/ built from the commit before a change):
 *   an A/B of the same minutes.
 * The load generator is `--workers` forked processes (provision-worker.ts) writing pre-encoded packets on raw sockets,
 * `--concurrency` sessions at a time in all (20, as the issue measured), so the generator is cheap enough to drive
 * mosquitto to what the machine can do. Each target is warmed up (`--warmup` s) before the rounds. Reports sessions
 * per second, the server's CPU per session (user + system from /proc/<pid>/stat, every thread), the generator's CPU
 * per session, and the ratio fleetgate / mosquitto. BENCH_SERVER_NODE_ARGS adds node flags to fleetgate (e.g.
 * `--cpu-prof --cpu-prof-dir=/tmp/prof`); BENCH_THREADS=1 prints the server's CPU per thread.
 *
 *   node --import tsx bench/mqtt/provision.ts [--seconds 10] [--rounds 3] [--concurrency 20] [--workers 2]
 *     [--warmup 5] [--bin bin/fleetgate.js] [--base-bin /tmp/before/bin/fleetgate.js] [--only fleetgate,mosquitto]
 */
import { fork, spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdirSync, mkdtempSync, openSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import net from 'node:net';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { NODE_FLAGS } from '../../bin/node-flags.js';
import { freePort, waitForHttp } from '../support/processes.ts';
import type { RunOrder, RunReport } from './provision-worker.ts';

const { values } = parseArgs({
  options: {
    seconds: { type: 'string', default: '10' },
    rounds: { type: 'string', default: '3' },
    concurrency: { type: 'string', default: '20' },
    workers: { type: 'string', default: '2' },
    warmup: { type: 'string', default: '5' },
    bin: { type: 'string', default: join(import.meta.dirname, '..', '..', 'bin', 'fleetgate.js') },
    'base-bin': { type: 'string' },
    only: { type: 'string' },
  },
});
const seconds = Number(values.seconds);
const rounds = Number(values.rounds);
const concurrency = Number(values.concurrency);

const cpuMs = (pid: number) => {
  const f = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
  return ((Number(f[11]) + Number(f[12])) * 1000) / 100;
};

/** CPU ms per thread name (user, system), to see where a server's CPU goes (BENCH_THREADS=1). */
function threadCpu(pid: number): Map<string, [number, number]> {
  const out = new Map<string, [number, number]>();
  for (const t of readdirSync(`/proc/${pid}/task`)) {
    try {
      const stat = readFileSync(`/proc/${pid}/task/${t}/stat`, 'utf8');
      const name = t === String(pid) ? "main" : stat.slice(stat.indexOf("(") + 1, stat.lastIndexOf(")"));
      const f = stat.split(') ')[1].split(' ');
      const prev = out.get(name) ?? [0, 0];
      out.set(name, [prev[0] + Number(f[11]) * 10, prev[1] + Number(f[12]) * 10]);
    } catch {
      /* the thread ended */
    }
  }
  return out;
}

/** The load generator: `workers` forked processes (provision-worker.ts), the sessions split among them. */
const workerCount = Number(values.workers);
const workers: ChildProcess[] = Array.from({ length: workerCount }, () =>
  fork(join(import.meta.dirname, 'provision-worker.ts'), [], { execArgv: ['--import', 'tsx'], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] }),
);

/** One round against one server: every worker runs its share of the sessions for `secs`. */
async function load(kind: RunOrder['kind'], port: number, secs: number): Promise<{ rate: number; ok: number; failed: number; okWithDrain: number }> {
  const reports = await Promise.all(
    workers.map((w, index) => {
      const sessions = Math.floor(concurrency / workerCount) + (index < concurrency % workerCount ? 1 : 0);
      const report = once(w, 'message').then(([r]) => r as RunReport);
      w.send({ kind, port, sessions, seconds: secs, index } satisfies RunOrder);
      return report;
    }),
  );
  const ok = reports.reduce((a, r) => a + r.ok, 0);
  return { ok, failed: reports.reduce((a, r) => a + r.failed, 0), okWithDrain: reports.reduce((a, r) => a + r.okWithDrain, 0), rate: ok / Math.max(...reports.map((r) => r.seconds)) };
}

async function startFleetgate(dir: string, bin: string): Promise<{ child: ChildProcess; port: number }> {
  mkdirSync(dir, { recursive: true });
  const http = await freePort();
  const port = await freePort();
  const log = openSync(join(dir, 'server.log'), 'a');
  const child = spawn(process.execPath, [...NODE_FLAGS, ...(process.env.BENCH_SERVER_NODE_ARGS ?? '').split(' ').filter(Boolean), bin, 'start'], {
    env: { ...process.env, FLEETGATE_HOST: '127.0.0.1', FLEETGATE_HTTP_PORT: String(http), FLEETGATE_MQTT_PORT: String(port), FLEETGATE_COAP_PORT: String(await freePort()), FLEETGATE_DATABASE: join(dir, 'bench.db'), FLEETGATE_ADMIN_PASSWORD: 'bench-password' },
    stdio: ['ignore', log, log],
  });
  const url = `http://127.0.0.1:${http}`;
  await waitForHttp(`${url}/healthz`, 60_000);
  const login = await fetch(`${url}/api/auth/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ username: 'admin@fleetgate.local', password: 'bench-password' }) });
  const { token } = (await login.json()) as { token: string };
  const type = 'ALLOW_CREATE_NEW_DEVICES';
  const profile = await fetch(`${url}/api/deviceProfile`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'x-authorization': `Bearer ${token}` },
    body: JSON.stringify({ name: 'bench', provisionType: type, provisionDeviceKey: 'bench-key', profileData: { provisionConfiguration: { type, provisionDeviceSecret: 'bench-secret' } } }),
  });
  if (profile.status !== 200) throw new Error(`profile: ${profile.status}`);
  return { child, port };
}

async function startMosquitto(): Promise<{ child: ChildProcess; port: number }> {
  const port = await freePort();
  const child = spawn('/usr/sbin/mosquitto', ['-p', String(port)], { stdio: ['ignore', 'ignore', 'ignore'] });
  for (let i = 0; i < 200; i++) {
    if (await new Promise<boolean>((resolve) => net.connect(port, '127.0.0.1').once('connect', function (this: net.Socket) { this.destroy(); resolve(true); }).once('error', () => resolve(false)))) break;
    await new Promise((r) => setTimeout(r, 50));
  }
  return { child, port };
}

type Target = { name: string; kind: RunOrder['kind']; child: ChildProcess; port: number };
const dir = mkdtempSync(join(tmpdir(), 'fleetgate-bench-mqtt-provision-'));
const wanted = (name: string) => !values.only || values.only.split(',').includes(name);
const targets: Target[] = [];
const median = (xs: number[]) => {
  const sorted = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
};
const workerCpuMs = () => workers.reduce((a, w) => a + cpuMs(w.pid!), 0);
try {
  if (wanted('fleetgate')) targets.push({ name: 'fleetgate', kind: 'fleetgate', ...(await startFleetgate(join(dir, 'a'), values.bin!)) });
  if (values['base-bin']) targets.push({ name: 'fleetgate-base', kind: 'fleetgate', ...(await startFleetgate(join(dir, 'b'), values['base-bin'])) });
  if (wanted('mosquitto')) targets.push({ name: 'mosquitto', kind: 'echo', ...(await startMosquitto()) });
  const results = new Map<string, { rate: number; cpuUs: number; genUs: number }[]>(targets.map((t) => [t.name, []]));
  console.log(`# MQTT provisioning sessions, ${concurrency} concurrent from ${workerCount} generator processes, ${seconds} s rounds, load average ${loadavg().map((l) => l.toFixed(1)).join(' ')}`);
  for (const t of targets) {
    const r = await load(t.kind, t.port, Number(values.warmup));
    console.log(`warm-up ${t.name}: ${r.rate.toFixed(0)}/s (${r.failed} failed)`);
  }
  for (let round = 1; round <= rounds; round++) {
    for (const t of targets) {
      const before = cpuMs(t.child.pid!);
      const genBefore = workerCpuMs();
      const threadsBefore = process.env.BENCH_THREADS ? threadCpu(t.child.pid!) : undefined;
      const r = await load(t.kind, t.port, seconds);
      if (threadsBefore) {
        const after = threadCpu(t.child.pid!);
        console.log(`  ${t.name} threads (user/system ms): ${[...after].map(([n, [u, s]]) => `${n} ${u - (threadsBefore.get(n)?.[0] ?? 0)}/${s - (threadsBefore.get(n)?.[1] ?? 0)}`).join(', ')}`);
      }
      const sessions = Math.max(1, r.okWithDrain);
      const cpuUs = ((cpuMs(t.child.pid!) - before) * 1000) / sessions;
      const genUs = ((workerCpuMs() - genBefore) * 1000) / sessions;
      results.get(t.name)!.push({ rate: r.rate, cpuUs, genUs });
      console.log(`round ${round} ${t.name}: ${r.rate.toFixed(0)} sessions/s (${r.ok} ok, ${r.failed} failed), server CPU ${cpuUs.toFixed(0)} us per session, generator ${genUs.toFixed(0)} us, load average ${loadavg()[0].toFixed(1)}`);
    }
  }
  const summary = new Map([...results].map(([name, rs]) => [name, { rate: median(rs.map((r) => r.rate)), cpuUs: median(rs.map((r) => r.cpuUs)) }]));
  console.log(`median: ${[...summary].map(([name, s]) => `${name} ${s.rate.toFixed(0)}/s at ${s.cpuUs.toFixed(0)} us CPU a session`).join(', ')}`);
  const floor = summary.get('mosquitto');
  if (floor) for (const name of ['fleetgate', 'fleetgate-base']) {
    const s = summary.get(name);
    if (s) console.log(`ratio ${name} / mosquitto echo: ${(s.rate / floor.rate).toFixed(2)} by rate (target >= 0.4), ${(floor.cpuUs / s.cpuUs).toFixed(2)} by server CPU per session`);
  }
} finally {
  for (const w of workers) w.disconnect();
  for (const t of targets) {
    t.child.kill('SIGTERM');
    await once(t.child, 'exit');
  }
  rmSync(dir, { recursive: true, force: true });
}
