/**
 * Delivery's main-thread rendering alone (issue 16): the outbox rows of group commits as bench/export/run.ts's server
 * writes them (39 of 100 devices x 64 messages x 2 points a commit, each message its own ts, one ms apart per device;
 * VARYING=1 changes the values from message to message, else every message is the same), taken apart by lane
 * (messagesOf) and written into webhook bodies of up to 1,000 device messages (renderWebhookBody into a reused buffer,
 * as WebhookSink does), CPU ns per MQTT message. Each build runs in a process of its own, the builds alternating; the
 * bodies' SHA-256 must be the same in every build (the bytes delivered do not depend on the build).
 * SINK=1: the bodies are POSTed by the build's WebhookSink (4 at a time, as a round's lanes go) to a scanning
 * receiver (bench/export/receiver.ts), and the figures are the main thread's and the whole process's CPU per message
 * (the rest: V8's GC and compiler threads); the receiver's point count is checked.
 *   node --import tsx bench/export/deliver.ts [--commits 2000] [--rounds 3] [--dist /tmp/before/dist --dist dist]
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { createInterface } from 'node:readline';
import { createHash } from 'node:crypto';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import type { ExportMessage, ExportRule, OutboxRow } from '../../src/core/export/model.ts';
import type { ExportRules } from '../../src/core/export/rules.ts';
import type { TsPoint } from '../../src/core/model.ts';
import type { WriteBatch } from '../../src/core/ports/store.ts';
import { mainThreadCpuMs } from '../support/thread-cpu.ts';

const { values } = parseArgs({ options: { commits: { type: 'string', default: '2000' }, dist: { type: 'string', multiple: true }, child: { type: 'string' }, rounds: { type: 'string', default: '3' } } });
const COMMITS = Number(values.commits);
const DEVICES_PER_COMMIT = 39;
/** MESSAGES_PER_DEVICE: a device's messages in a commit (64 in run.ts's server). */
const MESSAGES_PER_DEVICE = Number(process.env.MESSAGES_PER_DEVICE ?? 64);
/** Commits whose rows one delivery round takes (each lane's rows of them, in seq order). */
const COMMITS_PER_ROUND = 40;

async function child(dist: string): Promise<void> {
  const load = (path: string) => import(pathToFileURL(join(dist, `${path}.js`)).href);
  const { OutboxBuilder } = (await load('core/export/outbox')) as typeof import('../../src/core/export/outbox.ts');
  const { messagesOf } = (await load('core/export/model')) as typeof import('../../src/core/export/model.ts');
  const { renderWebhookBody } = (await load('export/webhook-sink')) as typeof import('../../src/export/webhook-sink.ts');
  const { openExportSink } = (await load('export/open-sink')) as typeof import('../../src/export/open-sink.ts');
  const viaSink = process.env.SINK === '1';
  let receiverPort = 0;
  let receiverProcess: ChildProcess | undefined;
  if (viaSink) {
    receiverProcess = spawn(process.execPath, ['--import', 'tsx', 'bench/export/receiver.ts'], { env: { ...process.env, RECEIVER_MODE: 'scan' }, stdio: ['ignore', 'pipe', 'inherit'] });
    const [line] = (await once(createInterface({ input: receiverProcess.stdout! }), 'line')) as [string];
    receiverPort = (JSON.parse(line) as { port: number }).port;
  }
  const rule: ExportRule = { id: 'c0ffee00-0000-4000-8000-000000000001', tenantId: 'tenant', name: 'bench', profileId: null, kinds: ['telemetry'], enabled: true, createdTime: 0, lanes: 16, destination: { type: 'webhook', url: 'http://127.0.0.1:1/', headers: {}, secret: null, batchSize: 1000, timeoutMs: 1000 } };
  const rules = { wants: () => true, matching: () => [rule] } as unknown as ExportRules;
  const devices = Array.from({ length: 100 }, (_, i) => ({ deviceId: `0d1e2f30-4a5b-4c6d-8e9f-${String(i).padStart(12, '0')}`, deviceName: `bench-device-${i}`, tenantId: 'tenant', profileId: '7f000000-0000-4000-8000-000000000001', credentialsType: 'ACCESS_TOKEN' as const }));
  const outbox = new OutboxBuilder(rules, { full: false, skipped() {} });
  const varying = process.env.VARYING === '1';
  const lastTs = devices.map(() => 1_700_000_000_000);
  // One round's rows by lane (COMMITS_PER_ROUND commits), made once and delivered over and over (seqs as a store gives).
  const lanes = new Map<number, OutboxRow[]>();
  let seq = 1;
  for (let c = 0; c < COMMITS_PER_ROUND; c++) {
    const telemetry: TsPoint[] = [];
    for (let d = 0; d < DEVICES_PER_COMMIT; d++) {
      const i = (c * DEVICES_PER_COMMIT + d) % devices.length;
      outbox.noteDevice(devices[i], 'telemetry');
      for (let m = 0; m < MESSAGES_PER_DEVICE; m++) {
        const ts = ++lastTs[i];
        telemetry.push(
          { deviceId: devices[i].deviceId, ts, key: 'temperature', value: { type: 'DOUBLE', value: varying ? 21.5 + (m % 7) / 10 : 21.5 } },
          { deviceId: devices[i].deviceId, ts, key: 'humidity', value: { type: 'LONG', value: varying ? 40 + (m % 5) : 40 } },
        );
      }
    }
    const batch: WriteBatch = { telemetry, attributes: [] };
    outbox.decorate(batch);
    for (const entry of batch.outbox ?? []) {
      const rows = lanes.get(entry.partition) ?? [];
      rows.push({ ...entry, createdTime: 1_700_000_000_000 + c, seq: seq++ });
      lanes.set(entry.partition, rows);
    }
  }
  const spare: Buffer[] = [];
  let sink = viaSink ? openExportSink({ ...rule.destination, type: 'webhook', url: `http://127.0.0.1:${receiverPort}/hook`, timeoutMs: 30_000 } as ExportRule['destination']) : undefined;
  const hash = createHash('sha256');
  let check = true;
  /** One round: every lane's rows taken apart, then bodies of up to 1,000 device messages. */
  async function round(): Promise<void> {
    let messages: ExportMessage[] = [];
    const bodies: ExportMessage[][] = [];
    for (const rows of lanes.values()) {
      const lane: ExportMessage[] = [];
      for (const row of rows) for (const m of messagesOf(row, rule.name)) lane.push(m);
      if (messages.length + lane.length > 1000 && messages.length > 0) {
        bodies.push(messages);
        messages = [];
      }
      for (const m of lane) messages.push(m);
    }
    if (messages.length > 0) bodies.push(messages);
    const to = sink;
    if (to) {
      // Four requests at a time, as a round's lanes (DEFAULT_EXPORT_SETTINGS.concurrency).
      for (let i = 0; i < bodies.length; i += 4) await Promise.all(bodies.slice(i, i + 4).map((b) => to.deliver(b)));
      return;
    }
    for (const body of bodies) {
      const buf = await renderWebhookBody(body, 128 * 1024, spare.pop(), 1.25);
      if (check) hash.update(buf);
      spare.push(Buffer.from(buf.buffer, 0, buf.buffer.byteLength));
    }
  }
  if (sink) {
    // The bytes: one round rendered (the receiver gets the same bytes), then the rounds through the sink.
    const s = sink;
    sink = undefined;
    await round();
    sink = s;
  } else await round();
  check = false;
  const out: number[] = [];
  const main: number[] = [];
  const rounds = Math.ceil(COMMITS / COMMITS_PER_ROUND);
  const perRound = COMMITS_PER_ROUND * DEVICES_PER_COMMIT * MESSAGES_PER_DEVICE;
  for (let r = 0; r < Number(values.rounds) + 1; r++) {
    const t0 = process.cpuUsage();
    const m0 = mainThreadCpuMs();
    for (let i = 0; i < rounds; i++) await round();
    const u = process.cpuUsage(t0);
    const m = mainThreadCpuMs() - m0;
    if (r > 0) {
      // round 0: warm-up
      out.push(((u.user + u.system) * 1000) / (rounds * perRound));
      main.push((m * 1e6) / (rounds * perRound));
    }
  }
  if (sink && receiverProcess) {
    const stats = (await (await fetch(`http://127.0.0.1:${receiverPort}/stats`)).json()) as { points: number };
    const expected = (Number(values.rounds) + 1) * rounds * perRound * 2;
    if (stats.points !== expected) throw new Error(`the receiver counted ${stats.points} points, not ${expected}`);
    await sink.close();
    receiverProcess.kill();
  }
  process.stdout.write(`${JSON.stringify({ ns: out, main: viaSink ? main : [], sha: hash.digest('hex') })}\n`);
}

if (values.child) await child(values.child);
else {
  const dists = (values.dist ?? ['dist']).map((d) => resolve(d));
  const results = new Map<string, number[]>(dists.map((d) => [d, []]));
  const mains = new Map<string, number[]>(dists.map((d) => [d, []]));
  const shas = new Set<string>();
  for (let r = 0; r < 3; r++) {
    for (const d of dists) {
      const run = spawnSync(process.execPath, ['--import', 'tsx', 'bench/export/deliver.ts', '--child', d, '--commits', String(COMMITS), '--rounds', values.rounds!], { encoding: 'utf8' });
      if (run.status !== 0) throw new Error(run.stderr);
      const { ns, main, sha } = JSON.parse(run.stdout.trim().split('\n').at(-1)!) as { ns: number[]; main: number[]; sha: string };
      results.get(d)!.push(...ns);
      mains.get(d)!.push(...main);
      shas.add(sha);
    }
  }
  const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
  const shape = `${process.env.VARYING === '1' ? 'values varying' : 'same values'}, ${MESSAGES_PER_DEVICE} messages a device and commit`;
  for (const [d, ns] of results) {
    if (process.env.SINK === '1') {
      const main = mains.get(d)!;
      console.log(`${d}: messagesOf + body + POST: main thread ${median(main).toFixed(1)} ns a message (median; ${main.map((x) => x.toFixed(0)).join(', ')}), process ${median(ns).toFixed(1)} (${ns.map((x) => x.toFixed(0)).join(', ')}); ${shape}`);
    } else console.log(`${d}: messagesOf + body ${median(ns).toFixed(1)} ns a message (median; ${ns.map((x) => x.toFixed(0)).join(', ')}); ${shape}`);
  }
  console.log(shas.size === 1 ? `bodies identical in every build (sha256 ${[...shas][0].slice(0, 16)}…)` : `BODIES DIFFER between builds: ${[...shas].join(', ')}`);
  if (shas.size !== 1) process.exitCode = 1;
}
