/**
 * The webhook POST body built from an outbox row's messages (issue 16): messagesOf + the sink's body, CPU per exported
 * MQTT message, against the join-and-encode it replaced. Rows as bench/export/run.ts makes them (6 devices x 25 entries).
 *   node --import tsx bench/export/body.ts
 */
import { messagesOf, type OutboxRow } from '../../src/core/export/model.ts';
import { webhookBody } from '../../src/export/webhook-sink.ts';

let ts = 1_700_000_000_000;
const rows: OutboxRow[] = [];
for (let r = 0; r < 40; r++) {
  const lines: string[] = [];
  for (let d = 0; d < 6; d++) {
    const entries: string[] = [];
    for (let i = 0; i < 25; i++) entries.push(`{"ts":${++ts},"values":{"temperature":21.5,"humidity":40}}`);
    lines.push(`0d1e2f30-4a5b-4c6d-8e9f-00000000000${d}\t{"deviceName":"bench-device-${d}","profileId":"7f000000-0000-4000-8000-000000000001","telemetry":[${entries.join(',')}]}`);
  }
  rows.push({ seq: 1000 + r, ruleId: 'r', partition: 1, deviceId: null, kind: 'telemetry', createdTime: ts, payload: lines.join('\n'), messages: 6 });
}
const joined = () => Buffer.from(`[${rows.flatMap((r) => messagesOf(r, 'bench')).map((m) => m.json).join(',')}]`);
const written = () => webhookBody(rows.flatMap((r) => messagesOf(r, 'bench')));
if (!joined().equals(written())) throw new Error('the bodies differ');
for (const [name, build] of [['join + Buffer.from', joined], ['webhookBody', written], ['join + Buffer.from', joined], ['webhookBody', written]] as const) {
  for (let i = 0; i < 50; i++) build();
  const t = process.cpuUsage();
  for (let i = 0; i < 400; i++) build();
  const u = process.cpuUsage(t);
  console.log(`| ${name} | ${(((u.user + u.system) * 1000) / (400 * 40 * 150)).toFixed(0)} ns per exported MQTT message |`);
}
