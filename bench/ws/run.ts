/**
 * WebSocket fan-out benchmark: 1,000 sockets, each subscribed to one device's latest telemetry, while the MQTT
 * telemetry load of bench/mqtt runs against the same 1,000 devices. Alternates rounds without and with subscribers
 * on one server, so the cost to ingestion is measured in the same run.
 *   node --import tsx bench/ws/run.ts [--rounds 4] [--duration 5000] [--devices 1000] [--window 8] [--rate N]
 * --rate N offers a fixed N msg/s (each device `window` publishes per tick) instead of saturating the server: as long
 * as the server keeps up (check the msg/s printed), the two phases then compare at the same batch sizes. On the shared
 * machine it did not keep up with 20,000 msg/s, so bench/RESULTS.md quotes bench/ws/fanout-sockets.ts instead.
 * FLEETGATE_* variables configure the server (e.g. FLEETGATE_WS_UPDATE_INTERVAL_MS); BENCH_WS_CLIENT=ws runs the
 * subscribers on the `ws` package instead of raw sockets; BENCH_ONLY=with|without and BENCH_SERVER_FLAGS (e.g.
 * "--cpu-prof --cpu-prof-dir=/tmp/prof") profile one phase.
 * Prints a markdown section for bench/RESULTS.md. The headline cost is computed from CPU per message of every process
 * the benchmark runs (see the comment at the table): the measured rates are printed too, but scatter with the machine.
 */
import { fork, spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { createInterface } from 'node:readline';
import { parseArgs } from 'node:util';
import { NODE_FLAGS } from '../../bin/node-flags.js';
import { telemetryAtRate, telemetryRate } from '../mqtt/load.ts';

const { values } = parseArgs({
  options: { rounds: { type: 'string', default: '4' }, duration: { type: 'string', default: '5000' }, devices: { type: 'string', default: '1000' }, window: { type: 'string', default: '8' }, rate: { type: 'string', default: '0' } },
});
const rounds = Number(values.rounds);
const duration = Number(values.duration);
const devices = Number(values.devices);
const window = Number(values.window);
/** --rate N: open-loop load of N msg/s (each device `window` publishes per tick) instead of the saturating one. */
const rate = Number(values.rate);
const load = (): Promise<number & { cpuUsPerMsg?: number; loadCpuUsPerMsg?: number }> =>
  rate > 0 ? telemetryAtRate(mqttPort, tokens, duration, window, (devices * window * 1000) / rate, server.pid) : telemetryRate(mqttPort, tokens, duration, window, server.pid);

const server = spawn(process.execPath, [...NODE_FLAGS, ...(process.env.BENCH_SERVER_FLAGS ?? '').split(' ').filter(Boolean), '--import', 'tsx', 'bench/mqtt/fleetgate-server.ts'], {
  env: { ...process.env, BENCH_DEVICES: String(devices), FLEETGATE_WS_MAX_SESSIONS_PER_USER: String(devices + 10) },
  stdio: ['ignore', 'pipe', 'inherit'],
});
const [line] = (await once(createInterface({ input: server.stdout! }), 'line')) as [string];
const { mqttPort, httpPort } = JSON.parse(line) as { mqttPort: number; httpPort: number };
const http = `http://127.0.0.1:${httpPort}`;
const login = await fetch(`${http}/api/auth/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ username: 'bench@local', password: 'bench-password' }) });
const { token } = (await login.json()) as { token: string };
const list = await fetch(`${http}/api/tenant/devices?pageSize=${devices + 10}&page=0`, { headers: { 'x-authorization': `Bearer ${token}` } });
const byName = new Map(((await list.json()) as { data: { name: string; id: { id: string } }[] }).data.map((d) => [d.name, d.id.id]));
const deviceIds = Array.from({ length: devices }, (_, i) => byName.get(`bench-device-${i}`)!);
const tokens = Array.from({ length: devices }, (_, i) => `bench-${i}`);

/** Sends an IPC request to the subscriber process and waits for the answer with the same key. */
async function ask<T>(child: ChildProcess, message: Record<string, unknown>, answer: string): Promise<T> {
  const reply = new Promise<T>((resolve) => {
    const on = (m: any) => {
      if (answer in m) (child.off('message', on), resolve(m[answer] as T));
    };
    child.on('message', on);
  });
  child.send(message);
  return reply;
}

async function metric(name: string): Promise<number> {
  const text = await (await fetch(`${http}/metrics`)).text();
  return Number(new RegExp(`^${name} (\\S+)$`, 'm').exec(text)?.[1] ?? 0);
}

/** Server-side commit-to-socket latency quantile from the histogram delta (upper bound of the bucket). */
async function histogram(): Promise<Map<number, number>> {
  const text = await (await fetch(`${http}/metrics`)).text();
  const out = new Map<number, number>();
  for (const m of text.matchAll(/^fleetgate_ws_update_latency_seconds_bucket\{le="([^"]+)"\} (\d+)$/gm)) out.set(m[1] === '+Inf' ? Infinity : Number(m[1]), Number(m[2]));
  return out;
}
function quantile(before: Map<number, number>, after: Map<number, number>, q: number): string {
  const total = (after.get(Infinity) ?? 0) - (before.get(Infinity) ?? 0);
  for (const [le, n] of after) if (n - (before.get(le) ?? 0) >= q * total) return le === Infinity ? '> 2.5 s' : `<= ${le * 1000} ms`;
  return 'n/a';
}

const subscribers = fork('bench/ws/subscribers.ts', [], { execArgv: ['--import', 'tsx'], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
const lines: string[] = [];
const log = (l: string) => (lines.push(l), process.stderr.write(`${l}\n`));
const without: number[] = [];
const withSubs: number[] = [];
let delivered = { frames: 0, points: 0, seconds: 0 };
const clientP50: number[] = [];
const clientCpu: number[] = []; // the subscriber process's CPU, % of one core
const clientP99: number[] = [];
let serverQ = { p50: '', p99: '' };
let updateInterval = 0;
const costs: number[] = [];
const cpuWithout: number[] = [];
const cpuWith: number[] = [];
/** CPU per ingested message of everything the benchmark runs (server + load generator + subscriber client), us. */
const machineWithout: number[] = [];
const machineWith: number[] = [];
async function withoutSubscribers(r: number): Promise<number> {
  const base = await load();
  without.push(+base);
  cpuWithout.push(base.cpuUsPerMsg!);
  machineWithout.push(base.cpuUsPerMsg! + (base.loadCpuUsPerMsg ?? NaN));
  log(`round ${r + 1} without subscribers: ${Math.round(base)} msg/s, server CPU ${base.cpuUsPerMsg!.toFixed(2)} us/msg`);
  return +base;
}
async function withSubscribers(r: number): Promise<number> {
  await ask(subscribers, { open: { url: `ws://127.0.0.1:${httpPort}/api/ws`, token, deviceIds } }, 'ready');
  await ask(subscribers, { reset: true }, 'reset');
  const h0 = await histogram();
  const t0 = process.hrtime.bigint();
  const loaded = await load();
  const seconds = Number(process.hrtime.bigint() - t0) / 1e9; // includes the 1 s warm-up of telemetryRate
  const report = await ask<{ frames: number; points: number; p50: number; p99: number; cpuMs: number }>(subscribers, { report: true }, 'report');
  const h1 = await histogram();
  updateInterval = await metric('fleetgate_ws_update_interval_seconds'); // the frame budget's interval at the end of the phase
  withSubs.push(+loaded);
  cpuWith.push(loaded.cpuUsPerMsg!);
  // The subscriber process's CPU since its reset (the load's warm-up second included) per message of the same span.
  const subscriberUsPerMsg = (report.cpuMs * 1000) / (+loaded * seconds);
  machineWith.push(loaded.cpuUsPerMsg! + (loaded.loadCpuUsPerMsg ?? NaN) + subscriberUsPerMsg);
  delivered = { frames: delivered.frames + report.frames, points: delivered.points + report.points, seconds: delivered.seconds + seconds };
  clientCpu.push(report.cpuMs / 10 / seconds);
  clientP50.push(report.p50);
  clientP99.push(report.p99);
  serverQ = { p50: quantile(h0, h1, 0.5), p99: quantile(h0, h1, 0.99) };
  log(`round ${r + 1} with ${devices} subscribers: ${Math.round(loaded)} msg/s, server CPU ${loaded.cpuUsPerMsg!.toFixed(2)} us/msg; ${Math.round(report.frames / seconds)} frames/s, ~${Math.round(report.points / seconds)} points/s delivered; point-to-client p50 ${report.p50} ms p99 ${report.p99} ms; subscriber process CPU ${(report.cpuMs / 10 / seconds).toFixed(0)}% of a core; update interval ${updateInterval * 1000} ms; commit-to-socket p50 ${serverQ.p50}, p99 ${serverQ.p99}`);
  await ask(subscribers, { close: true }, 'closed');
  for (let i = 0; i < 200 && (await metric('fleetgate_ws_sessions_open')) > 0; i++) await new Promise((res) => setTimeout(res, 50));
  return +loaded;
}
// Rounds alternate which phase goes first, so a drift in the machine's load does not favour one side.
const only = process.env.BENCH_ONLY; // 'with' or 'without': one phase only (for profiling the server)
for (let r = 0; r < rounds && only; r++) await (only === 'with' ? withSubscribers(r) : withoutSubscribers(r));
for (let r = 0; r < rounds && !only; r++) {
  let a: number;
  let b: number;
  if (r % 2 === 0) {
    a = await withoutSubscribers(r);
    b = await withSubscribers(r);
  } else {
    b = await withSubscribers(r);
    a = await withoutSubscribers(r);
  }
  costs.push((a - b) / a);
}
const published = await metric('fleetgate_live_updates_published_total');
subscribers.kill();
server.kill('SIGTERM');
await once(server, 'exit');

/** The median; of an even count, the mean of the two middle values. */
const median = (xs: number[]) => {
  const sorted = [...xs].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 === 1 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
};
const pct = (x: number) => `${(x * 100).toFixed(1)}%`;
if (only) process.exit(0);
const w0 = median(without);
const w1 = median(withSubs);
// Headline: on a saturated 2-core machine the ingestion rate is the cores' time divided by the CPU every process
// spends per message, so the cost of the subscribers to the rate is 1 - (CPU per message without) / (CPU per message
// with), all processes counted. CPU per message does not move with how the scheduler shares the cores among this
// benchmark and anything else running, where the measured rates do (they scatter by +-10 points even on a quiet
// machine); it is paired per round (both phases back to back) and the median of the rounds is taken.
const machineCosts = machineWithout.map((w, r) => 1 - w / machineWith[r]);
const serverCosts = cpuWithout.map((w, r) => 1 - w / cpuWith[r]);
const geomean = (xs: number[]) => Math.exp(xs.reduce((a, x) => a + Math.log(x), 0) / xs.length);
console.log(`Server: wsUpdateIntervalMs = ${process.env.FLEETGATE_WS_UPDATE_INTERVAL_MS ?? '(default)'}, wsMaxUpdateFramesPerSecond = ${process.env.FLEETGATE_WS_MAX_UPDATE_FRAMES_PER_SECOND ?? '(default)'}.

| Measure | Value |
|---|---|
| **Cost to ingestion (headline): from CPU per message of server + load generator + subscriber client, median of the paired rounds** | **${pct(median(machineCosts))}** (rounds: ${machineCosts.map(pct).join(', ')}) |
| CPU per message, all processes, without / with subscribers (median) | ${median(machineWithout).toFixed(2)} us / ${median(machineWith).toFixed(2)} us |
| Cost from the server's CPU per message alone (the cost if the server alone were the bottleneck), median of paired rounds | ${pct(median(serverCosts))} (rounds: ${serverCosts.map(pct).join(', ')}) |
| Measured throughput cost, over all rounds (geometric means of the phases' rates; with alternating order, drift cancels) | ${pct(1 - geomean(withSubs) / geomean(without))} |
| MQTT QoS 1 telemetry, ${devices} devices (window ${window}), no WebSocket subscribers, msg/s (median of ${rounds}) | ${Math.round(w0)} |
| Same, with ${devices} sockets each subscribed to one device's latest telemetry, msg/s | ${Math.round(w1)} |
| Measured throughput cost, median of the per-round paired costs (each round's two phases back to back) | ${pct(median(costs))} (rounds: ${costs.map(pct).join(', ')}) |
| Measured throughput cost from the medians above | ${pct((w0 - w1) / w0)} |
| Server CPU per ingested message without / with subscribers (median) | ${median(cpuWithout).toFixed(2)} us / ${median(cpuWith).toFixed(2)} us (+${(((median(cpuWith) - median(cpuWithout)) / median(cpuWithout)) * 100).toFixed(0)}%) |
| WebSocket frames delivered per second (all sockets) | ${Math.round(delivered.frames / delivered.seconds)} |
| Data points delivered per second | ${Math.round(delivered.points / delivered.seconds)} |
| Subscriber process (the 1,000 sockets' client, same cores) CPU, % of one core (median) | ${median(clientCpu).toFixed(0)}% (${process.env.BENCH_WS_CLIENT === 'ws' ? '\`ws\` package' : 'raw sockets'}) |
| Point ts (server, before commit) to client arrival, p50 / p99 (median of rounds) | ${median(clientP50)} ms / ${median(clientP99)} ms |
| Commit to socket (server histogram, last round) p50 / p99 | ${serverQ.p50} / ${serverQ.p99} |
| Update interval at the end of the last "with" phase (fleetgate_ws_update_interval_seconds; 0 = not reported) | ${updateInterval * 1000} ms |
| Live-update bus messages published (whole run) | ${published} |

Rounds: ${lines.join('; ')}`);
process.exit(0);
