/**
 * Bench child process (forked by bench/ws/run.ts): holds one WebSocket per device, each subscribed to that device's
 * latest telemetry, and counts what arrives. IPC messages: {open:{url,token,deviceIds}} -> {ready}, {reset} ->
 * {reset}, {report} -> {report:{frames,points,p50,p99}}, {close} -> {closed}.
 * One update frame in ten is parsed: points are estimated from it, latency sampled. Latency here is point ts (server clock at parse, before the commit) to arrival, on the same machine.
 */
import WebSocket from 'ws';

let sockets: WebSocket[] = [];
let frames = 0;
let points = 0;
let latencies: number[] = [];
const MAX_SAMPLES = 200_000;

/** Every SAMPLE-th update frame is parsed for its points and latency (parsing them all would cost this process more than the server's sending them). */
const SAMPLE = 10;
let seen = 0;

function onMessage(data: WebSocket.RawData, snapshot: { done: boolean }): void {
  if (snapshot.done) {
    frames++;
    if (++seen % SAMPLE !== 0) return;
  }
  const now = Date.now();
  const m = JSON.parse(String(data)) as { data: Record<string, [number, string][]> | null; errorCode: number };
  if (m.errorCode !== 0) throw new Error(`subscription error: ${String(data)}`);
  if (!snapshot.done) {
    snapshot.done = true;
    return;
  }
  let newest = 0;
  for (const pairs of Object.values(m.data ?? {})) {
    points += pairs.length * SAMPLE; // estimated from the sample
    for (const [ts] of pairs) if (ts > newest) newest = ts;
  }
  if (latencies.length < MAX_SAMPLES) latencies.push(now - newest);
  else latencies[Math.floor(Math.random() * MAX_SAMPLES)] = now - newest;
}

async function open(url: string, token: string, deviceIds: string[]): Promise<void> {
  let ready = 0;
  await new Promise<void>((resolve, reject) => {
    for (const [i, deviceId] of deviceIds.entries()) {
      const ws = new WebSocket(url);
      const snapshot = { done: false };
      ws.on('open', () => ws.send(JSON.stringify({ authCmd: { cmdId: 0, token }, cmds: [{ type: 'TIMESERIES', cmdId: i + 1, entityType: 'DEVICE', entityId: deviceId, scope: 'LATEST_TELEMETRY' }] })));
      ws.on('message', (data) => {
        const first = !snapshot.done;
        onMessage(data, snapshot);
        if (first && ++ready === deviceIds.length) resolve();
      });
      ws.on('error', reject);
      ws.on('close', (code, reason) => code !== 1000 && code !== 1005 && code !== 1006 && process.stderr.write(`socket closed ${code} ${reason}\n`));
      sockets.push(ws);
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
    process.send!({ reset: true });
  } else if (msg.report) {
    const sorted = [...latencies].sort((a, b) => a - b);
    const at = (q: number) => (sorted.length === 0 ? NaN : sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]);
    process.send!({ report: { frames, points, p50: at(0.5), p99: at(0.99) } });
  } else if (msg.close) {
    const closing = sockets.map((ws) => new Promise((r) => (ws.once('close', r), ws.close())));
    await Promise.all(closing);
    sockets = [];
    process.send!({ closed: true });
  }
});
