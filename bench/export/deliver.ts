/**
 * Delivery's main-thread rendering alone (issue 16): the outbox rows of group commits as bench/export/run.ts's server
 * writes them (39 of 100 devices x 64 messages x 2 points a commit, each message its own ts, one ms apart per device;
 * VARYING=1 changes the values from message to message, else every message is the same), taken apart by lane
 * (messagesOf) and written into webhook bodies of up to 1,000 device messages (renderWebhookBody into a reused buffer,
 * as WebhookSink does), CPU ns per MQTT message. Each build runs in a process of its own, the builds alternating; the
 * bodies' SHA-256 must be the same in every build (the bytes delivered do not depend on the build).
 *   node --import tsx bench/export/deliver.ts [--commits 2000] [--rounds 3] [--dist /tmp/before/dist --dist dist]
 */
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import type { ExportMessage, ExportRule, OutboxRow } from '../../src/core/export/model.ts';
import type { ExportRules } from '../../src/core/export/rules.ts';
import type { TsPoint } from '../../src/core/model.ts';
import type { WriteBatch } from '../../src/core/ports/store.ts';

const { values } = parseArgs({ options: { commits: { type: 'string', default: '2000' }, dist: { type: 'string', multiple: true }, child: { type: 'string' }, rounds: { type: 'string', default: '3' } } });
const COMMITS = Number(values.commits);
const DEVICES_PER_COMMIT = 39;
const MESSAGES_PER_DEVICE = Number(process.env.MESSAGES_PER_DEVICE ?? 64);
/** Commits whose rows one delivery round takes (each lane's rows of them, in seq order). */
const COMMITS_PER_ROUND = 40;

async function child(dist: string): Promise<void> {
  const load = (path: string) => import(pathToFileURL(join(dist, `${path}.js`)).href);
  const { OutboxBuilder } = (await load('core/export/outbox')) as typeof import('../../src/core/export/outbox.ts');
  const { messagesOf } = (await load('core/export/model')) as typeof import('../../src/core/export/model.ts');
  const { renderWebhookBody } = (await load('export/webhook-sink')) as typeof import('../../src/export/webhook-sink.ts');
  const rule: ExportRule = { id: 'c0ffee00-0000-4000-8000-000000000001', tenantId: 'tenant', name: 'bench', profileId: null, kinds: ['telemetry'], enabled: true, createdTime: 0, destination: { type: 'webhook', url: 'http://127.0.0.1:1/', headers: {}, secret: null, batchSize: 1000, timeoutMs: 1000 } };
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
    for (const body of bodies) {
      const buf = await renderWebhookBody(body, 128 * 1024, spare.pop(), 1.25);
      if (check) hash.update(buf);
      spare.push(Buffer.from(buf.buffer, 0, buf.buffer.byteLength));
    }
  }
  await round();
  check = false;
  const out: number[] = [];
  const rounds = Math.ceil(COMMITS / COMMITS_PER_ROUND);
  for (let r = 0; r < Number(values.rounds) + 1; r++) {
    const t0 = process.cpuUsage();
    for (let i = 0; i < rounds; i++) await round();
    const u = process.cpuUsage(t0);
    if (r > 0) out.push(((u.user + u.system) * 1000) / (rounds * COMMITS_PER_ROUND * DEVICES_PER_COMMIT * MESSAGES_PER_DEVICE)); // round 0: warm-up
  }
  process.stdout.write(`${JSON.stringify({ ns: out, sha: hash.digest('hex') })}\n`);
}

if (values.child) await child(values.child);
else {
  const dists = (values.dist ?? ['dist']).map((d) => resolve(d));
  const results = new Map<string, number[]>(dists.map((d) => [d, []]));
  const shas = new Set<string>();
  for (let r = 0; r < 3; r++) {
    for (const d of dists) {
      const run = spawnSync(process.execPath, ['--import', 'tsx', 'bench/export/deliver.ts', '--child', d, '--commits', String(COMMITS), '--rounds', values.rounds!], { encoding: 'utf8' });
      if (run.status !== 0) throw new Error(run.stderr);
      const { ns, sha } = JSON.parse(run.stdout.trim().split('\n').at(-1)!) as { ns: number[]; sha: string };
      results.get(d)!.push(...ns);
      shas.add(sha);
    }
  }
  for (const [d, ns] of results) {
    const sorted = [...ns].sort((a, b) => a - b);
    console.log(`${d}: messagesOf + body ${sorted[Math.floor(sorted.length / 2)].toFixed(1)} ns a message (median; ${ns.map((x) => x.toFixed(0)).join(', ')}) ${process.env.VARYING === '1' ? 'values varying' : 'same values'}`);
  }
  console.log(shas.size === 1 ? `bodies identical in every build (sha256 ${[...shas][0].slice(0, 16)}…)` : `BODIES DIFFER between builds: ${[...shas].join(', ')}`);
  if (shas.size !== 1) process.exitCode = 1;
}
