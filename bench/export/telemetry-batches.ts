/**
 * The input of the export's in-process benches (render.ts, pipeline.ts): one rule exporting all telemetry, an
 * OutboxBuilder that knows 100 devices, and 8 group-commit-sized batches (100 devices x 25 messages x 2 points, each
 * message its own ts, as bench/export/run.ts sends), reused round robin so only the measured work makes garbage.
 */
import { OutboxBuilder } from '../../src/core/export/outbox.ts';
import type { ExportRules } from '../../src/core/export/rules.ts';
import type { ExportRule } from '../../src/core/export/model.ts';
import type { TsPoint } from '../../src/core/model.ts';
import type { WriteBatch } from '../../src/core/ports/store.ts';

const rule: ExportRule = { id: 'r', tenantId: 'tenant', name: 'bench', profileId: null, kinds: ['telemetry'], enabled: true, createdTime: 0, lanes: 16, destination: { type: 'webhook', url: 'http://127.0.0.1:1/', headers: {}, secret: null, batchSize: 1000, timeoutMs: 1000 } };
const rules = { wants: () => true, matching: () => [rule] } as unknown as ExportRules;
const devices = Array.from({ length: 100 }, (_, i) => ({ deviceId: `0d1e2f30-4a5b-4c6d-8e9f-${String(i).padStart(12, '0')}`, deviceName: `bench-device-${i}`, tenantId: 'tenant', profileId: '7f000000-0000-4000-8000-000000000001', credentialsType: 'ACCESS_TOKEN' as const }));

/** Messages in one batch. */
export const MESSAGES_PER_BATCH = 2500;

/** An outbox builder for the bench rule, its devices noted. */
export function benchOutbox(): OutboxBuilder {
  const outbox = new OutboxBuilder(rules, { full: false, skipped() {} });
  for (const d of devices) outbox.noteDevice(d, 'telemetry');
  return outbox;
}

/** The 8 batches; with `varying`, the values change from message to message (else every message is the same). */
export function telemetryBatches(varying: boolean): WriteBatch[] {
  let ts = 1_700_000_000_000;
  const batches: WriteBatch[] = [];
  for (let b = 0; b < 8; b++) {
    const telemetry: TsPoint[] = [];
    for (let m = 0; m < 25; m++)
      for (const d of devices) {
        ts++;
        const temperature = varying ? 21.5 + (m % 7) / 10 : 21.5;
        const humidity = varying ? 40 + (m % 5) : 40;
        telemetry.push({ deviceId: d.deviceId, ts, key: 'temperature', value: { type: 'DOUBLE', value: temperature } }, { deviceId: d.deviceId, ts, key: 'humidity', value: { type: 'LONG', value: humidity } });
      }
    batches.push({ telemetry, attributes: [] });
  }
  return batches;
}
