/**
 * Server CPU of the live-update fan-out with real sockets, without the rest of the server: this process holds the
 * server side (LiveUpdates on a memory bus, one LiveSubscription per device, frames written to `ws` sockets as the
 * session does) and commits, every PERIOD ms, a batch shaped like the saturated MQTT benchmark's (8 messages x 3
 * points for each of 1,000 devices); the 1,000 subscribers are bench/ws/subscribers.ts in a child process. Each
 * interval setting is measured with subscribers and, just before, with nobody subscribed (same commits); the
 * difference is the fan-out's CPU (user + system of this process, so the kernel's share of every socket write is in
 * it). Being CPU time of a fixed amount of work, it holds up on a shared machine far better than throughput.
 *   [INTERVALS=0,250,500] [BUDGETS=1000,0] [PERIOD=90] [DURATION=5000] [ROUNDS=2] node --max-semi-space-size=64 --import tsx bench/ws/fanout-sockets.ts
 * (BUDGETS: wsMaxUpdateFramesPerSecond values, each measured for each interval; a fresh budget starts at the interval
 * and stretches it once its first window closes, about a second in)
 * (the server's V8 flags, bin/node-flags.js: the young generation matters for frames gathered across commits).
 * NOSEND=1 renders every frame but writes none: the difference to a normal run is what the socket writes cost.
 */
import { fork } from 'node:child_process';
import { createServer } from 'node:http';
import { once } from 'node:events';
import { WebSocketServer, type WebSocket } from 'ws';
import { MemoryBus } from '../../src/bus/memory-bus.ts';
import { LiveInterest } from '../../src/core/live-interest.ts';
import { LiveUpdates } from '../../src/core/live-updates.ts';
import { ReplyData, type V1Reply } from '../../src/admin/ws/render.ts';
import { LiveSubscription } from '../../src/admin/ws/subscription.ts';
import { FramePacer } from '../../src/admin/ws/frame-pacer.ts';

const intervals = (process.env.INTERVALS ?? '0,250,500').split(',').map(Number);
const period = Number(process.env.PERIOD ?? 90);
const duration = Number(process.env.DURATION ?? 5000);
const rounds = Number(process.env.ROUNDS ?? 2);
/** wsMaxUpdateFramesPerSecond values to compare (the server's default 1000; 0 = no budget). */
const budgets = (process.env.BUDGETS ?? '1000').split(',').map(Number);
const DEVICES = 1000;
const PER_COMMIT = 8;

const quiet = { info() {}, warn() {}, error() {}, debug() {} };
const bus = new MemoryBus();
const interest = new LiveInterest(bus, quiet);
await interest.start();
const live = new LiveUpdates(bus, interest, quiet);
const deviceIds = Array.from({ length: DEVICES }, (_, i) => `00000000-0000-0000-0000-${String(i).padStart(12, '0')}`);

const points = deviceIds.flatMap((deviceId) =>
  Array.from({ length: PER_COMMIT }, () => [
    { deviceId, ts: 0, key: 'temperature', value: { type: 'DOUBLE' as const, value: 21.5 } },
    { deviceId, ts: 0, key: 'humidity', value: { type: 'LONG' as const, value: 40 } },
    { deviceId, ts: 0, key: 'ok', value: { type: 'BOOLEAN' as const, value: true } },
  ]).flat(),
);
const batch = { telemetry: points, attributes: [] };

let interval = 0;
let pacer = new FramePacer(0, 0);
let frames = 0;
const subs = new Set<LiveSubscription>();
const http = createServer();
const wss = new WebSocketServer({ server: http, perMessageDeflate: false });
wss.on('connection', (socket: WebSocket) => {
  socket.once('message', async (data) => {
    const cmd = (JSON.parse(String(data)) as { cmds: { cmdId: number; entityId: string }[] }).cmds[0];
    let pending = 0;
    let snapshotSent = false;
    // As WsSession.send: the frame's text, a write callback that counts what is still queued.
    const send = (reply: V1Reply | string | Buffer) => {
      if (process.env.NOSEND && snapshotSent) return void frames++; // rendered, not written (what the socket costs)
      snapshotSent = true;
      if (pending >= 1000) return socket.terminate();
      pending++;
      frames++;
      socket.send(typeof reply === 'string' || Buffer.isBuffer(reply) ? reply : JSON.stringify(reply), { binary: false }, () => pending--);
    };
    const sub = new LiveSubscription(cmd.cmdId, { kind: 'TIMESERIES', target: { deviceId: cmd.entityId, keys: undefined }, latestOnly: true }, send, { overflow: () => socket.terminate(), maxHeld: 1000, updateIntervalMs: interval, pacer });
    subs.add(sub);
    socket.on('close', () => (sub.stop(), subs.delete(sub)));
    await sub.start(live, async () => new ReplyData());
  });
});
http.listen(0, '127.0.0.1');
await once(http, 'listening');
const port = (http.address() as { port: number }).port;

const child = fork('bench/ws/subscribers.ts', [], { execArgv: ['--import', 'tsx'], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
function ask<T>(message: Record<string, unknown>, answer: string): Promise<T> {
  return new Promise<T>((resolve) => {
    const on = (m: any) => answer in m && (child.off('message', on), resolve(m[answer] as T));
    child.on('message', on);
    child.send(message);
  });
}

/** Commits every `period` ms for `duration` ms, then waits for gathered frames; returns this process's CPU ms. */
async function commits(): Promise<{ cpuMs: number; commits: number; seconds: number }> {
  const c0 = process.cpuUsage();
  const t0 = Date.now();
  let n = 0;
  while (Date.now() - t0 < duration) {
    const now = Date.now();
    for (let i = 0; i < points.length; i += 3) {
      const ts = now - PER_COMMIT + ((i / 3) % PER_COMMIT); // a device's messages 1 ms apart, the last one now
      points[i].ts = points[i + 1].ts = points[i + 2].ts = ts;
    }
    live.committed(batch);
    n++;
    await new Promise((r) => setTimeout(r, period));
  }
  await new Promise((r) => setTimeout(r, Math.max(600, 2 * Math.max(...intervals)))); // gathered frames go out
  const c = process.cpuUsage(c0);
  return { cpuMs: (c.user + c.system) / 1000, commits: n, seconds: (Date.now() - t0) / 1000 };
}

const messagesPerCommit = DEVICES * PER_COMMIT;
console.log(`| wsUpdateIntervalMs | wsMaxUpdateFramesPerSecond | Fan-out CPU per ingested message | Frames/s | Subscriber process CPU | Point to client p50 / p99 |\n|---|---|---|---|---|---|`);
for (let r = 0; r < rounds; r++) {
  for (const i of intervals) for (const budget of budgets) {
    interval = i;
    pacer = new FramePacer(i, budget);
    const base = await commits(); // nobody subscribed: the commit loop alone
    await ask({ open: { url: `ws://127.0.0.1:${port}/api/ws`, token: 'unused', deviceIds } }, 'ready');
    await ask({ reset: true }, 'reset');
    frames = 0;
    const loaded = await commits();
    const report = await ask<{ frames: number; p50: number; p99: number; cpuMs: number }>({ report: true }, 'report');
    await ask({ close: true }, 'closed');
    const perMessageUs = ((loaded.cpuMs / loaded.commits - base.cpuMs / base.commits) * 1000) / messagesPerCommit;
    console.log(`| ${i} | ${budget} | ${perMessageUs.toFixed(2)} us | ${Math.round(frames / loaded.seconds)} | ${(report.cpuMs / 10 / loaded.seconds).toFixed(0)}% of a core | ${report.p50} / ${report.p99} ms |`);
  }
}
child.kill();
process.exit(0);
