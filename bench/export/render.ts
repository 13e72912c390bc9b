/**
 * The export's render on the commit path alone (issue 16): OutboxBuilder.decorate over group-commit-sized batches
 * (100 devices x 25 messages x 2 points, each message its own ts, as bench/export/run.ts sends; 8 batches reused
 * round robin, so only the render's own garbage is made), CPU per message.
 *   node --import tsx bench/export/render.ts [--batches 400]
 */
import { parseArgs } from 'node:util';
import { benchOutbox, MESSAGES_PER_BATCH, telemetryBatches } from './telemetry-batches.ts';
import type { WriteBatch } from '../../src/core/ports/store.ts';

const { values } = parseArgs({ options: { batches: { type: 'string', default: '400' } } });
const BATCHES = Number(values.batches);
const outbox = benchOutbox();
const batches = telemetryBatches(false);
let bytes = 0;
const t0 = process.cpuUsage();
for (let b = 0; b < BATCHES; b++) {
  const batch = batches[b % batches.length];
  batch.outbox = undefined;
  outbox.decorate(batch);
  for (const row of (batch as WriteBatch).outbox ?? []) bytes += row.payload.length + (row.points?.length ?? 0);
}
const u = process.cpuUsage(t0);
const messages = BATCHES * MESSAGES_PER_BATCH;
console.log(`render: ${(((u.user + u.system) / messages) * 1000).toFixed(0)} ns per message, ${(bytes / messages).toFixed(1)} outbox row bytes per message`);
