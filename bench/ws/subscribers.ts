/**
 * Bench child process (forked by bench/ws/run.ts): holds one WebSocket per device, each subscribed to that device's
 * latest telemetry, and counts what arrives. IPC messages: {open:{url,token,deviceIds}} -> {ready}, {reset} ->
 * {reset}, {report} -> {report:{frames,points,p50,p99,cpuMs}}, {close} -> {closed}.
 *
 * The sockets are raw TCP with a minimal RFC 6455 client (handshake, one masked text frame out, frame headers read),
 * not the `ws` package, so this process, on the same cores as the server it measures, costs as little as it can: it
 * reads each frame's header to count it and parses one update frame in ten (points are estimated from that sample,
 * latency sampled). Latency here is point ts (server clock at parse, before the commit) to arrival, on the same
 * machine. `cpuMs` is this process's own CPU time since the last reset.
 * BENCH_WS_CLIENT=ws uses the `ws` package instead (as before), to compare what the client costs.
 */
import net from 'node:net';
import { randomBytes } from 'node:crypto';
import WebSocket from 'ws';

let closers: (() => Promise<void>)[] = [];
let frames = 0;
let points = 0;
let latencies: number[] = [];
let cpu0 = process.cpuUsage();
const MAX_SAMPLES = 200_000;

/** Every SAMPLE-th update frame is parsed for its points and latency (parsing them all would cost this process more than the server's sending them). */
const SAMPLE = 10;
let seen = 0;

/** Counts one text frame; the first of a socket is its snapshot. Returns true for the snapshot. */
function onText(text: () => string, snapshot: { done: boolean }): boolean {
  if (snapshot.done) {
    frames++;
    if (++seen % SAMPLE !== 0) return false;
  }
  const now = Date.now();
  const raw = text();
  const m = JSON.parse(raw) as { data: Record<string, [number, string][]> | null; errorCode: number };
  if (m.errorCode !== 0) throw new Error(`subscription error: ${raw}`);
  if (!snapshot.done) {
    snapshot.done = true;
    return true;
  }
  let newest = 0;
  for (const pairs of Object.values(m.data ?? {})) {
    points += pairs.length * SAMPLE; // estimated from the sample
    for (const [ts] of pairs) if (ts > newest) newest = ts;
  }
  if (latencies.length < MAX_SAMPLES) latencies.push(now - newest);
  else latencies[Math.floor(Math.random() * MAX_SAMPLES)] = now - newest;
  return false;
}

/** A client frame: FIN, `opcode`, masked with a zero key (allowed; the server unmasks it the same way). */
function clientFrame(opcode: number, payload: Buffer): Buffer {
  const len = payload.length;
  const head = len < 126 ? Buffer.from([0x80 | opcode, 0x80 | len, 0, 0, 0, 0]) : Buffer.from([0x80 | opcode, 0x80 | 126, len >> 8, len & 255, 0, 0, 0, 0]);
  return Buffer.concat([head, payload]);
}

/** One raw WebSocket: resolves on its snapshot; counts the frames after it. */
function openRaw(url: URL, first: string, onSnapshot: () => void, fail: (err: Error) => void): () => Promise<void> {
  const socket = net.connect(Number(url.port), url.hostname);
  socket.setNoDelay(true);
  const snapshot = { done: false };
  let buffer: Buffer | undefined;
  let upgraded = false;
  socket.on('connect', () => {
    socket.write(`GET ${url.pathname} HTTP/1.1\r\nHost: ${url.host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: ${randomBytes(16).toString('base64')}\r\nSec-WebSocket-Version: 13\r\n\r\n`);
  });
  socket.on('data', (chunk: Buffer) => {
    let bytes = buffer ? Buffer.concat([buffer, chunk]) : chunk;
    let at = 0;
    if (!upgraded) {
      const end = bytes.indexOf('\r\n\r\n');
      if (end < 0) return void (buffer = bytes);
      if (!bytes.subarray(0, 12).toString().includes('101')) return fail(new Error(`upgrade refused: ${bytes.subarray(0, end)}`));
      upgraded = true;
      socket.write(clientFrame(1, Buffer.from(first)));
      at = end + 4;
    }
    while (bytes.length - at >= 2) {
      const opcode = bytes[at] & 0x0f;
      let len = bytes[at + 1] & 0x7f;
      let head = 2;
      if (len === 126) {
        if (bytes.length - at < 4) break;
        len = bytes.readUInt16BE(at + 2);
        head = 4;
      } else if (len === 127) {
        if (bytes.length - at < 10) break;
        len = Number(bytes.readBigUInt64BE(at + 2));
        head = 10;
      }
      if (bytes.length - at < head + len) break;
      const start = at + head;
      if (opcode === 1 && onText(() => bytes.toString('utf8', start, start + len), snapshot)) onSnapshot();
      else if (opcode === 9) socket.write(clientFrame(10, bytes.subarray(start, start + len))); // ping -> pong
      else if (opcode === 8) socket.end();
      at = start + len;
    }
    buffer = at < bytes.length ? bytes.subarray(at) : undefined;
  });
  socket.on('error', fail);
  return () =>
    new Promise<void>((resolve) => {
      if (socket.destroyed) return resolve();
      socket.once('close', () => resolve());
      socket.write(clientFrame(8, Buffer.from([0x03, 0xe8])));
      socket.end();
      setTimeout(() => socket.destroy(), 1000).unref();
    });
}

/** One socket with the `ws` package (BENCH_WS_CLIENT=ws). */
function openWs(url: URL, first: string, onSnapshot: () => void, fail: (err: Error) => void): () => Promise<void> {
  const ws = new WebSocket(url);
  const snapshot = { done: false };
  ws.on('open', () => ws.send(first));
  ws.on('message', (data) => onText(() => String(data), snapshot) && onSnapshot());
  ws.on('error', fail);
  return () => new Promise((r) => (ws.readyState === WebSocket.CLOSED ? r() : (ws.once('close', () => r()), ws.close())));
}

async function open(url: string, token: string, deviceIds: string[]): Promise<void> {
  let ready = 0;
  const target = new URL(url);
  const opener = process.env.BENCH_WS_CLIENT === 'ws' ? openWs : openRaw;
  await new Promise<void>((resolve, reject) => {
    for (const [i, deviceId] of deviceIds.entries()) {
      const first = JSON.stringify({ authCmd: { cmdId: 0, token }, cmds: [{ type: 'TIMESERIES', cmdId: i + 1, entityType: 'DEVICE', entityId: deviceId, scope: 'LATEST_TELEMETRY' }] });
      closers.push(opener(target, first, () => ++ready === deviceIds.length && resolve(), reject));
    }
  });
}

process.on('message', async (msg: any) => {
  if (msg.open) {
    await open(msg.open.url, msg.open.token, msg.open.deviceIds);
    process.send!({ ready: true });
  } else if (msg.reset) {
    frames = 0;
    points = 0;
    latencies = [];
    cpu0 = process.cpuUsage();
    process.send!({ reset: true });
  } else if (msg.report) {
    const cpu = process.cpuUsage(cpu0);
    const sorted = [...latencies].sort((a, b) => a - b);
    const at = (q: number) => (sorted.length === 0 ? NaN : sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]);
    process.send!({ report: { frames, points, p50: at(0.5), p99: at(0.99), cpuMs: (cpu.user + cpu.system) / 1000 } });
  } else if (msg.close) {
    await Promise.all(closers.map((c) => c()));
    closers = [];
    process.send!({ closed: true });
  }
});
