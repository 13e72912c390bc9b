/**
 * MQTT provisioning against its floor (issue 17 item 4), alternating rounds in one run:
 * - fleetgate started like `npm start` (its node flags, default configuration: info logging, here to a file, audit on,
 *   SQLite): each session CONNECTs as `provision`, PUBLISHes the request on `/provision/request` (QoS 1), reads the
 *   answer on `/provision/response` and DISCONNECTs; a new device name every time.
 * - Debian's mosquitto echoing the same exchange: CONNECT, SUBSCRIBE `/provision/response` and PUBLISH the same
 *   request body to it (QoS 1, one write, so no extra round trip), read the echo, DISCONNECT. A broker that stores
 *   nothing: the cost of the protocol alone.
 * `concurrency` sessions at a time (20, as the issue measured). Reports exchanges per second, the server's CPU per
 * exchange (user + system from /proc) and the ratio fleetgate / mosquitto. BENCH_SERVER_NODE_ARGS adds node flags to fleetgate.
 *
 *   node --import tsx bench/mqtt/provision.ts [--seconds 10] [--rounds 2] [--concurrency 20] [--bin bin/fleetgate.js]
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, openSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import net from 'node:net';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import mqtt, { type Packet } from 'mqtt-packet';
import { NODE_FLAGS } from '../../bin/node-flags.js';
import { freePort, waitForHttp } from '../support/processes.ts';

const { values } = parseArgs({ options: { seconds: { type: 'string', default: '10' }, rounds: { type: 'string', default: '2' }, concurrency: { type: 'string', default: '20' }, bin: { type: 'string', default: join(import.meta.dirname, '..', '..', 'bin', 'fleetgate.js') } } });
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

/** One MQTT 3.1.1 session on a raw socket: CONNECT, then `exchange`'s packets in one write, until `done` says so. */
function session(port: number, clientId: string, packets: Record<string, unknown>[], done: (p: Packet & Record<string, any>) => boolean | undefined): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect(port, '127.0.0.1');
    socket.setNoDelay(true);
    const parser = mqtt.parser({ protocolVersion: 4 });
    const timer = setTimeout(() => finish(false), 30_000);
    const finish = (ok: boolean) => {
      clearTimeout(timer);
      if (ok) socket.end(mqtt.generate({ cmd: 'disconnect' } as Packet));
      else socket.destroy();
      resolve(ok);
    };
    parser.on('packet', (p: Packet & Record<string, any>) => {
      if (p.cmd === 'connack') {
        if (p.returnCode !== 0) return finish(false);
        return void socket.write(Buffer.concat(packets.map((x) => mqtt.generate(x as unknown as Packet))));
      }
      const verdict = done(p);
      if (verdict !== undefined) finish(verdict);
    });
    socket.on('data', (chunk: Buffer) => parser.parse(chunk));
    socket.on('error', () => finish(false));
    socket.write(mqtt.generate({ cmd: 'connect', protocolVersion: 4, protocolId: 'MQTT', clientId, clean: true, keepalive: 0, username: 'provision' } as Packet));
  });
}

const request = (name: string) => JSON.stringify({ deviceName: name, provisionDeviceKey: 'bench-key', provisionDeviceSecret: 'bench-secret' });
const publish = (topic: string, payload: string) => ({ cmd: 'publish', topic, payload, qos: 1, messageId: 1, retain: false, dup: false });

const exchanges = {
  fleetgate: (port: number, name: string) =>
    session(port, name, [publish('/provision/request', request(name))], (p) => (p.cmd === 'publish' && p.topic === '/provision/response' ? JSON.parse(p.payload.toString()).status === 'SUCCESS' : undefined)),
  mosquitto: (port: number, name: string) =>
    session(port, name, [{ cmd: 'subscribe', messageId: 2, subscriptions: [{ topic: '/provision/response', qos: 1 }] }, publish('/provision/response', request(name))], (p) =>
      p.cmd === 'publish' && p.topic === '/provision/response' ? true : undefined,
    ),
};

/** Sessions by `concurrency` workers for `seconds`: completed exchanges per second and failures. */
async function load(kind: keyof typeof exchanges, port: number, round: number): Promise<{ rate: number; ok: number; failed: number }> {
  let ok = 0;
  let failed = 0;
  let seq = 0;
  const until = performance.now() + seconds * 1000;
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (performance.now() < until) {
        if (await exchanges[kind](port, `mq-${round}-${process.pid}-${seq++}`)) ok++;
        else failed++;
      }
    }),
  );
  return { rate: ok / ((performance.now() - t0) / 1000), ok, failed };
}

async function startFleetgate(dir: string): Promise<{ child: ChildProcess; port: number }> {
  const http = await freePort();
  const port = await freePort();
  const log = openSync(join(dir, 'server.log'), 'a');
  const child = spawn(process.execPath, [...NODE_FLAGS, ...(process.env.BENCH_SERVER_NODE_ARGS ?? '').split(' ').filter(Boolean), values.bin!, 'start'], {
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

const dir = mkdtempSync(join(tmpdir(), 'fleetgate-bench-mqtt-provision-'));
const fleetgate = await startFleetgate(dir);
const mosquitto = await startMosquitto();
const results: Record<string, { rate: number; cpuUs: number }[]> = { fleetgate: [], mosquitto: [] };
console.log(`# MQTT provisioning sessions, ${concurrency} concurrent, ${seconds} s rounds, load average ${loadavg().map((l) => l.toFixed(1)).join(' ')}`);
try {
  for (let round = 1; round <= rounds; round++) {
    for (const [kind, target] of [['fleetgate', fleetgate], ['mosquitto', mosquitto]] as const) {
      const before = cpuMs(target.child.pid!);
      const threadsBefore = process.env.BENCH_THREADS ? threadCpu(target.child.pid!) : undefined;
      const r = await load(kind, target.port, round);
      if (threadsBefore) {
        const after = threadCpu(target.child.pid!);
        console.log(`  ${kind} threads (user/system ms): ${[...after].map(([n, [u, s]]) => `${n} ${u - (threadsBefore.get(n)?.[0] ?? 0)}/${s - (threadsBefore.get(n)?.[1] ?? 0)}`).join(', ')}`);
      }
      const cpuUs = ((cpuMs(target.child.pid!) - before) * 1000) / Math.max(1, r.ok);
      results[kind].push({ rate: r.rate, cpuUs });
      console.log(`round ${round} ${kind}: ${r.rate.toFixed(0)} exchanges/s (${r.ok} ok, ${r.failed} failed), server CPU ${cpuUs.toFixed(0)} us per exchange`);
    }
  }
  const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
  const fg = median(results.fleetgate.map((r) => r.rate));
  const mq = median(results.mosquitto.map((r) => r.rate));
  console.log(`median: fleetgate ${fg.toFixed(0)}/s, mosquitto echo ${mq.toFixed(0)}/s, ratio ${(fg / mq).toFixed(2)} (target >= 0.4); fleetgate CPU ${median(results.fleetgate.map((r) => r.cpuUs)).toFixed(0)} us, mosquitto ${median(results.mosquitto.map((r) => r.cpuUs)).toFixed(0)} us per exchange`);
} finally {
  for (const t of [fleetgate, mosquitto]) {
    t.child.kill('SIGTERM');
    await once(t.child, 'exit');
  }
  rmSync(dir, { recursive: true, force: true });
}
