/**
 * Gateway benchmark (issue 14): data points per second through ONE gateway connection carrying 1,000 sub-devices,
 * beside the same data from 1,000 direct device connections, in alternating rounds against one server, with the rows
 * stored counted afterwards.
 *   node --import tsx bench/gateway/run.ts [--rounds 2] [--duration 8000] [--devices 1000] [--per-message 100]
 * Every sample carries its own timestamp (so each acknowledged point is one stored row) and three values.
 * Gateway: QoS 1 `v1/gateway/telemetry` messages, each naming `--per-message` sub-devices with one sample, 16 in
 * flight. Direct: each device keeps 4 QoS 1 `v1/devices/me/telemetry` messages of one sample in flight.
 */
import Database from 'better-sqlite3';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { rmSync } from 'node:fs';
import net from 'node:net';
import { createInterface } from 'node:readline';
import { parseArgs } from 'node:util';
import mqtt, { type Packet } from 'mqtt-packet';
import { NODE_FLAGS } from '../../bin/node-flags.js';
import { cpuSeconds } from '../mqtt/load.ts';

const { values } = parseArgs({
  options: { rounds: { type: 'string', default: '2' }, duration: { type: 'string', default: '8000' }, devices: { type: 'string', default: '1000' }, 'per-message': { type: 'string', default: '100' } },
});
const rounds = Number(values.rounds);
const duration = Number(values.duration);
const devices = Number(values.devices);
const perMessage = Number(values['per-message']);
const KEYS = 3;

/** A raw MQTT 3.1.1 connection; `onAck` is called for every PUBACK. */
async function open(port: number, username: string, clientId: string, onAck: (messageId: number) => void): Promise<net.Socket> {
  const socket = net.connect(port, '127.0.0.1');
  socket.setNoDelay(true);
  const parser = mqtt.parser({ protocolVersion: 4 });
  await new Promise<void>((resolve, reject) => {
    parser.on('packet', (p: Packet) => {
      if (p.cmd === 'connack') (p.returnCode === 0 ? resolve() : reject(new Error(`refused ${p.returnCode}`)));
      else if (p.cmd === 'puback') onAck(p.messageId!);
    });
    socket.on('data', (d) => parser.parse(d));
    socket.on('error', reject);
    socket.write(mqtt.generate({ cmd: 'connect', protocolVersion: 4, protocolId: 'MQTT', clientId, clean: true, keepalive: 0, username }));
  });
  return socket;
}

let tsCounter = Date.UTC(2026, 0, 1);
const nextTs = () => ++tsCounter;
const sample = (ts: number) => ({ ts, values: { temperature: 21.5, humidity: 40, ok: true } });

/** One measured phase: acknowledged data points per second, and the server's CPU µs per point. */
interface Phase {
  pointsPerSecond: number;
  points: number;
  cpuUsPerPoint: number;
}

async function gatewayPhase(port: number, serverPid: number): Promise<Phase> {
  let acked = 0;
  let running = true;
  let seq = 0;
  const inflight = new Map<number, number>();
  const socket: net.Socket = await open(port, 'bench-gateway', 'bench-gateway', (id) => {
    acked += inflight.get(id) ?? 0;
    inflight.delete(id);
    if (running) publish();
  });
  const publish = () => {
    const first = (seq * perMessage) % devices;
    const body: Record<string, unknown[]> = {};
    for (let i = 0; i < perMessage; i++) body[`gsub-${(first + i) % devices}`] = [sample(nextTs())];
    seq++;
    const messageId = (seq % 65535) + 1;
    inflight.set(messageId, perMessage * KEYS);
    socket.write(mqtt.generate({ cmd: 'publish', topic: 'v1/gateway/telemetry', qos: 1, messageId, retain: false, dup: false, payload: JSON.stringify(body) }));
  };
  return measure(() => acked, serverPid, () => {
    for (let i = 0; i < 16; i++) publish();
  }, () => {
    running = false;
    socket.destroy();
  });
}

async function directPhase(port: number, serverPid: number): Promise<Phase> {
  let acked = 0;
  let running = true;
  const sockets: net.Socket[] = [];
  const starters: (() => void)[] = [];
  for (let d = 0; d < devices; d += 100) {
    await Promise.all(
      Array.from({ length: Math.min(100, devices - d) }, async (_, j) => {
        let id = 0;
        let socket: net.Socket | undefined;
        const publish = () => {
          id = (id % 65535) + 1;
          socket!.write(mqtt.generate({ cmd: 'publish', topic: 'v1/devices/me/telemetry', qos: 1, messageId: id, retain: false, dup: false, payload: JSON.stringify(sample(nextTs())) }));
        };
        socket = await open(port, `direct-${d + j}`, `direct-${d + j}`, () => {
          acked += KEYS;
          if (running) publish();
        });
        sockets.push(socket);
        starters.push(() => {
          for (let i = 0; i < 4; i++) publish();
        });
      }),
    );
  }
  return measure(() => acked, serverPid, () => starters.forEach((s) => s()), () => {
    running = false;
    for (const s of sockets) s.destroy();
  });
}

async function measure(acked: () => number, serverPid: number, start: () => void, stop: () => void): Promise<Phase> {
  start();
  await new Promise((r) => setTimeout(r, 1000)); // warm-up, not counted
  const from = acked();
  const cpu0 = cpuSeconds(serverPid);
  const t0 = process.hrtime.bigint();
  await new Promise((r) => setTimeout(r, duration));
  const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
  const points = acked() - from;
  const cpu = cpuSeconds(serverPid) - cpu0;
  stop();
  await new Promise((r) => setTimeout(r, 1500)); // in-flight messages finish before the next phase
  return { pointsPerSecond: points / seconds, points, cpuUsPerPoint: (cpu * 1e6) / points };
}

const child = spawn(process.execPath, [...NODE_FLAGS, '--import', 'tsx', 'bench/gateway/server.ts'], { env: { ...process.env, BENCH_DEVICES: String(devices) }, stdio: ['ignore', 'pipe', 'inherit'] });
const [line] = (await once(createInterface({ input: child.stdout! }), 'line')) as [string];
const { mqttPort, database, dir } = JSON.parse(line) as { mqttPort: number; database: string; dir: string };

// Sub-devices are created by the gateway's first messages (not measured).
{
  let pending = 0;
  let done!: () => void;
  const finished = new Promise<void>((r) => (done = r));
  const socket = await open(mqttPort, 'bench-gateway', 'bench-gateway-setup', () => --pending === 0 && done());
  for (let i = 0; i < devices; i += perMessage) {
    pending++;
    const body = Object.fromEntries(Array.from({ length: Math.min(perMessage, devices - i) }, (_, j) => [`gsub-${i + j}`, [{ setup: 1 }]]));
    socket.write(mqtt.generate({ cmd: 'publish', topic: 'v1/gateway/telemetry', qos: 1, messageId: pending, retain: false, dup: false, payload: JSON.stringify(body) }));
  }
  await finished;
  socket.destroy();
}

const results: Record<'gateway' | 'direct', Phase[]> = { gateway: [], direct: [] };
const lines: string[] = [];
for (let round = 1; round <= rounds; round++) {
  for (const kind of ['gateway', 'direct'] as const) {
    const phase = kind === 'gateway' ? await gatewayPhase(mqttPort, child.pid!) : await directPhase(mqttPort, child.pid!);
    results[kind].push(phase);
    lines.push(`${kind.padEnd(8)} round ${round}  ${Math.round(phase.pointsPerSecond).toString().padStart(7)} points/s  (${phase.points} acknowledged, server CPU ${phase.cpuUsPerPoint.toFixed(1)} µs/point)`);
    console.error(lines.at(-1));
  }
}
child.kill('SIGTERM');
await once(child, 'exit');
const db = new Database(database, { readonly: true });
// Points stored: ts_kv and staged rows, and the points of ts_kv_chunk rows (16 bytes each).
const count = (prefix: string) =>
  ['ts_kv', 'ts_kv_recent', 'ts_kv_chunk'].reduce((n, table) => {
    const exists = db.prepare(`select count(*) as n from sqlite_master where name = ?`).get(table) as { n: number };
    if (exists.n === 0) return n;
    const points = table === 'ts_kv_chunk' ? 'coalesce(sum(length(t.points)) / 16, 0)' : 'count(*)';
    return n + (db.prepare(`select ${points} as n from ${table} t join device d on d.id = t.device_id where d.name like ? and t.key <> 'setup'`).get(`${prefix}%`) as { n: number }).n;
  }, 0);
const stored = { gateway: count('gsub-'), direct: count('direct-') };
db.close();
rmSync(dir, { recursive: true, force: true });
const best = (kind: 'gateway' | 'direct') => Math.max(...results[kind].map((p) => p.pointsPerSecond));
console.log(`# Gateway benchmark ${new Date().toISOString()} — fleetgate on SQLite, node ${process.version}, ${devices} sub-devices vs ${devices} direct devices, ${perMessage} devices per gateway message, ${rounds} rounds of ${duration} ms`);
for (const l of lines) console.log(l);
console.log(`rows stored (all phases, warm-up included): gateway ${stored.gateway}, direct ${stored.direct}`);
console.log(`best: gateway ${Math.round(best('gateway'))} points/s, direct ${Math.round(best('direct'))} points/s (ratio ${(best('gateway') / best('direct')).toFixed(2)})`);
