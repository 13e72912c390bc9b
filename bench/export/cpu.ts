/**
 * Data-out CPU benchmark (issue 16): what exporting telemetry costs the server per message, measured as process CPU
 * time (user + system, all threads) rather than throughput, so it holds on a busy machine. It drives the real parts
 * without the MQTT layer: group-commit-sized batches (100 devices x 25 messages x 2 points, every message its own ts,
 * as bench/export/run.ts sends under load) go through the export's OutboxBuilder and the SQLite store's writeBatch,
 * and every few commits the real delivery loop (ExportDelivery.tick with the webhook sink) posts the outbox to a
 * node:http receiver in another process. Alternating runs without and with the rule, each on a fresh database.
 *   node --import tsx bench/export/cpu.ts [--rounds 3] [--commits 400]
 */
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
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
import { benchDevices } from './bench-devices.ts';

const { values } = parseArgs({ options: { rounds: { type: 'string', default: '3' }, commits: { type: 'string', default: '400' } } });
const ROUNDS = Number(values.rounds);
const COMMITS = Number(values.commits);
const DEVICES = 100;
const MESSAGES_PER_DEVICE = 25; // 2500 messages = 5000 points: a full group commit (batchMaxRows)
const DELIVER_EVERY = 5; // commits between delivery rounds (~100 ms at ~50 commits/s, the loop's partial-batch pause)

const receiver = spawn(process.execPath, ['--import', 'tsx', 'bench/export/receiver.ts'], { stdio: ['ignore', 'pipe', 'inherit'] });
const [line] = (await once(createInterface({ input: receiver.stdout! }), 'line')) as [string];
const port = (JSON.parse(line) as { port: number }).port;
const quiet = { info() {}, warn() {}, error() {}, debug() {} };
const cpu = () => {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1e6;
};

async function run(exporting: boolean): Promise<number> {
  const dir = mkdtempSync(join(tmpdir(), 'fleetgate-export-cpu-'));
  const store = await openSqliteStore(join(dir, 'bench.db'), { synchronous: 'normal' });
  const rules = new ExportRules(store, async () => true, async () => {});
  const delivery = new ExportDelivery(store, rules, openExportSink, DEFAULT_EXPORT_SETTINGS, quiet);
  const outbox = new OutboxBuilder(rules, delivery);
  if (exporting) {
    await rules.save('tenant', { name: 'bench', kinds: ['telemetry'], destination: { type: 'webhook', url: `http://127.0.0.1:${port}/hook`, batchSize: 1000 } });
    await rules.reload();
  }
  const devices = benchDevices(DEVICES);
  let ts = 1_700_000_000_000;
  let messages = 0;
  const start = cpu();
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
    outbox.decorate(batch);
    await store.writeBatch(batch);
    delivery.remember(batch.outbox); // as the group committer does after each commit
    if (exporting && (c % DELIVER_EVERY === 0 || c === COMMITS)) while ((await delivery.tick()) !== 'none');
  }
  const usPerMessage = ((cpu() - start) * 1e6) / messages;
  await delivery.close();
  await store.close();
  rmSync(dir, { recursive: true, force: true });
  return usPerMessage;
}

const none: number[] = [];
const withRule: number[] = [];
for (let i = 0; i < ROUNDS; i++) {
  none.push(await run(false));
  withRule.push(await run(true));
}
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const stats = (await (await fetch(`http://127.0.0.1:${port}/stats`)).json()) as { points: number; messages: number; posts: number };
receiver.kill();
const a = median(none);
const b = median(withRule);
console.log(`| commits per run | ${COMMITS} x ${DEVICES * MESSAGES_PER_DEVICE} messages (${DEVICES} devices, 2 points each), delivery every ${DELIVER_EVERY} commits; ${ROUNDS} alternating runs |`);
console.log(`| CPU per message, no rule | ${a.toFixed(2)} µs (${none.map((x) => x.toFixed(2)).join(', ')}) |`);
console.log(`| CPU per message, one rule exporting all telemetry | ${b.toFixed(2)} µs (${withRule.map((x) => x.toFixed(2)).join(', ')}) |`);
console.log(`| export's cost per message | ${(b - a).toFixed(2)} µs |`);
console.log(`| receiver got | ${stats.points} points in ${stats.messages} messages, ${stats.posts} POSTs (expected ${ROUNDS * COMMITS * DEVICES * MESSAGES_PER_DEVICE * 2} points) |`);
