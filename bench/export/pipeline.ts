/**
 * The export's main-thread work per message apart from SQL and sockets (issue 16): OutboxBuilder.decorate over
 * group-commit-sized batches (100 devices x 25 messages x 2 points, as bench/export/run.ts sends, values varying),
 * then each row's messages (messagesOf) and the webhook body (webhookBody), CPU per message; and the bytes of outbox
 * row written per message (what SQLite writes twice).
 *   node --import tsx bench/export/pipeline.ts [--batches 400]
 */
import { parseArgs } from 'node:util';
import { OutboxBuilder } from '../../src/core/export/outbox.ts';
import type { ExportRules } from '../../src/core/export/rules.ts';
import { messagesOf, type ExportRule, type OutboxEntry, type OutboxRow } from '../../src/core/export/model.ts';
import type { TsPoint } from '../../src/core/model.ts';
import type { WriteBatch } from '../../src/core/ports/store.ts';
import { webhookBody } from '../../src/export/webhook-sink.ts';

const { values } = parseArgs({ options: { batches: { type: 'string', default: '400' } } });
const BATCHES = Number(values.batches);
const rule: ExportRule = { id: 'r', tenantId: 'tenant', name: 'bench', profileId: null, kinds: ['telemetry'], enabled: true, createdTime: 0, destination: { type: 'webhook', url: 'http://127.0.0.1:1/', headers: {}, secret: null, batchSize: 1000, timeoutMs: 1000 } };
const rules = { wants: () => true, matching: () => [rule] } as unknown as ExportRules;
const outbox = new OutboxBuilder(rules, { full: false, skipped() {} });
const devices = Array.from({ length: 100 }, (_, i) => ({ deviceId: `0d1e2f30-4a5b-4c6d-8e9f-${String(i).padStart(12, '0')}`, deviceName: `bench-device-${i}`, tenantId: 'tenant', profileId: '7f000000-0000-4000-8000-000000000001', credentialsType: 'ACCESS_TOKEN' as const }));
let ts = 1_700_000_000_000;
const batches: WriteBatch[] = [];
for (let b = 0; b < 8; b++) {
  const telemetry: TsPoint[] = [];
  for (let m = 0; m < 25; m++) for (const d of devices) {
    ts++;
    telemetry.push({ deviceId: d.deviceId, ts, key: 'temperature', value: { type: 'DOUBLE', value: 21.5 + (m % 7) / 10 } }, { deviceId: d.deviceId, ts, key: 'humidity', value: { type: 'LONG', value: 40 + (m % 5) } });
  }
  batches.push({ telemetry, attributes: [] });
}
for (const d of devices) outbox.noteDevice(d, 'telemetry');
const size = (r: { payload: string; points?: Uint8Array | null }) => r.payload.length + (r.points?.length ?? 0);
for (let round = 0; round < 3; round++) {
  let bytes = 0;
  let body = 0;
  let decorateUs = 0;
  const t0 = process.cpuUsage();
  for (let b = 0; b < BATCHES; b++) {
    const batch = batches[b % batches.length];
    batch.outbox = undefined;
    const d0 = process.cpuUsage();
    outbox.decorate(batch);
    const d = process.cpuUsage(d0);
    decorateUs += d.user + d.system;
    const entries: OutboxEntry[] = batch.outbox ?? [];
    const rows: OutboxRow[] = entries.map((r, i) => ({ ...r, seq: b * 1000 + i }));
    for (const r of rows) bytes += size(r);
    body += webhookBody(rows.flatMap((r) => messagesOf(r, 'bench'))).length;
  }
  const u = process.cpuUsage(t0);
  const messages = BATCHES * 2500;
  console.log(`decorate ${((decorateUs * 1000) / messages).toFixed(0)} ns, decorate + messagesOf + body ${(((u.user + u.system) * 1000) / messages).toFixed(0)} ns per message; outbox row ${(bytes / messages).toFixed(1)} B, body ${(body / messages).toFixed(1)} B per message`);
}
