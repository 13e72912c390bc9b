/**
 * Where the export's CPU goes, by thread and stage (issue 16): cpu.ts's loop (group-commit-sized batches through the
 * OutboxBuilder and the SQLite store, the delivery loop every few commits) with the main thread's and the writer
 * thread's CPU time read apart, the main thread's time in the render (decorate) and in delivery rounds, and the time
 * in each outbox store call (wall time, per message; with CONCURRENCY=1 nothing overlaps).
 *   node --max-semi-space-size=64 --import tsx bench/export/stages.ts [--rounds 3] [--commits 240]
 * Environment: DELIVER_EVERY (commits between delivery rounds, default 5; 20 is about bench/export/run.ts's cadence:
 * a lane every ~0.4 s), CONCURRENCY (lanes at once), ONLY=rule|none (one mode), MAIN_CONN=off (every statement on the
 * writer thread), TASKS=1 (CPU per message of every thread of the process), RECEIVER_MODE=scan (the receiver counts
 * without JSON.parse; its CPU per message is the last line, in 10 ms ticks, so only long runs resolve it).
 */
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { parseArgs } from 'node:util';
import { ExportDelivery, DEFAULT_EXPORT_SETTINGS } from '../../src/core/export/delivery.ts';
import { OutboxBuilder } from '../../src/core/export/outbox.ts';
import { ExportRules } from '../../src/core/export/rules.ts';
import type { TsPoint } from '../../src/core/model.ts';
import { openExportSink } from '../../src/export/open-sink.ts';
import { openSqliteStore } from '../../src/store/sqlite.ts';
import type { WriteBatch } from '../../src/core/ports/store.ts';
import { mainThreadCpuMs, writerThreadCpuMs } from '../support/thread-cpu.ts';
import { benchDevices } from './bench-devices.ts';

const { values } = parseArgs({ options: { rounds: { type: 'string', default: '3' }, commits: { type: 'string', default: '200' } } });
const ROUNDS = Number(values.rounds);
const COMMITS = Number(values.commits);
const DEVICES = 100;
const MESSAGES_PER_DEVICE = 25;
const DELIVER_EVERY = Number(process.env.DELIVER_EVERY ?? 5);

const receiver = spawn(process.execPath, ['--import', 'tsx', 'bench/export/receiver.ts'], { stdio: ['ignore', 'pipe', 'inherit'] });
const [line] = (await once(createInterface({ input: receiver.stdout! }), 'line')) as [string];
const port = (JSON.parse(line) as { port: number }).port;
const quiet = { info() {}, warn() {}, error() {}, debug() {} };
/** The receiver process's CPU time, ms (RECEIVER_MODE=scan|parse picks how it counts; see receiver.ts). */
const receiverCpuMs = () => {
  const f = readFileSync(`/proc/${receiver.pid}/stat`, 'utf8').split(') ')[1].split(' ');
  return (Number(f[11]) + Number(f[12])) * 10;
};

async function run(exporting: boolean) {
  const dir = mkdtempSync(join(tmpdir(), 'fleetgate-export-stages-'));
  const store = await openSqliteStore(join(dir, 'bench.db'), { synchronous: 'normal', mainConnection: process.env.MAIN_CONN !== 'off' });
  const rules = new ExportRules(store, async () => true, async () => {});
  const exportsTimed: Record<string, unknown> = {};
  const real = store.exports as unknown as Record<string, (...a: unknown[]) => Promise<unknown>>;
  for (const k of Object.keys(real)) {
    exportsTimed[k] = async (...a: unknown[]) => {
      if (k === 'readOutbox' && typeof a[3] === 'function') {
        const f = a[3] as (seq: number) => unknown;
        a[3] = (seq: number) => {
          const r = f(seq);
          if (r) fromMemory++;
          else fromDatabase++;
          return r;
        };
      }
      const t = performance.now();
      try {
        return await real[k](...a);
      } finally {
        sqlMs[k] = (sqlMs[k] ?? 0) + performance.now() - t;
      }
    };
  }
  const sqlMs: Record<string, number> = {};
  let fromMemory = 0;
  let fromDatabase = 0;
  const delivery = new ExportDelivery({ exports: exportsTimed as never }, rules, openExportSink, { ...DEFAULT_EXPORT_SETTINGS, concurrency: Number(process.env.CONCURRENCY ?? DEFAULT_EXPORT_SETTINGS.concurrency) }, quiet);
  const outbox = new OutboxBuilder(rules, delivery);
  if (exporting) {
    await rules.save('tenant', { name: 'bench', kinds: ['telemetry'], destination: { type: 'webhook', url: `http://127.0.0.1:${port}/hook`, batchSize: 1000 } });
    await rules.reload();
  }
  const devices = benchDevices(DEVICES);
  let ts = 1_700_000_000_000;
  let messages = 0;
  let renderMs = 0;
  let deliverMs = 0;
  await store.writeBatch({ telemetry: [], attributes: [] });
  const tasks = () => new Map(readdirSync('/proc/self/task').map((t) => { const st = readFileSync(`/proc/self/task/${t}/stat`, 'utf8'); const f = st.slice(st.lastIndexOf(')') + 2).split(' '); return [t, (Number(f[11]) + Number(f[12])) * 10]; }));
  const tasks0 = tasks();
  const main0 = mainThreadCpuMs();
  const writer0 = await writerThreadCpuMs();
  const proc0 = process.cpuUsage();
  const receiver0 = receiverCpuMs();
  for (let c = 1; c <= COMMITS; c++) {
    const telemetry: TsPoint[] = [];
    for (let m = 0; m < MESSAGES_PER_DEVICE; m++) {
      for (const device of devices) {
        ts++;
        outbox.noteDevice(device, 'telemetry');
        telemetry.push({ deviceId: device.deviceId, ts, key: 'temperature', value: { type: 'DOUBLE', value: 21.5 } }, { deviceId: device.deviceId, ts, key: 'humidity', value: { type: 'LONG', value: 40 } });
        messages++;
      }
    }
    const batch: WriteBatch = { telemetry, attributes: [] };
    const t0 = performance.now();
    outbox.decorate(batch);
    renderMs += performance.now() - t0;
    await store.writeBatch(batch);
    delivery.remember(batch.outbox); // as the group committer does after each commit
    if (exporting && (c % DELIVER_EVERY === 0 || c === COMMITS)) {
      for (;;) {
        const t1 = performance.now();
        const round = await delivery.tick();
        deliverMs += performance.now() - t1;
        if (round === 'none') break;
      }
    }
  }
  const proc = process.cpuUsage(proc0);
  const us = (ms: number) => (ms * 1000) / messages;
  const tasks1 = tasks();
  if (process.env.TASKS) console.log([...tasks1].map(([t, ms]) => `${t}:${us(ms - (tasks0.get(t) ?? 0)).toFixed(2)}`).filter((x) => !x.endsWith(':0.00')).join(' '));
  if (exporting) console.log(`store calls (wall, µs/msg): ${Object.entries(sqlMs).map(([k, v]) => `${k} ${us(v).toFixed(3)}`).join(', ')}; outbox rows delivered from memory ${fromMemory}, looked up and missing ${fromDatabase}`);
  const result = { main: us(mainThreadCpuMs() - main0), writer: us((await writerThreadCpuMs()) - writer0), all: (proc.user + proc.system) / messages, render: us(renderMs), deliverWall: us(deliverMs), receiver: us(receiverCpuMs() - receiver0) };
  await delivery.close();
  await store.close();
  rmSync(dir, { recursive: true, force: true });
  return result;
}

type R = Awaited<ReturnType<typeof run>>;
const none: R[] = [];
const withRule: R[] = [];
for (let i = 0; i < ROUNDS; i++) {
  if (process.env.ONLY !== 'rule') none.push(await run(false));
  if (process.env.ONLY !== 'none') withRule.push(await run(true));
}
receiver.kill();
const median = (xs: number[]) => (xs.length ? [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] : NaN);
const f = (rs: R[], k: keyof R) => `${median(rs.map((r) => r[k])).toFixed(2)} (${rs.map((r) => r[k].toFixed(2)).join(', ')})`;
for (const k of ['all', 'main', 'writer', 'render', 'deliverWall', 'receiver'] as const) console.log(`| ${k} µs/msg | no rule ${f(none, k)} | rule ${f(withRule, k)} | diff ${(median(withRule.map((r) => r[k])) - median(none.map((r) => r[k]))).toFixed(2)} |`);
