/**
 * The export's cost on the commit path as the server pays it (issue 16): each message parsed from its payload bytes
 * (telemetryPoints, as the MQTT path does), noted (OutboxBuilder.noteDevice) and queued in the group committer
 * (GroupCommitter.submitTo), then each batch decorated with
 * its outbox rows and "written" to a store that writes nothing (so only the main thread's JavaScript counts). CPU per
 * message (the batch's queueing and commit, its payloads made before the clock starts), with one rule exporting all
 * telemetry and with none: every build, with and without the rule, is loaded in one process and they take turns
 * batch by batch, so the machine's load falls on all alike; the export's cost is the rule's figure minus the no-rule
 * one. GC_BETWEEN=1 (with node --expose-gc) runs a minor GC between batches, untimed, so garbage left by one is not
 * collected in another's time (the export's own garbage is then left out too).
 * A batch is 39 of 100 devices x 64 messages (DEVICES_PER_COMMIT, MESSAGES_PER_DEVICE; about what bench/export/run.ts's
 * server commits at a time), each device's
 * messages one after another (one socket read's worth); INTERLEAVE=1 queues them round-robin across the devices
 * instead. VARYING=1: the values change from message to message. CHURN_BYTES=n: see below. A build whose
 * OutboxBuilder has a `collector()` (the enqueue-time packing tried in bench/RESULTS.md, "Data out: the outbox rows'
 * packing"; not kept) gets it wired to GroupCommitter.collector; `--dist dir#pass` runs such a build without it.
 *   node --import tsx bench/export/enqueue.ts [--batches 600] [--rounds 3] [--dist /tmp/before/dist --dist dist]
 */
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import type { CommitListener } from '../../src/core/api.ts';
import type { ExportRule } from '../../src/core/export/model.ts';
import type { ExportRules } from '../../src/core/export/rules.ts';
import type { Store } from '../../src/core/ports/store.ts';
import { benchDevices } from './bench-devices.ts';

const { values } = parseArgs({ options: { batches: { type: 'string', default: '600' }, rounds: { type: 'string', default: '3' }, dist: { type: 'string', multiple: true } } });
const BATCHES = Number(values.batches);
const WARMUP = 100;
const DEVICES_PER_COMMIT = Number(process.env.DEVICES_PER_COMMIT ?? 39);
const MESSAGES_PER_DEVICE = Number(process.env.MESSAGES_PER_DEVICE ?? 64);
const MESSAGES = DEVICES_PER_COMMIT * MESSAGES_PER_DEVICE;
const varying = process.env.VARYING === '1';
const interleave = process.env.INTERLEAVE === '1';
/** CHURN_BYTES=n: each message also writes n bytes of a 16 MiB ring (a server's socket reads, bodies and answers), so a batch's points leave the CPU's nearer caches before the commit as they do in a server. */
const CHURN_BYTES = Number(process.env.CHURN_BYTES ?? 0);
const churn = new Uint8Array(16 * 1024 * 1024);
let churnAt = 0;
const gc = (globalThis as { gc?: (options?: unknown) => void }).gc;

/** One build with or without the rule: its own committer and outbox; batch() queues and commits one batch. */
async function setup(label: string, exporting: boolean) {
  // `dir#pass`: that build without its collector, so its outbox packs each batch in one pass at commit.
  const [dist, variant] = label.split('#');
  const load = (path: string) => import(pathToFileURL(join(dist, `${path}.js`)).href);
  const { OutboxBuilder } = (await load('core/export/outbox')) as typeof import('../../src/core/export/outbox.ts');
  const { GroupCommitter } = (await load('core/group-commit')) as typeof import('../../src/core/group-commit.ts');
  const { telemetryPoints } = (await load('core/telemetry-json-bytes')) as typeof import('../../src/core/telemetry-json-bytes.ts');
  const rule: ExportRule = { id: 'c0ffee00-0000-4000-8000-000000000001', tenantId: 'tenant', name: 'bench', profileId: null, kinds: ['telemetry'], enabled: true, createdTime: 0, lanes: 16, destination: { type: 'webhook', url: 'http://127.0.0.1:1/', headers: {}, secret: null, batchSize: 1000, timeoutMs: 1000 } };
  const rules = { wants: (kind: string) => exporting && kind === 'telemetry', matching: () => (exporting ? [rule] : []) } as unknown as ExportRules;
  const outbox = new OutboxBuilder(rules, { full: false, skipped() {} });
  const state = { bytes: 0, ns: 0, batches: 0, decorateMs: 0, each: [] as number[] };
  const store = {
    writeBatch: async (batch: { outbox?: { points?: Buffer }[] }) => {
      for (const row of batch.outbox ?? []) state.bytes += row.points?.length ?? 0;
    },
  } as unknown as Store;
  const quiet = { info() {}, warn() {}, error() {}, debug() {} };
  const committer = new GroupCommitter(store, { maxRows: 1_000_000, maxDelayMs: 0, minIntervalMs: 0 }, quiet);
  const hooks = committer as unknown as { collector?: () => unknown; decorate?: (batch: unknown, collected?: unknown) => void };
  const builder = outbox as unknown as { collector?: () => unknown; decorate: (batch: unknown, collected?: unknown) => void };
  if (builder.collector && variant !== 'pass') hooks.collector = () => builder.collector!();
  hooks.decorate = (batch, collected) => {
    const t0 = process.cpuUsage();
    builder.decorate(batch, collected);
    const t = process.cpuUsage(t0);
    state.decorateMs += (t.user + t.system) / 1000;
  };
  const devices = benchDevices(100);
  const lastTs = devices.map(() => 1_700_000_000_000);
  // Each message's payload bytes, as they arrive in an MQTT PUBLISH (made before the clock starts).
  const tails = Array.from({ length: 35 }, (_, m) => `"values":{"temperature":${varying ? 21.5 + (m % 7) / 10 : 21.5},"humidity":${varying ? 40 + (m % 5) : 40}}}`);
  let committed = 0;
  let done: (() => void) | undefined;
  const listener: CommitListener = {
    committed() {
      if (++committed === MESSAGES) done?.();
    },
    failed(err) {
      throw err;
    },
  };
  const order: number[] = [];
  for (let i = 0; i < MESSAGES; i++) order.push(interleave ? i % DEVICES_PER_COMMIT : Math.floor(i / MESSAGES_PER_DEVICE));
  let b = 0;
  const batch = async (timed: boolean) => {
    const first = (b++ * DEVICES_PER_COMMIT) % devices.length;
    const who = order.map((d) => devices[(first + d) % devices.length]);
    const payloads = who.map((device, m) => Buffer.from(`{"ts":${++lastTs[devices.indexOf(device)]},${tails[m % tails.length]}`));
    committed = 0;
    const all = new Promise<void>((r) => (done = r));
    const cpu0 = process.cpuUsage();
    for (let m = 0; m < MESSAGES; m++) {
      const device = who[m];
      const points = telemetryPoints(payloads[m], device.deviceId, undefined);
      outbox.noteDevice(device, 'telemetry');
      committer.submitTo(points, listener);
      if (CHURN_BYTES > 0) {
        if (churnAt + CHURN_BYTES > churn.length) churnAt = 0;
        churn.fill(m & 255, churnAt, (churnAt += CHURN_BYTES));
      }
    }
    await all;
    const cpu = process.cpuUsage(cpu0);
    if (timed) {
      state.ns += (cpu.user + cpu.system) * 1000;
      state.each.push(((cpu.user + cpu.system) * 1000) / MESSAGES);
      state.batches++;
    }
  };
  return { dist: label, exporting, state, batch };
}

const dists = (values.dist ?? ['dist']).map((d) => resolve(d.split('#')[0]) + (d.includes('#') ? `#${d.split('#')[1]}` : ''));
const configs: Awaited<ReturnType<typeof setup>>[] = [];
for (const d of dists) for (const exporting of [true, false]) configs.push(await setup(d, exporting));
for (let w = 0; w < WARMUP; w++) for (const c of configs) await c.batch(false);
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const rounds: { dist: string; rule: number; none: number; extra: number; bytes: number; decorate: number }[][] = [];
for (let r = 0; r < Number(values.rounds); r++) {
  for (const c of configs) Object.assign(c.state, { ns: 0, batches: 0, bytes: 0, decorateMs: 0, each: [] });
  for (let i = 0; i < BATCHES; i++) {
    // Each batch the turn starts at another build and mode, so none always follows the same one.
    for (let j = 0; j < configs.length; j++) {
      if (process.env.GC_BETWEEN === '1') gc?.({ type: 'minor' });
      await configs[(i + j) % configs.length].batch(true);
    }
  }
  // Medians over the batches: a batch that lost its core or its caches to another process does not move them.
  const per = (c: (typeof configs)[number]) => median(c.state.each);
  rounds.push(dists.map((dist) => {
    const rule = configs.find((c) => c.dist === dist && c.exporting)!;
    const none = configs.find((c) => c.dist === dist && !c.exporting)!;
    return { dist, rule: per(rule), none: per(none), extra: median(rule.state.each.map((x, i) => x - none.state.each[i])), bytes: rule.state.bytes / (rule.state.batches * MESSAGES), decorate: (rule.state.decorateMs * 1e6) / (rule.state.batches * MESSAGES) };
  }));
}
console.log(`${new Date().toISOString()} ${DEVICES_PER_COMMIT} devices x ${MESSAGES_PER_DEVICE} messages a batch, ${varying ? 'values varying' : 'same values'}${interleave ? ', interleaved' : ''}${process.env.GC_BETWEEN === '1' ? ', minor GC between batches (not timed)' : ''}${CHURN_BYTES > 0 ? `, ${CHURN_BYTES} B of churn a message` : ''}; CPU ns a message (medians over the batches; extra: the rule's batch minus the no-rule batch of the same turn), ${BATCHES} batches a round`);
for (const [i, dist] of dists.entries()) {
  const rs = rounds.map((r) => r[i]);
  console.log(`${dist}: rule ${rs.map((r) => r.rule.toFixed(0)).join(', ')}; no rule ${rs.map((r) => r.none.toFixed(0)).join(', ')}; extra ${rs.map((r) => r.extra.toFixed(1)).join(', ')}; decorate (CPU) ${rs.map((r) => r.decorate.toFixed(1)).join(', ')}; outbox ${rs[0].bytes.toFixed(2)} B a message`);
}
