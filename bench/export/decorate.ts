/**
 * The outbox rows' cost on the commit path alone (issue 16): OutboxBuilder.decorate over group-commit batches as
 * bench/export/run.ts's server commits them (39 of 100 devices x 64 messages x 2 points, each message its own ts; with
 * VARYING=1 the values change from message to message, else every message is the same), CPU ns a message. Each build
 * runs in a process of its own, the builds alternating; three rounds of `--batches` batches each.
 *   node --import tsx bench/export/decorate.ts [--batches 2000] [--dist /tmp/before/dist --dist dist]
 */
import { spawnSync } from 'node:child_process';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import type { ExportRule } from '../../src/core/export/model.ts';
import type { ExportRules } from '../../src/core/export/rules.ts';
import type { TsPoint } from '../../src/core/model.ts';
import type { WriteBatch } from '../../src/core/ports/store.ts';

const { values } = parseArgs({ options: { batches: { type: 'string', default: '2000' }, dist: { type: 'string', multiple: true }, child: { type: 'string' }, rounds: { type: 'string', default: '3' } } });
const BATCHES = Number(values.batches);
const DEVICES_PER_COMMIT = 39;
const MESSAGES_PER_DEVICE = 64;

async function child(dist: string): Promise<void> {
  const { OutboxBuilder } = (await import(pathToFileURL(join(dist, 'core/export/outbox.js')).href)) as typeof import('../../src/core/export/outbox.ts');
  const rule: ExportRule = { id: 'c0ffee00-0000-4000-8000-000000000001', tenantId: 'tenant', name: 'bench', profileId: null, kinds: ['telemetry'], enabled: true, createdTime: 0, lanes: 16, destination: { type: 'webhook', url: 'http://127.0.0.1:1/', headers: {}, secret: null, batchSize: 1000, timeoutMs: 1000 } };
  const rules = { wants: () => true, matching: () => [rule] } as unknown as ExportRules;
  const devices = Array.from({ length: 100 }, (_, i) => ({ deviceId: `0d1e2f30-4a5b-4c6d-8e9f-${String(i).padStart(12, '0')}`, deviceName: `bench-device-${i}`, tenantId: 'tenant', profileId: '7f000000-0000-4000-8000-000000000001', credentialsType: 'ACCESS_TOKEN' as const }));
  const outbox = new OutboxBuilder(rules, { full: false, skipped() {} });
  const varying = process.env.VARYING === '1';
  const lastTs = devices.map(() => 1_700_000_000_000);
  const batches: WriteBatch[] = [];
  for (let c = 0; c < 16; c++) {
    const telemetry: TsPoint[] = [];
    for (let d = 0; d < DEVICES_PER_COMMIT; d++) {
      const i = (c * DEVICES_PER_COMMIT + d) % devices.length;
      for (let m = 0; m < MESSAGES_PER_DEVICE; m++) {
        const ts = ++lastTs[i];
        telemetry.push(
          { deviceId: devices[i].deviceId, ts, key: 'temperature', value: { type: 'DOUBLE', value: varying ? 21.5 + (m % 7) / 10 : 21.5 } },
          { deviceId: devices[i].deviceId, ts, key: 'humidity', value: { type: 'LONG', value: varying ? 40 + (m % 5) : 40 } },
        );
      }
    }
    batches.push({ telemetry, attributes: [] });
  }
  const out: number[] = [];
  for (let round = 0; round < Number(values.rounds) + 1; round++) {
    const t0 = process.cpuUsage();
    for (let b = 0; b < BATCHES; b++) {
      const batch = batches[b % batches.length];
      batch.outbox = undefined;
      for (let d = 0; d < DEVICES_PER_COMMIT; d++) outbox.noteDevice(devices[((b % batches.length) * DEVICES_PER_COMMIT + d) % devices.length], 'telemetry');
      outbox.decorate(batch);
    }
    const u = process.cpuUsage(t0);
    if (round > 0) out.push(((u.user + u.system) * 1000) / (BATCHES * DEVICES_PER_COMMIT * MESSAGES_PER_DEVICE)); // round 0: warm-up
  }
  process.stdout.write(`${JSON.stringify(out)}\n`);
}

if (values.child) await child(values.child);
else {
  const dists = (values.dist ?? ['dist']).map((d) => resolve(d));
  const results = new Map<string, number[]>(dists.map((d) => [d, []]));
  for (let r = 0; r < 3; r++) {
    for (const d of dists) {
      const run = spawnSync(process.execPath, ['--import', 'tsx', 'bench/export/decorate.ts', '--child', d, '--batches', String(BATCHES), '--rounds', values.rounds!], { encoding: 'utf8' });
      if (run.status !== 0) throw new Error(run.stderr);
      results.get(d)!.push(...(JSON.parse(run.stdout.trim().split('\n').at(-1)!) as number[]));
    }
  }
  for (const [d, ns] of results) {
    const sorted = [...ns].sort((a, b) => a - b);
    console.log(`${d}: decorate ${sorted[Math.floor(sorted.length / 2)].toFixed(1)} ns a message (median; ${ns.map((x) => x.toFixed(0)).join(', ')}) ${process.env.VARYING === '1' ? 'values varying' : 'same values'}`);
  }
}
