/**
 * MQTT QoS 1 telemetry with a distinct `ts` on every PUBLISH (issue 17 item 4): every point is a stored row, nothing
 * folds. fleetgate with the SQLite writer thread on and off (config sqliteWriterThread) and aedes (stores nothing),
 * alternating rounds in one run; 100 devices each keeping 64 publishes in flight.
 *
 *   node --import tsx bench/mqtt/distinct-ts.ts [--rounds 3] [--duration 10000] [--peers thread,process,aedes]
 *     [--base-dist /abs/other-checkout/dist] [--from-dist]
 *
 * Per round: acknowledged msg/s, PUBLISH-to-PUBACK latency p50/p99/p99.9, server CPU µs per message (whole process,
 * its main thread alone, and its busiest other thread, which for fleetgate is the SQLite writer thread: Node does
 * not name its threads, so the bench takes the one with the most CPU; from /proc/<pid>/task), and for fleetgate the
 * points it stored (ts_kv and ts_kv_recent rows plus the points packed in ts_kv_chunk rows, counted by the server
 * after closing its store; of them, how many in chunks).
 * `--base-dist` adds a peer "before": another checkout's compiled build (writer thread on), alternating with the
 * others, for an A/B in the same minutes; `--from-dist` runs this checkout's build (`node scripts/build.mjs`) instead
 * of the sources through tsx, so both sides of such an A/B run compiled JavaScript.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { readdirSync, readFileSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { parseArgs } from 'node:util';
import assert from 'node:assert/strict';
import mqtt from 'mqtt-packet';
import { NODE_FLAGS } from '../../bin/node-flags.js';
import { cpuSeconds } from './load.ts';
import { connectRaw } from '../export/load.ts';

const { values } = parseArgs({
  options: {
    rounds: { type: 'string', default: '3' },
    duration: { type: 'string', default: '10000' },
    peers: { type: 'string', default: 'thread,process,aedes' },
    'base-dist': { type: 'string' },
    'from-dist': { type: 'boolean', default: false },
  },
});
const rounds = Number(values.rounds);
const duration = Number(values.duration);
const TOPIC = 'v1/devices/me/telemetry';
const BASE_TS = 1_700_000_000_000;

interface Target {
  name: string;
  port: number;
  child: ChildProcess;
  /** The JSON lines the server printed (its ports first, then the rows it stored). */
  reports: Record<string, number>[];
  /** Settles once the server has exited and its stdout has been read to the end. */
  closed: Promise<unknown>;
}

/** CPU seconds of one thread of `pid` (the main thread's tid is the pid). */
const threadSeconds = (pid: number, tid: number | string): { user: number; system: number } => {
  try {
    const fields = readFileSync(`/proc/${pid}/task/${tid}/stat`, 'utf8').split(') ')[1].split(' ');
    return { user: Number(fields[11]) / 100, system: Number(fields[12]) / 100 };
  } catch {
    return { user: 0, system: 0 }; // the thread ended
  }
};
/** CPU seconds (user, system) of every thread of `pid`, by tid. */
const threadsSeconds = (pid: number) => new Map(readdirSync(`/proc/${pid}/task`).map((tid) => [tid, threadSeconds(pid, tid)]));

async function start(name: string, script: string, env: Record<string, string>): Promise<Target> {
  const extra = (process.env.BENCH_SERVER_NODE_ARGS ?? '').split(' ').filter(Boolean); // e.g. --import bench/support/stall-trace.mjs
  const child = spawn(process.execPath, [...NODE_FLAGS, ...extra, '--import', 'tsx', script], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'inherit'] });
  // The server's stdout is read all the time: its JSON lines are the bench's; anything else (V8's --trace-gc output,
  // given through BENCH_SERVER_NODE_ARGS) goes to stderr, and a full pipe never blocks the server.
  const reports: Record<string, number>[] = [];
  const closed = once(child, 'close');
  const lines = createInterface({ input: child.stdout! });
  lines.on('line', (line) => {
    if (line.startsWith('{')) reports.push(JSON.parse(line) as Record<string, number>);
    else process.stderr.write(`${line}\n`);
  });
  while (reports.length === 0) {
    if (child.exitCode !== null) throw new Error(`${name} exited before it was ready`);
    await new Promise((r) => setTimeout(r, 20));
  }
  return { name, port: reports[0].mqttPort, child, reports, closed };
}

/** The load: returns msg/s, latency quantiles (ms) and server CPU per message over the measured window. */
async function load(target: Target, devices: number, window: number) {
  const pid = target.child.pid!;
  const sockets = await Promise.all(Array.from({ length: devices }, (_, i) => connectRaw(target.port, `bench-${i}`)));
  const payloadOf = (ts: number) => `{"ts":${ts},"values":{"temperature":21.5,"humidity":40}}`;
  const template = mqtt.generate({ cmd: 'publish', topic: TOPIC, payload: Buffer.from(payloadOf(BASE_TS)), qos: 1, messageId: 1, retain: false, dup: false });
  const idAt = 2 + 2 + TOPIC.length;
  const tsAt = idAt + 2 + '{"ts":'.length;
  let acked = 0;
  let running = true;
  let measuring = false;
  const latencies: number[] = [];
  sockets.forEach((socket, device) => {
    let id = 0;
    let ts = BASE_TS + device * 1_000_000_000; // distinct per device too (not needed: rows are per device)
    const sentAt = new Float64Array(65536);
    let partial: Buffer | undefined;
    const publishes = (n: number): Buffer => {
      const out = Buffer.allocUnsafe(template.length * n);
      const now = performance.now();
      for (let i = 0; i < n; i++) {
        const at = i * template.length;
        id = (id % 65535) + 1;
        template.copy(out, at);
        out.writeUInt16BE(id, at + idAt);
        out.write(String(++ts), at + tsAt, 'latin1');
        sentAt[id] = now;
      }
      return out;
    };
    socket.on('data', (chunk: Buffer) => {
      const bytes = partial ? Buffer.concat([partial, chunk]) : chunk;
      const now = performance.now();
      let at = 0;
      let acks = 0;
      while (at + 2 <= bytes.length && at + 2 + bytes[at + 1] <= bytes.length) {
        if (bytes[at] >> 4 === 4) {
          acks++;
          if (measuring) latencies.push(now - sentAt[bytes.readUInt16BE(at + 2)]);
        }
        at += 2 + bytes[at + 1];
      }
      partial = at < bytes.length ? bytes.subarray(at) : undefined;
      acked += acks;
      if (running && acks > 0) socket.write(publishes(acks));
    });
    socket.write(publishes(window));
  });
  await new Promise((r) => setTimeout(r, 1000));
  const start = acked;
  const cpu0 = cpuSeconds(pid);
  const threads0 = threadsSeconds(pid);
  measuring = true;
  const t0 = performance.now();
  await new Promise((r) => setTimeout(r, duration));
  const seconds = (performance.now() - t0) / 1000;
  measuring = false;
  const measured = acked - start;
  const cpu = cpuSeconds(pid) - cpu0;
  let main = 0;
  let busiest = 0;
  let busiestSystem = 0;
  for (const [tid, now] of threadsSeconds(pid)) {
    const before = threads0.get(tid) ?? { user: 0, system: 0 };
    const used = now.user + now.system - before.user - before.system;
    if (tid === String(pid)) main = used;
    else if (used > busiest) {
      busiest = used;
      busiestSystem = now.system - before.system;
    }
  }
  running = false;
  await new Promise((r) => setTimeout(r, 500));
  for (const s of sockets) s.destroy();
  latencies.sort((a, b) => a - b);
  const q = (p: number) => latencies[Math.min(latencies.length - 1, Math.floor(p * latencies.length))] ?? NaN;
  // Every PUBACK of the run (warm-up and tail included): what the stored points are compared with.
  return { acked, rate: measured / seconds, p50: q(0.5), p99: q(0.99), p999: q(0.999), cpuUs: (cpu * 1e6) / measured, mainUs: (main * 1e6) / measured, otherUs: (busiest * 1e6) / measured, otherSystemUs: (busiestSystem * 1e6) / measured };
}

/** Stops a server; fleetgate prints the rows it stored (BENCH_COUNT_ROWS) after closing its store. */
async function stop(target: Target): Promise<{ rows?: number; chunkPoints?: number; chunks?: number; walBytes?: number }> {
  target.child.kill('SIGTERM');
  await target.closed;
  return (target.reports.find((line) => line.rows !== undefined) ?? {}) as { rows?: number; chunkPoints?: number; chunks?: number; walBytes?: number };
}

const fleetgateEnv = (thread: 'on' | 'off', dist?: string): Record<string, string> => ({
  BENCH_DEVICES: '100',
  BENCH_COUNT_ROWS: '1',
  FLEETGATE_SQLITE_WRITER_THREAD: thread,
  ...(dist ? { BENCH_DIST_DIR: dist } : values['from-dist'] ? { BENCH_FROM_DIST: '1' } : {}),
});
const allPeers: Record<string, [string, () => Promise<Target>]> = {
  before: ['fleetgate before (writer thread)', () => start('fleetgate before (writer thread)', 'bench/mqtt/fleetgate-server.ts', fleetgateEnv('on', values['base-dist']))],
  thread: ['fleetgate (writer thread)', () => start('fleetgate (writer thread)', 'bench/mqtt/fleetgate-server.ts', fleetgateEnv('on'))],
  process: ['fleetgate (in process)', () => start('fleetgate (in process)', 'bench/mqtt/fleetgate-server.ts', fleetgateEnv('off'))],
  aedes: ['aedes', () => start('aedes', 'bench/mqtt/aedes-server.ts', {})],
};
const chosen = values.peers.split(',');
if (values['base-dist'] && !chosen.includes('before')) chosen.unshift('before');
if (!chosen.includes('aedes')) chosen.push('aedes'); // the ratios are to aedes
const peers = chosen.map((name) => allPeers[name] ?? assert.fail(`unknown peer ${name}: thread, process, aedes, before`));
const results = new Map<string, Awaited<ReturnType<typeof load>>[]>();
const lines: string[] = [];
for (let r = 0; r < rounds; r++) {
  for (const [name, startPeer] of peers) {
    const target = await startPeer();
    const result = await load(target, 100, 64);
    const { rows, chunkPoints, chunks, walBytes } = await stop(target);
    (results.get(name) ?? results.set(name, []).get(name)!).push(result);
    const line = `round ${r + 1} ${name}: ${Math.round(result.rate)} msg/s, p50 ${result.p50.toFixed(1)} ms, p99 ${result.p99.toFixed(1)} ms, p99.9 ${result.p999.toFixed(1)} ms, server CPU ${result.cpuUs.toFixed(2)} us/msg (main thread ${result.mainUs.toFixed(2)}, busiest other thread ${result.otherUs.toFixed(2)}, ${result.otherSystemUs.toFixed(2)} of it system)${rows === undefined ? '' : `, ${rows} points stored (${chunkPoints ?? 0} of them in ${chunks ?? 0} chunks), for ${2 * result.acked} points acknowledged (more are stored when commits outran their PUBACKs at the end), WAL file grew to ${(walBytes! / 2 ** 20).toFixed(0)} MiB`}`;
    lines.push(line);
    process.stderr.write(`${line}\n`);
  }
}
const median = (name: string, f: (r: Awaited<ReturnType<typeof load>>) => number) => {
  const xs = results.get(name)!.map(f).sort((a, b) => a - b);
  return xs[Math.floor(xs.length / 2)];
};
console.log(`| distinct ts, 100 devices × 64 in flight (median of ${rounds}) | msg/s | × aedes | p50 ms | p99 ms | p99 / aedes p99 | server CPU us/msg | main thread us/msg | writer (busiest other) thread us/msg |
|---|---|---|---|---|---|---|---|---|`);
for (const [name] of peers) {
  console.log(
    `| ${name} | ${Math.round(median(name, (r) => r.rate))} | ${(median(name, (r) => r.rate) / median('aedes', (r) => r.rate)).toFixed(2)} | ${median(name, (r) => r.p50).toFixed(1)} | ${median(name, (r) => r.p99).toFixed(1)} | ${(median(name, (r) => r.p99) / median('aedes', (r) => r.p99)).toFixed(2)} | ${median(name, (r) => r.cpuUs).toFixed(2)} | ${median(name, (r) => r.mainUs).toFixed(2)} | ${median(name, (r) => r.otherUs).toFixed(2)} |`,
  );
}
console.log(`\nRounds: ${lines.join('; ')}`);
process.exit(0);
