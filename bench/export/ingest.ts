/**
 * The export's cost on the ingest side alone (issue 16): what a telemetry commit pays for one rule exporting all
 * telemetry — noting each message's device, building the commit's outbox rows (OutboxBuilder.decorate), sending them
 * with the commit to the SQLite writer thread and inserting them — as CPU per message of the main thread and of the
 * writer thread, with the rule and without. Delivery's SQL without its HTTP: every DELIVER_EVERY commits (default
 * 10; 0: never, the outbox only grows) each lane is claimed, read and its rows deleted in one transaction on the main
 * thread's connection, as delivery rounds do, so the outbox stays as small as in bench/export/run.ts; the main
 * thread's CPU in that (process CPU while it runs, no commit in flight) is reported apart and left out of `main`.
 * Each run is a fresh process on a fresh database; the runs alternate rule / no rule and, with several `--dist`, the
 * builds. BUSY_MS=n keeps the event loop busy in tasks of n ms while a commit is out (a server's socket reads), for the
 * commit's latency (its last column; the CPU columns then hold the spinning too). NO_REMEMBER=1: the rows written are
 * not kept for delivery (ExportDelivery.remember), which then reads them from the database.
 *   node --import tsx bench/export/ingest.ts [--rounds 3] [--commits 240] [--dist /tmp/before/dist --dist dist]
 * `--dist` is a compiled build's dist/ directory (`node scripts/build.mjs --force`); default: this tree's dist/.
 * A commit is 39 of 100 devices x 64 messages x 2 points (DEVICES_PER_COMMIT, MESSAGES_PER_DEVICE), every message
 * its own ts: about what bench/export/run.ts's closed-loop load (64 messages in flight per device) commits at a time. Main thread and writer CPU are read from /proc (10 ms ticks): runs of 600,000
 * messages resolve ~0.02 µs a message.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { PerformanceObserver, constants } from 'node:perf_hooks';
import { benchDevices } from './bench-devices.ts';

const { values } = parseArgs({
  options: {
    rounds: { type: 'string', default: '3' },
    commits: { type: 'string', default: '240' },
    dist: { type: 'string', multiple: true },
    child: { type: 'string' },
    rule: { type: 'boolean', default: false },
  },
});
const COMMITS = Number(values.commits);
const WARMUP = 40;
const DEVICES = 100;
/** Devices of one commit and messages of each: a closed-loop device (64 in flight) lands in a commit with a run of its own. */
const DEVICES_PER_COMMIT = Number(process.env.DEVICES_PER_COMMIT ?? 39);
const MESSAGES_PER_DEVICE = Number(process.env.MESSAGES_PER_DEVICE ?? 64);
const DELIVER_EVERY = Number(process.env.DELIVER_EVERY ?? 10);
const BUSY_MS = Number(process.env.BUSY_MS ?? 0);

interface Result {
  main: number;
  writer: number;
  decorate: number;
  outboxBytes: number;
  /** Delivery's SQL (claim, read, delete), process CPU while it ran. */
  deliverSql: number;
  /** The process's other threads (V8's GC and compiler helpers, the checkpointer), delivery's SQL left out. */
  other: number;
  /** Garbage collections a million messages: scavenges and mark-compacts. */
  minor: number;
  major: number;
  /** Median wall time of a commit (store.writeBatch), ms: a round trip to the writer thread more or less shows here. */
  commitMs: number;
}

const mainThreadCpuMs = (): number => {
  const fields = readFileSync(`/proc/self/task/${process.pid}/stat`, 'utf8').split(') ')[1].split(' ');
  return (Number(fields[11]) + Number(fields[12])) * 10;
};

/** One run in this process: the build at `dist`, with or without the rule; prints its Result as JSON. */
async function child(dist: string, exporting: boolean): Promise<void> {
  const load = (path: string) => import(pathToFileURL(join(dist, `${path}.js`)).href);
  const { openSqliteStore } = (await load('store/sqlite')) as typeof import('../../src/store/sqlite.ts');
  const { SqliteWriterThread } = (await load('store/sqlite-writer-thread')) as typeof import('../../src/store/sqlite-writer-thread.ts');
  const { ExportRules } = (await load('core/export/rules')) as typeof import('../../src/core/export/rules.ts');
  const { OutboxBuilder } = (await load('core/export/outbox')) as typeof import('../../src/core/export/outbox.ts');
  const { ExportDelivery, DEFAULT_EXPORT_SETTINGS } = (await load('core/export/delivery')) as typeof import('../../src/core/export/delivery.ts');
  const writerCpuMs = async () => {
    let ms = 0;
    for (const t of SqliteWriterThread.open) ms += Math.max(0, await t.cpuMs());
    return ms;
  };
  const dir = mkdtempSync(join(tmpdir(), 'fleetgate-export-ingest-'));
  const store = await openSqliteStore(join(dir, 'bench.db'), { synchronous: 'normal' });
  const rules = new ExportRules(store, async () => true, async () => {});
  const quiet = { info() {}, warn() {}, error() {}, debug() {} };
  // Delivery is never started: it is only the outbox's budget and the memory of written rows, as in the server.
  const delivery = new ExportDelivery(store, rules, () => {
    throw new Error('no delivery in this benchmark');
  }, DEFAULT_EXPORT_SETTINGS, quiet);
  const outbox = new OutboxBuilder(rules, delivery);
  // Its memory of the rows written (read instead of the database, forgotten once delivered), as its rounds use it.
  const remembered = delivery as unknown as { writtenRow(seq: number): import('../../src/core/export/model.ts').OutboxRow | undefined; forget(rows: unknown[]): void };
  if (exporting) {
    await rules.save('tenant', { name: 'bench', kinds: ['telemetry'], destination: { type: 'webhook', url: 'http://127.0.0.1:9/hook', batchSize: 1000 } });
    await rules.reload();
  }
  const devices = benchDevices(DEVICES);
  const lastTs = devices.map(() => 1_700_000_000_000);
  let main0 = 0;
  let writer0 = 0;
  let decorateMs = 0;
  let outboxBytes = 0;
  let deliverUs = 0;
  const commitMs: number[] = [];
  let process0 = process.cpuUsage();
  const gc = { minor: 0, major: 0 };
  new PerformanceObserver((list) => {
    for (const e of list.getEntries()) {
      const kind = (e as unknown as { detail?: { kind?: number } }).detail?.kind;
      if (kind === constants.NODE_PERFORMANCE_GC_MINOR) gc.minor++;
      else if (kind === constants.NODE_PERFORMANCE_GC_MAJOR) gc.major++;
    }
  }).observe({ entryTypes: ['gc'] });
  /** Delivery's SQL for every lane with rows (ExportDelivery's calls, minus the HTTP and the rendering). */
  const deliverSql = async () => {
    const lanes = await store.exports.claimLanes('bench-node', Date.now(), 30_000, 16);
    const batches = [];
    const read = [];
    for (const lane of lanes) {
      const rows = await store.exports.readOutbox(lane.ruleId, lane.partition, 1_000_000, (seq) => remembered.writtenRow(seq));
      batches.push({ ruleId: lane.ruleId, partition: lane.partition, seqs: rows.map((r) => r.seq) });
      read.push(...rows);
    }
    if (batches.length > 0) await store.exports.completeBatches('bench-node', batches);
    remembered.forget(read);
  };
  for (let c = 1; c <= WARMUP + COMMITS; c++) {
    if (c === WARMUP + 1) {
      main0 = mainThreadCpuMs();
      writer0 = await writerCpuMs();
      decorateMs = 0;
      outboxBytes = 0;
      deliverUs = 0;
      process0 = process.cpuUsage();
      gc.minor = gc.major = 0;
    }
    const telemetry: import('../../src/core/model.ts').TsPoint[] = [];
    for (let d = 0; d < DEVICES_PER_COMMIT; d++) {
      const i = (c * DEVICES_PER_COMMIT + d) % DEVICES;
      const device = devices[i];
      for (let m = 0; m < MESSAGES_PER_DEVICE; m++) {
        const ts = ++lastTs[i];
        outbox.noteDevice(device, 'telemetry');
        telemetry.push({ deviceId: device.deviceId, ts, key: 'temperature', value: { type: 'DOUBLE', value: 21.5 } }, { deviceId: device.deviceId, ts, key: 'humidity', value: { type: 'LONG', value: 40 } });
      }
    }
    const batch: import('../../src/core/ports/store.ts').WriteBatch = { telemetry, attributes: [] };
    const t0 = performance.now();
    outbox.decorate(batch);
    decorateMs += performance.now() - t0;
    const w0 = performance.now();
    // BUSY_MS: while the commit is out, the event loop runs tasks of that many ms (a server's MQTT reads), so an answer
    // from the writer thread waits for the task it arrives during (the CPU figures then hold the spinning too).
    let committed = false;
    const spin = () => {
      if (committed) return;
      const t = performance.now();
      while (performance.now() - t < BUSY_MS);
      setImmediate(spin);
    };
    if (BUSY_MS > 0) setImmediate(spin);
    await store.writeBatch(batch);
    committed = true;
    if (c > WARMUP) commitMs.push(performance.now() - w0);
    if (!process.env.NO_REMEMBER) delivery.remember(batch.outbox);
    for (const row of batch.outbox ?? []) outboxBytes += row.points?.length ?? row.payload.length;
    if (exporting && DELIVER_EVERY > 0 && c % DELIVER_EVERY === 0) {
      const cpu0 = process.cpuUsage();
      await deliverSql();
      const cpu = process.cpuUsage(cpu0);
      deliverUs += cpu.user + cpu.system;
    }
  }
  const messages = COMMITS * DEVICES_PER_COMMIT * MESSAGES_PER_DEVICE;
  const us = (ms: number) => (ms * 1000) / messages;
  const processCpu = process.cpuUsage(process0);
  const mainMs = mainThreadCpuMs() - main0;
  const writerMs = (await writerCpuMs()) - writer0;
  const result: Result = {
    main: us(mainMs - deliverUs / 1000),
    writer: us(writerMs),
    other: us((processCpu.user + processCpu.system) / 1000 - mainMs - writerMs),
    decorate: us(decorateMs),
    outboxBytes: outboxBytes / messages,
    deliverSql: us(deliverUs / 1000),
    minor: (gc.minor * 1e6) / messages,
    major: (gc.major * 1e6) / messages,
    commitMs: commitMs.sort((a, b) => a - b)[Math.floor(commitMs.length / 2)],
  };
  await store.close();
  rmSync(dir, { recursive: true, force: true });
  process.stdout.write(`${JSON.stringify(result)}\n`);
}

function runChild(dist: string, exporting: boolean): Promise<Result> {
  return new Promise((done, fail) => {
    const args = ['--import', 'tsx', 'bench/export/ingest.ts', '--child', dist, '--commits', String(COMMITS), ...(exporting ? ['--rule'] : [])];
    const c = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    c.stdout.on('data', (d) => (out += d));
    c.on('exit', (code) => (code === 0 ? done(JSON.parse(out.trim().split('\n').at(-1)!)) : fail(new Error(`child exited ${code}`))));
  });
}

if (values.child) await child(values.child, values.rule);
else {
  const dists = (values.dist ?? ['dist']).map((d) => resolve(d));
  const results = new Map<string, { none: Result[]; rule: Result[] }>(dists.map((d) => [d, { none: [], rule: [] }]));
  for (let r = 0; r < Number(values.rounds); r++) {
    for (const d of dists) {
      results.get(d)!.none.push(await runChild(d, false));
      results.get(d)!.rule.push(await runChild(d, true));
    }
  }
  const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
  const list = (xs: number[]) => xs.map((x) => x.toFixed(2)).join(', ');
  console.log(`| build | main, no rule | main, rule | main extra | writer, no rule | writer, rule | writer extra | decorate | outbox bytes a message | delivery's SQL | other threads, no rule / rule | GCs a million messages (scavenges, mark-compacts), no rule / rule | commit ms (median), no rule / rule |`);
  console.log(`|---|---|---|---|---|---|---|---|---|---|---|---|---|`);
  for (const [d, { none, rule }] of results) {
    const extra = (k: 'main' | 'writer') => none.map((n, i) => rule[i][k] - n[k]);
    console.log(
      `| ${d} | ${list(none.map((x) => x.main))} | ${list(rule.map((x) => x.main))} | **${median(extra('main')).toFixed(2)}** (${list(extra('main'))}) | ${list(none.map((x) => x.writer))} | ${list(rule.map((x) => x.writer))} | **${median(extra('writer')).toFixed(2)}** (${list(extra('writer'))}) | ${median(rule.map((x) => x.decorate)).toFixed(3)} | ${median(rule.map((x) => x.outboxBytes)).toFixed(1)} | ${median(rule.map((x) => x.deliverSql)).toFixed(3)} | ${median(none.map((x) => x.other)).toFixed(2)} / ${median(rule.map((x) => x.other)).toFixed(2)} | ${median(none.map((x) => x.minor)).toFixed(1)}, ${median(none.map((x) => x.major)).toFixed(2)} / ${median(rule.map((x) => x.minor)).toFixed(1)}, ${median(rule.map((x) => x.major)).toFixed(2)} | ${median(none.map((x) => x.commitMs)).toFixed(2)} / ${median(rule.map((x) => x.commitMs)).toFixed(2)} |`,
    );
  }
  console.log(`(CPU µs a message, ${COMMITS} commits of ${DEVICES_PER_COMMIT} devices x ${MESSAGES_PER_DEVICE} messages after ${WARMUP} warm-up commits; extra = rule - no rule of the same round)`);
}
