/**
 * The export's render on the commit path alone (issue 16): OutboxBuilder.decorate over group-commit-sized batches
 * (100 devices x 25 messages x 2 points, each message its own ts, as bench/export/run.ts sends; 8 batches reused
 * round robin, so only the render's own garbage is made), CPU per message.
 *   node --import tsx bench/export/render.ts [--batches 400]
 */
import { parseArgs } from 'node:util';
import { OutboxBuilder } from '../../src/core/export/outbox.ts';
import type { ExportRules } from '../../src/core/export/rules.ts';
import type { ExportRule } from '../../src/core/export/model.ts';
import type { TsPoint } from '../../src/core/model.ts';
import type { WriteBatch } from '../../src/core/ports/store.ts';

const { values } = parseArgs({ options: { batches: { type: 'string', default: '400' } } });
const BATCHES = Number(values.batches);
const rule: ExportRule = { id: 'r', tenantId: 'tenant', name: 'bench', profileId: null, kinds: ['telemetry'], enabled: true, createdTime: 0, destination: { type: 'webhook', url: 'http://127.0.0.1:1/', headers: {}, secret: null, batchSize: 1000, timeoutMs: 1000 } };
const rules = { wants: () => true, matching: () => [rule] } as unknown as ExportRules;
const outbox = new OutboxBuilder(rules, { full: false, skipped() {} });
const devices = Array.from({ length: 100 }, (_, i) => ({ deviceId: `0d1e2f30-4a5b-4c6d-8e9f-${String(i).padStart(12, '0')}`, deviceName: `bench-device-${i}`, tenantId: 'tenant', profileId: '7f000000-0000-4000-8000-000000000001', credentialsType: 'ACCESS_TOKEN' as const }));
let ts = 1_700_000_000_000;
let bytes = 0;
const batches: WriteBatch[] = [];
for (let b = 0; b < 8; b++) {
  const telemetry: TsPoint[] = [];
  for (let m = 0; m < 25; m++) for (const d of devices) {
    ts++;
    telemetry.push({ deviceId: d.deviceId, ts, key: 'temperature', value: { type: 'DOUBLE', value: 21.5 } }, { deviceId: d.deviceId, ts, key: 'humidity', value: { type: 'LONG', value: 40 } });
  }
  batches.push({ telemetry, attributes: [] });
}
for (const d of devices) outbox.noteDevice(d, 'telemetry');
const t0 = process.cpuUsage();
for (let b = 0; b < BATCHES; b++) {
  const batch = batches[b % batches.length];
  batch.outbox = undefined;
  outbox.decorate(batch);
  for (const row of (batch as WriteBatch).outbox ?? []) bytes += row.payload.length;
}
const u = process.cpuUsage(t0);
const messages = BATCHES * 2500;
console.log(`render: ${(((u.user + u.system) / messages) * 1000).toFixed(0)} ns per message, ${(bytes / messages).toFixed(1)} payload bytes per message`);
