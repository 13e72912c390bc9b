/**
 * The export's main-thread work per message apart from SQL and sockets (issue 16): OutboxBuilder.decorate over
 * group-commit-sized batches (100 devices x 25 messages x 2 points, as bench/export/run.ts sends, values varying),
 * then each row's messages (messagesOf) and the webhook body (webhookBody), CPU per message; and the bytes of outbox
 * row written per message (what SQLite writes twice).
 *   node --import tsx bench/export/pipeline.ts [--batches 400]
 */
import { parseArgs } from 'node:util';
import { benchOutbox, MESSAGES_PER_BATCH, telemetryBatches } from './telemetry-batches.ts';
import { messagesOf, type OutboxEntry, type OutboxRow } from '../../src/core/export/model.ts';
import type { WriteBatch } from '../../src/core/ports/store.ts';
import { webhookBody } from '../../src/export/webhook-sink.ts';

const { values } = parseArgs({ options: { batches: { type: 'string', default: '400' } } });
const BATCHES = Number(values.batches);
const outbox = benchOutbox();
const batches = telemetryBatches(process.env.SAME_VALUES !== "1");
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
  const messages = BATCHES * MESSAGES_PER_BATCH;
  console.log(`decorate ${((decorateUs * 1000) / messages).toFixed(0)} ns, decorate + messagesOf + body ${(((u.user + u.system) * 1000) / messages).toFixed(0)} ns per message; outbox row ${(bytes / messages).toFixed(1)} B, body ${(body / messages).toFixed(1)} B per message`);
}
