/**
 * Durability under faults (issue 7 §4): a flood of QoS 1 telemetry from many MQTT devices and HTTP provisioning
 * against a server child process, killed with SIGKILL at seeded moments, then checked through the admin API.
 * Everything the server acknowledged (PUBACK, provisioning SUCCESS) must be there exactly once, and no provisioned
 * device may be half-written.
 */
import mqtt, { type Packet } from 'mqtt-packet';
import net from 'node:net';
import { Rng } from '../fuzz/rng.ts';
import { loginAdmin, startServerProcess, type ServerProcess } from '../support/process-server.ts';

export const ADMIN = { user: 'admin@fleetgate.local', password: 'durability-pw' };
/** Telemetry timestamps: BASE + round * ROUND_SPAN + sequence. */
export const BASE = 1_600_000_000_000;
export const ROUND_SPAN = 1_000_000;

/** What the clients saw acknowledged before the kill. */
export interface Acknowledged {
  /** Per device token, the timestamps whose PUBACK arrived. */
  telemetry: Map<string, number[]>;
  /** Provisioned device names with the token their SUCCESS carried. */
  provisioned: Map<string, string>;
}

/** One device publishing QoS 1 telemetry, `window` messages in flight, until the connection dies or `stop()`. */
function floodDevice(port: number, token: string, round: number, acked: number[], window: number): { stop(): void; done: Promise<void> } {
  const socket = net.connect(port, '127.0.0.1');
  const parser = mqtt.parser({ protocolVersion: 4 });
  const inflight = new Map<number, number>();
  let seq = 0;
  let stopped = false;
  const send = (p: Record<string, unknown>) => socket.write(mqtt.generate(p as unknown as Packet));
  const publishNext = () => {
    if (stopped || seq >= ROUND_SPAN - 1) return;
    const ts = BASE + round * ROUND_SPAN + ++seq;
    const messageId = (seq % 65535) + 1;
    inflight.set(messageId, ts);
    send({ cmd: 'publish', topic: 'v1/devices/me/telemetry', qos: 1, messageId, retain: false, dup: false, payload: JSON.stringify({ ts, values: { k: ts } }) });
  };
  parser.on('packet', (p: Packet) => {
    if (p.cmd === 'connack' && p.returnCode === 0) for (let i = 0; i < window; i++) publishNext();
    if (p.cmd === 'puback') {
      const ts = inflight.get(p.messageId!);
      inflight.delete(p.messageId!);
      if (ts !== undefined) acked.push(ts);
      publishNext();
    }
  });
  socket.on('data', (d) => parser.parse(d));
  socket.on('connect', () => send({ cmd: 'connect', protocolVersion: 4, protocolId: 'MQTT', clientId: token, clean: true, keepalive: 0, username: token }));
  const done = new Promise<void>((resolve) => {
    socket.on('close', () => resolve());
    socket.on('error', () => {});
  });
  return {
    stop() {
      stopped = true;
      socket.destroy();
    },
    done,
  };
}

/** HTTP provisioning in a loop, recording every SUCCESS. */
async function provisionLoop(server: ServerProcess, key: string, secret: string, round: number, worker: number, out: Map<string, string>, running: () => boolean): Promise<void> {
  for (let i = 0; running(); i++) {
    const deviceName = `dur-r${round}-w${worker}-${i}`;
    try {
      const res = await fetch(`${server.httpUrl}/api/v1/provision`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ deviceName, provisionDeviceKey: key, provisionDeviceSecret: secret }) });
      const body = (await res.json()) as { status: string; credentialsValue?: string };
      if (body.status === 'SUCCESS') out.set(deviceName, body.credentialsValue!);
    } catch {
      return; // the server is gone
    }
  }
}

/** Options of one flood-and-kill round. */
export interface RoundOptions {
  env: Record<string, string>;
  tokens: string[];
  round: number;
  rng: Rng;
  profile: { key: string; secret: string };
  acknowledged: Acknowledged;
}

/** Starts the server, floods it, SIGKILLs it once a seeded number of messages was acknowledged. Returns that number. */
export async function floodAndKill(o: RoundOptions): Promise<{ killAfter: number; ackedThisRound: number }> {
  const server = await startServerProcess(o.env);
  const killAfter = 300 + o.rng.int(2500);
  const lists = o.tokens.map((token) => {
    let list = o.acknowledged.telemetry.get(token);
    if (!list) o.acknowledged.telemetry.set(token, (list = []));
    return list;
  });
  const before = lists.reduce((n, l) => n + l.length, 0);
  const devices = o.tokens.map((token, i) => floodDevice(server.mqttPort, token, o.round, lists[i]!, 8));
  let running = true;
  const provisioners = Array.from({ length: 3 }, (_, w) => provisionLoop(server, o.profile.key, o.profile.secret, o.round, w, o.acknowledged.provisioned, () => running));
  const acked = () => lists.reduce((n, l) => n + l.length, 0) - before;
  // The kill moment: a seeded count of acknowledged messages (the wait is bounded; it only triggers the kill).
  for (let i = 0; i < 3000 && acked() < killAfter; i++) await new Promise((r) => setTimeout(r, 5));
  server.child.kill('SIGKILL');
  await server.exited;
  running = false;
  for (const d of devices) d.stop();
  await Promise.all([...devices.map((d) => d.done), ...provisioners]);
  return { killAfter, ackedThisRound: acked() };
}

/** Admin API client of the final, verifying server. */
export async function adminClient(server: ServerProcess) {
  const token = await loginAdmin(server.httpUrl, ADMIN.user, ADMIN.password);
  const headers = { 'x-authorization': `Bearer ${token}`, 'content-type': 'application/json' };
  const get = async (path: string): Promise<any> => {
    const res = await fetch(`${server.httpUrl}${path}`, { headers });
    if (res.status !== 200) throw new Error(`GET ${path}: ${res.status} ${await res.text()}`);
    return res.json();
  };
  const post = async (path: string, body: unknown): Promise<any> => {
    const res = await fetch(`${server.httpUrl}${path}`, { method: 'POST', headers, body: JSON.stringify(body) });
    if (res.status !== 200) throw new Error(`POST ${path}: ${res.status} ${await res.text()}`);
    return res.json();
  };
  return { get, post };
}

/** Lost and duplicated telemetry of one device: acknowledged timestamps missing, and timestamps stored twice. */
export async function checkTelemetry(admin: Awaited<ReturnType<typeof adminClient>>, deviceId: string, acked: number[]): Promise<{ found: number; lost: number[]; duplicates: number; wrongValue: number }> {
  const q = `keys=k&startTs=${BASE}&endTs=${BASE + 100 * ROUND_SPAN}&limit=10000000&orderBy=ASC`;
  const body = (await admin.get(`/api/plugins/telemetry/DEVICE/${deviceId}/values/timeseries?${q}`)) as { k?: { ts: number; value: unknown }[] };
  const counts = new Map<number, number>();
  let wrongValue = 0;
  for (const p of body.k ?? []) {
    counts.set(p.ts, (counts.get(p.ts) ?? 0) + 1);
    if (String(p.value) !== String(p.ts)) wrongValue++;
  }
  const lost = acked.filter((ts) => !counts.has(ts));
  const duplicates = [...counts.values()].filter((n) => n > 1).length;
  return { found: acked.length - lost.length, lost, duplicates, wrongValue };
}
