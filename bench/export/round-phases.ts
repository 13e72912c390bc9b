/**
 * How long each phase of a delivery round holds the event loop (issue 16, the stalls of session 9), for a round as
 * bench/export/run.ts makes them: 4 lanes, each a batch of 1,000 messages (a device's points of one group commit) in
 * ~167 compact rows of 6 devices x 25 readings, as OutboxBuilder writes them. Per phase, the longest time between two
 * event-loop turns while it runs (a ticker on setImmediate), median and worst of REPEAT rounds:
 * - take the rows apart (messagesOf), all 4 lanes in one turn (before) or a lane a turn (now);
 * - render the 4 bodies, each in one piece in one turn (before: the 4 POSTs of a round start together) or in slices
 *   of RENDER_SLICE_BYTES, the 4 interleaved (now).
 * The completion's share is bench/export/complete.ts's (main-thread CPU a round, local against thread).
 *   node --import tsx bench/export/round-phases.ts   (REPEAT=20)
 */
import { messagesOf, type ExportMessage, type OutboxEntry, type OutboxRow } from '../../src/core/export/model.ts';
import { renderWebhookBody, webhookBody } from '../../src/export/webhook-sink.ts';
import { benchOutbox, telemetryBatches } from './telemetry-batches.ts';

const REPEAT = Number(process.env.REPEAT ?? 20);
const LANES = 4;
const MESSAGES = 1000;

// Rows of 4 lanes: every batch's rows of those lanes, until each lane holds 1,000 messages.
const outbox = benchOutbox();
const batches = telemetryBatches(false);
const lanes: OutboxRow[][] = Array.from({ length: LANES }, () => []);
const partitions = new Map<number, number>();
let seq = 1;
for (let b = 0; lanes.some((l) => l.reduce((n, r) => n + (r.messages ?? 1), 0) < MESSAGES); b++) {
  const batch = batches[b % batches.length];
  batch.outbox = undefined;
  outbox.decorate(batch);
  const written: OutboxEntry[] = batch.outbox ?? [];
  for (const entry of written) {
    if (!partitions.has(entry.partition) && partitions.size < LANES) partitions.set(entry.partition, partitions.size);
    const lane = partitions.get(entry.partition);
    if (lane === undefined || lanes[lane].reduce((n, r) => n + (r.messages ?? 1), 0) >= MESSAGES) continue;
    lanes[lane].push({ ...entry, seq: seq++ });
  }
}

/** The longest stretch (ms) between two setImmediate turns while `work` runs. */
async function longestHold(work: () => Promise<unknown> | unknown): Promise<number> {
  let last = performance.now();
  let longest = 0;
  let on = true;
  const tick = () => {
    const now = performance.now();
    longest = Math.max(longest, now - last);
    last = now;
    if (on) setImmediate(tick);
  };
  setImmediate(tick);
  await new Promise<void>((r) => setImmediate(r));
  last = performance.now();
  await work();
  on = false;
  const now = performance.now();
  return Math.max(longest, now - last);
}

const turn = () => new Promise<void>((r) => setImmediate(r));
const decode = (rows: OutboxRow[]) => rows.flatMap((r) => messagesOf(r, 'bench'));
const messages: ExportMessage[][] = lanes.map(decode);
const phases: Record<string, () => Promise<unknown> | unknown> = {
  'take rows apart, 4 lanes in one turn': () => lanes.map(decode),
  'take rows apart, a lane a turn': async () => {
    for (const rows of lanes) {
      await turn();
      decode(rows);
    }
  },
  'render 4 bodies, each in one piece': () => messages.map((m) => webhookBody(m)),
  'render 4 bodies in slices, interleaved': () => Promise.all(messages.map((m) => renderWebhookBody(m))),
};
const bytes = webhookBody(messages[0]).length;
console.log(`a round: ${LANES} lanes of ${lanes[0].length} rows, ${messages[0].length} messages, ${bytes} body bytes each`);
for (let i = 0; i < 5; i++) for (const work of Object.values(phases)) await work(); // warm-up
for (const [name, work] of Object.entries(phases)) {
  const holds: number[] = [];
  for (let i = 0; i < REPEAT; i++) holds.push(await longestHold(work));
  holds.sort((a, b) => a - b);
  console.log(`| ${name} | longest hold: median ${holds[Math.floor(holds.length / 2)].toFixed(2)} ms, worst ${holds[holds.length - 1].toFixed(2)} ms |`);
}
