/**
 * Data-out benchmark (issue 16): MQTT QoS 1 telemetry with a distinct ts on every message (every point a stored row),
 * 100 devices, with no export rule and with one rule exporting all telemetry to a local webhook receiver (a bare
 * node:http process), alternating rounds.
 *   node --import tsx bench/export/run.ts [--rounds 2] [--duration 8000] [--receiver parse|scan]
 * --receiver: `parse` (the default) JSON.parses every body it counts; `scan` counts points by scanning the bytes
 * (exact for this load's numbers-only values; its first bodies are also parsed and must agree): a receiver on another
 * machine costs this machine nothing, and the parsing one takes ~0.8 s of CPU per 8 s round from the same two cores.
 * BENCH_SERVER_NODE_ARGS adds node flags to the server process (e.g. "--cpu-prof --cpu-prof-dir=/tmp/prof").
 * --dist DIR (repeatable) runs a compiled build's dist/ (`node scripts/build.mjs --force`) instead of src/ through tsx;
 * with several, each round runs every build (no rule, then the rule) in turn, and the figures are given per build:
 *   node --import tsx bench/export/run.ts --rounds 3 --receiver scan --dist /tmp/before/dist --dist dist
 * The by-thread line names the busiest thread after the main one `writer` (the SQLite writer thread) and sums the
 * other `node` threads (the WAL checkpointer, V8's GC and compiler helpers); THREADS=1 prints each thread's figure.
 * Reports ingestion (acknowledged msg/s), its slowdown with the rule, and the export rate: points the receiver got per
 * second while the load ran, over points acknowledged per second; then how long the outbox took to drain.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { createInterface } from 'node:readline';
import { readdirSync, readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { NODE_FLAGS } from '../../bin/node-flags.js';
import { distinctTsTelemetry } from './load.ts';
import { cpuSeconds } from '../mqtt/load.ts';

const { values } = parseArgs({
  options: { rounds: { type: 'string', default: '2' }, duration: { type: 'string', default: '8000' }, receiver: { type: 'string', default: 'parse' }, dist: { type: 'string', multiple: true } },
});
/** The builds to run (undefined: src/ through tsx, or what BENCH_DIST_DIR / BENCH_FROM_DIST say). */
const builds: (string | undefined)[] = values.dist?.map((d) => resolve(d)) ?? [undefined];
const rounds = Number(values.rounds);
const duration = Number(values.duration);
const DEVICES = 100;
const POINTS_PER_MESSAGE = 2;
if (values.receiver !== 'parse' && values.receiver !== 'scan') throw new Error('--receiver is parse or scan');

/** CPU seconds of each thread of `pid`, by thread id, with its name (the main thread is the one whose id is `pid`). */
function threadCpu(pid: number): Map<string, { name: string; s: number }> {
  const out = new Map<string, { name: string; s: number }>();
  for (const tid of readdirSync(`/proc/${pid}/task`)) {
    try {
      const stat = readFileSync(`/proc/${pid}/task/${tid}/stat`, 'utf8');
      const name = Number(tid) === pid ? 'main' : stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')'));
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      out.set(tid, { name, s: (Number(fields[11]) + Number(fields[12])) / 100 });
    } catch {
      /* the thread ended */
    }
  }
  return out;
}

/**
 * CPU µs per message by thread name between two threadCpu snapshots (threads of one name summed). The busiest thread
 * besides the main one is named `writer`: the SQLite writer thread (its name is `node`, as are the checkpointer's and
 * V8's helper threads, which are summed as `node`).
 */
function threadUs(before: Map<string, { name: string; s: number }>, after: Map<string, { name: string; s: number }>, messages: number): Record<string, number> {
  const out: Record<string, number> = {};
  const used = [...after].map(([tid, { name, s }]) => ({ name, us: ((s - (before.get(tid)?.s ?? 0)) * 1e6) / messages }));
  const busiest = used.filter((t) => t.name !== 'main').sort((a, b) => b.us - a.us)[0];
  if (busiest) busiest.name = 'writer';
  for (const { name, us } of used) out[name] = (out[name] ?? 0) + us;
  // THREADS=1: every thread's figure, busiest first (which of the `node` threads the rule makes busier).
  if (process.env.THREADS) console.error(used.sort((a, b) => b.us - a.us).filter((t) => t.us >= 0.005).map((t) => `${t.name} ${t.us.toFixed(3)}`).join(', '));
  return out;
}

async function child(args: string[], env: NodeJS.ProcessEnv = {}): Promise<{ child: ChildProcess; info: Record<string, number> }> {
  const c = spawn(process.execPath, args, { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'inherit'] });
  // The first line that is a JSON object (V8 tracing flags in BENCH_SERVER_NODE_ARGS print to stdout too).
  const line = await new Promise<string>((resolve, reject) => {
    createInterface({ input: c.stdout! }).on('line', (l) => l.startsWith('{') && resolve(l)); // later lines read and dropped
    c.once('exit', (code) => reject(new Error(`${args.join(' ')} exited (${code}) before it was ready`)));
  });
  return { child: c, info: JSON.parse(line) };
}

async function stop(c: ChildProcess): Promise<void> {
  c.kill('SIGTERM');
  await once(c, 'exit');
}

const receiverStats = async (port: number) => (await (await fetch(`http://127.0.0.1:${port}/stats`)).json()) as { points: number; posts: number };

async function round(exporting: boolean, dist: string | undefined) {
  const receiver = await child(['--import', 'tsx', 'bench/export/receiver.ts'], { RECEIVER_MODE: values.receiver });
  const env: NodeJS.ProcessEnv = exporting ? { BENCH_EXPORT_URL: `http://127.0.0.1:${receiver.info.port}/hook`, BENCH_DEVICES: String(DEVICES) } : { BENCH_DEVICES: String(DEVICES) };
  if (dist) env.BENCH_DIST_DIR = dist;
  const extra = process.env.BENCH_SERVER_NODE_ARGS?.split(' ').filter(Boolean) ?? [];
  const server = await child([...NODE_FLAGS, ...extra, '--import', 'tsx', 'bench/mqtt/fleetgate-server.ts'], env);
  const tokens = Array.from({ length: DEVICES }, (_, i) => `bench-${i}`);
  const before = (await receiverStats(receiver.info.port)).points;
  const cpu0 = { server: cpuSeconds(server.child.pid!), receiver: cpuSeconds(receiver.child.pid!) };
  const threads0 = threadCpu(server.child.pid!);
  const load = distinctTsTelemetry(server.info.mqttPort, tokens, duration);
  // Count what the receiver got over the same window as the load (1 s warm-up first).
  await new Promise((r) => setTimeout(r, 1000));
  const atStart = (await receiverStats(receiver.info.port)).points;
  const { rate, acked } = await load;
  const serverUs = ((cpuSeconds(server.child.pid!) - cpu0.server) * 1e6) / acked;
  const byThread = threadUs(threads0, threadCpu(server.child.pid!), acked);
  const receiverCpu = cpuSeconds(receiver.child.pid!) - cpu0.receiver;
  const atEnd = (await receiverStats(receiver.info.port)).points;
  const exportRate = (atEnd - atStart) / (duration / 1000);
  let drainMs = 0;
  if (exporting) {
    const t0 = Date.now();
    while ((await receiverStats(receiver.info.port)).points - before < acked * POINTS_PER_MESSAGE && Date.now() - t0 < 120_000) await new Promise((r) => setTimeout(r, 100));
    drainMs = Date.now() - t0;
  }
  const { points: got, posts } = await receiverStats(receiver.info.port);
  const exported = got - before;
  await stop(server.child);
  await stop(receiver.child);
  return { rate, acked, exportRate, drainMs, exported, posts, serverUs, receiverCpu, byThread };
}

type Round = Awaited<ReturnType<typeof round>>;
const byBuild = builds.map(() => ({ none: [] as Round[], withRule: [] as Round[] }));
for (let i = 0; i < rounds; i++) {
  for (let b = 0; b < builds.length; b++) {
    byBuild[b].none.push(await round(false, builds[b]));
    byBuild[b].withRule.push(await round(true, builds[b]));
  }
}
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
function report(none: Round[], withRule: Round[]): void {
  const base = median(none.map((r) => r.rate));
  const ruled = median(withRule.map((r) => r.rate));
  const share = median(withRule.map((r) => r.exportRate / (r.rate * POINTS_PER_MESSAGE)));
  console.log(`| rounds | ${rounds} x ${duration} ms, ${DEVICES} devices, QoS 1, distinct ts per message (${POINTS_PER_MESSAGE} points each); receiver ${values.receiver === 'scan' ? 'scanning bodies (no JSON.parse)' : 'parsing bodies (JSON.parse)'} |`);
  console.log(`| ingestion, no rule | ${Math.round(base)} msg/s (${none.map((r) => Math.round(r.rate)).join(', ')}) |`);
  console.log(`| ingestion, one rule exporting all telemetry | ${Math.round(ruled)} msg/s (${withRule.map((r) => Math.round(r.rate)).join(', ')}) |`);
  console.log(`| slowdown | ${((1 - ruled / base) * 100).toFixed(1)}% |`);
  console.log(`| export rate / ingestion rate (points) | ${share.toFixed(2)} (${withRule.map((r) => (r.exportRate / (r.rate * POINTS_PER_MESSAGE)).toFixed(2)).join(', ')}) |`);
  console.log(`| outbox drained after the load stopped | ${withRule.map((r) => `${(r.drainMs / 1000).toFixed(1)} s`).join(', ')} |`);
  console.log(`| points exported / acknowledged | ${withRule.map((r) => `${r.exported}/${r.acked * POINTS_PER_MESSAGE} (${r.posts} POSTs)`).join(', ')} |`);
  console.log(`| server CPU per acknowledged message, no rule / with the rule | ${median(none.map((r) => r.serverUs)).toFixed(2)} / ${median(withRule.map((r) => r.serverUs)).toFixed(2)} µs (+${((median(withRule.map((r) => r.serverUs)) / median(none.map((r) => r.serverUs)) - 1) * 100).toFixed(1)}%) |`);
  console.log(`| receiver CPU during the load (same 2 cores) | ${withRule.map((r) => `${r.receiverCpu.toFixed(1)} s (${((r.receiverCpu * 1e6) / r.acked).toFixed(2)} µs a message)`).join(', ')} |`);
  const names = [...new Set([...none, ...withRule].flatMap((r) => Object.keys(r.byThread)))].filter((n) => median(withRule.map((r) => r.byThread[n] ?? 0)) + median(none.map((r) => r.byThread[n] ?? 0)) >= 0.05);
  console.log(`| server CPU per message by thread, no rule / with the rule (µs) | ${names.map((n) => `${n} ${median(none.map((r) => r.byThread[n] ?? 0)).toFixed(2)} / ${median(withRule.map((r) => r.byThread[n] ?? 0)).toFixed(2)}`).join('; ')} |`);
}
for (let b = 0; b < builds.length; b++) {
  if (builds.length > 1 || builds[b]) console.log(`build ${builds[b] ?? 'src'}:`);
  report(byBuild[b].none, byBuild[b].withRule);
}
