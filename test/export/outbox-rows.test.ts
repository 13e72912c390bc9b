/**
 * The telemetry outbox rows OutboxBuilder writes, batch after batch (src/core/export/outbox.ts,
 * telemetry-collector.ts, compact-telemetry.ts): each device's row head (id, message prefix, keys) is kept with its
 * noted identity and copied into later rows, so these check that what delivery reads from the rows is exactly the
 * reference JSON of each device's points while devices are renamed, move to another profile, change their keys, send
 * values the number form cannot hold or timestamps that go back, under several rules and profiles.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { compactByDevice, compactRow, numbersHead, readCompactRow } from '../../src/core/export/compact-telemetry.ts';
import { partitionOf, type ExportRule, type OutboxEntry } from '../../src/core/export/model.ts';
import { OutboxBuilder } from '../../src/core/export/outbox.ts';
import type { ExportRules } from '../../src/core/export/rules.ts';
import { referenceTelemetry, telemetryJsonByDevice } from '../../src/core/export/telemetry-json.ts';
import type { DeviceIdentity } from '../../src/core/api.ts';
import type { KvValue, TsPoint } from '../../src/core/model.ts';

function random(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}

const rule = (id: string, profileId: string | null, batchSize: number) => ({ id, tenantId: 't', name: id, profileId, kinds: ['telemetry'], enabled: true, createdTime: 0, lanes: 16, destination: { type: 'webhook', url: 'http://127.0.0.1:9/', headers: {}, secret: null, batchSize, timeoutMs: 1000 } }) as ExportRule;

/** Rules as ExportRules.matching gives them: every rule of no profile, and those of the device's profile. */
function rulesOf(list: ExportRule[]): ExportRules {
  return { wants: (kind: string) => kind === 'telemetry', matching: (_kind: string, _tenant: string, profileId: string) => list.filter((r) => r.profileId === null || r.profileId === profileId) } as unknown as ExportRules;
}

/** The form of each device's part of a row (2 numbers, 1 text), read from its bytes. */
function formsOf(row: Buffer): number[] {
  const forms: number[] = [];
  let at = 1;
  while (at < row.length) {
    at += 2 + row.readUInt16LE(at);
    at += 4 + row.readUInt32LE(at);
    const form = row[at++];
    forms.push(form);
    if (form === 1) at += 4 + row.readUInt32LE(at);
    else {
      const width = row.readUInt16LE(at);
      at += 2;
      for (let k = 0; k < width; k++) at += 2 + row.readUInt16LE(at);
      at += 4 + 4 + row.readUInt32LE(at + 4);
    }
  }
  return forms;
}

/** What each rule's rows must hold: per device of the batch it exports, the message JSON.stringify gives. */
function expected(points: TsPoint[], identities: Map<string, DeviceIdentity>, r: ExportRule): Map<string, string> {
  const reference = referenceTelemetry(points, () => true);
  const out = new Map<string, string>();
  for (const [deviceId, telemetry] of reference) {
    const device = identities.get(deviceId)!;
    if (r.profileId !== null && r.profileId !== device.profileId) continue;
    out.set(deviceId, JSON.stringify({ deviceName: device.deviceName, profileId: device.profileId, telemetry }));
  }
  return out;
}

const NUMBERS: KvValue[] = [
  { type: 'DOUBLE', value: 21.5 },
  { type: 'DOUBLE', value: 21.6 },
  { type: 'LONG', value: 40 },
  { type: 'DOUBLE', value: -0 },
  { type: 'DOUBLE', value: 0.1 + 0.2 },
  { type: 'LONG', value: -7 },
];
const ODD: KvValue[] = [
  { type: 'STRING', value: 'text "quoted"' },
  { type: 'BOOLEAN', value: false },
  { type: 'LONG', value: 9007199254740993n },
  { type: 'DOUBLE', value: Number.POSITIVE_INFINITY },
];

describe('telemetry outbox rows over many batches', () => {
  it('read back as each device\'s reference JSON while devices are renamed, change profile and keys, under two rules', () => {
    const rules = [rule('all', null, 3), rule('only-p1', 'p1', 1000)];
    const builder = new OutboxBuilder(rulesOf(rules), { full: false, skipped: () => {} });
    const next = random(16);
    const ids = Array.from({ length: 14 }, (_, i) => `device-${i}`);
    const identities = new Map<string, DeviceIdentity>(ids.map((deviceId) => [deviceId, { deviceId, deviceName: `név ${deviceId}`, tenantId: 't', profileId: 'p1', credentialsType: 'ACCESS_TOKEN' }]));
    const shapes = new Map<string, string[]>(ids.map((id, i) => [id, i % 3 === 0 ? ['temperature', 'humidity', 'co2'] : ['temperature', 'humidity']]));
    const lastTs = new Map<string, number>(ids.map((id) => [id, 1_700_000_000_000]));
    const forms = [0, 0, 0];
    let renamed = 0;
    for (let b = 0; b < 60; b++) {
      // Between batches: a rename, a move to the other profile, or new keys for a device (its head must follow).
      const changed = ids[Math.floor(next() * ids.length)];
      const was = identities.get(changed)!;
      const change = next();
      if (change < 0.2) {
        identities.set(changed, { ...was, deviceName: `${was.deviceName} (renamed ${b})` });
        renamed++;
      } else if (change < 0.35) identities.set(changed, { ...was, profileId: was.profileId === 'p1' ? 'p2' : 'p1' });
      else if (change < 0.5) shapes.set(changed, next() < 0.5 ? ['humidity', 'temperature'] : ['temperature', `k${b}`]);
      const points: TsPoint[] = [];
      for (let m = 0; m < 120; m++) {
        const deviceId = ids[Math.floor(next() * ids.length)];
        builder.noteDevice(identities.get(deviceId)!, 'telemetry');
        const odd = b % 4 === 3 ? 0.03 : 0;
        // Now and then a ts that goes back or repeats, or keys changing inside the batch.
        const ts = next() < odd ? lastTs.get(deviceId)! - 2 : lastTs.get(deviceId)! + 1 + Math.floor(next() * 3);
        lastTs.set(deviceId, Math.max(ts, lastTs.get(deviceId)!));
        const keys = next() < odd ? ['humidity', 'other'] : shapes.get(deviceId)!;
        for (const key of keys) points.push({ deviceId, ts, key, value: next() < odd ? ODD[Math.floor(next() * ODD.length)] : NUMBERS[Math.floor(next() * NUMBERS.length)] });
      }
      const batch = { telemetry: points, attributes: [] } as { telemetry: TsPoint[]; attributes: []; outbox?: OutboxEntry[] };
      builder.decorate(batch);
      for (const r of rules) {
        const rows = batch.outbox!.filter((row) => row.ruleId === r.id);
        const got = new Map<string, string>();
        for (const row of rows) {
          const messages = readCompactRow(row.points!);
          assert.equal(row.messages, messages.length);
          assert.ok(messages.length <= r.destination.batchSize, 'at most a batch of the rule a row');
          assert.equal(row.deviceId, messages.length === 1 ? messages[0].deviceId : null);
          for (const form of formsOf(row.points!)) forms[form]++;
          for (const m of messages) {
            assert.equal(partitionOf(m.deviceId), row.partition, 'a device in its own lane');
            assert.ok(!got.has(m.deviceId), 'one message a device and rule');
            got.set(m.deviceId, m.data);
          }
        }
        assert.deepEqual(got, expected(points, identities, r), `batch ${b}, rule ${r.id}`);
      }
    }
    assert.ok(forms[2] > 500 && forms[1] > 20, `both forms exercised (${forms[2]} number, ${forms[1]} text)`);
    assert.ok(renamed > 5);
  });

  it('write a kept head byte for byte as the row encoded without it', () => {
    const points: TsPoint[] = [];
    for (let m = 0; m < 50; m++) {
      for (const deviceId of ['d1', 'd2', 'ключ-3']) {
        points.push({ deviceId, ts: 1_700_000_000_000 + m * 7, key: 'a "quoted"', value: { type: 'DOUBLE', value: m / 8 } }, { deviceId, ts: 1_700_000_000_000 + m * 7, key: 'б', value: { type: 'LONG', value: m % 3 } });
      }
    }
    // One device with more packed bytes than a row copies byte by byte (512).
    for (let m = 0; m < 400; m++) points.push({ deviceId: 'long', ts: 1_700_000_000_000 + m * 1000, key: 'v', value: { type: 'DOUBLE', value: m * 1.25 } });
    points.push({ deviceId: 'text', ts: 1, key: 'x', value: { type: 'BOOLEAN', value: true } });
    const prefixOf = (deviceId: string) => `{"deviceName":${JSON.stringify(`név ${deviceId}`)},"profileId":"p","telemetry":`;
    const devices = [...compactByDevice(points)].map(([deviceId, numbers]) => ({ deviceId, prefix: prefixOf(deviceId), numbers }));
    assert.ok(devices.find((d) => d.deviceId === 'long')!.numbers.length > 512);
    const plain = compactRow(devices);
    const headed = compactRow(devices.map((d) => ({ ...d, head: d.numbers.ok ? numbersHead(d.deviceId, d.prefix, d.numbers.keys) : undefined })));
    assert.deepEqual(headed, plain, 'a row with a text device among them');
    const numberOnly = devices.filter((d) => d.numbers.ok);
    const exact = compactRow(numberOnly.map((d) => ({ ...d, head: numbersHead(d.deviceId, d.prefix, d.numbers.keys) })));
    assert.deepEqual(exact, compactRow(numberOnly), 'a row written at its exact size');
    const text = telemetryJsonByDevice(points);
    assert.deepEqual(readCompactRow(exact).map((m) => m.data), numberOnly.map((d) => `${d.prefix}${text.get(d.deviceId)}}`), 'and read back as the reference JSON');
  });

  it('refuse a row cut inside its numbers instead of reading past its end', () => {
    const points: TsPoint[] = Array.from({ length: 20 }, (_, m) => ({ deviceId: 'd', ts: 1_700_000_000_000 + m * 100_000, key: 'v', value: { type: 'LONG', value: 100_000 * m } }));
    const row = compactRow([...compactByDevice(points)].map(([deviceId, numbers]) => ({ deviceId, prefix: '{"telemetry":', numbers })));
    assert.equal(readCompactRow(row).length, 1);
    // The last value's varint is 3 bytes: cut after its first (a continuation byte), and after the whole value's tag.
    for (const cut of [2, 3]) assert.throws(() => readCompactRow(row.subarray(0, row.length - cut)), /ends inside its numbers/);
  });

  it('take the text form for runs that do not match the keys of the device\'s first message', () => {
    const v = (n: number): KvValue => ({ type: 'LONG', value: n });
    const p = (deviceId: string, ts: number, key: string, value: KvValue = v(1)): TsPoint => ({ deviceId, ts, key, value });
    const points: TsPoint[] = [
      // A later run one key longer, one key shorter, another device between a run's points, a run cut by the batch's end.
      p('longer', 1, 'a'), p('longer', 1, 'b'), p('longer', 2, 'a'), p('longer', 2, 'b'), p('longer', 2, 'c'),
      p('shorter', 1, 'a'), p('shorter', 1, 'b'), p('shorter', 2, 'a'),
      p('split', 1, 'a'), p('split', 1, 'b'), p('split', 2, 'a'), p('other', 2, 'b'), p('split', 2, 'b'),
      p('decreasing', 5, 'a'), p('decreasing', 4, 'a'),
      p('nan', 1, 'a'), p('nan', 2, 'a', { type: 'DOUBLE', value: Number.NaN }),
      p('kept', 1, 'a'), p('kept', 1, 'b'), p('kept', 3, 'a', v(2)), p('kept', 3, 'b', { type: 'DOUBLE', value: -0 }),
      p('cut', 1, 'a'), p('cut', 1, 'b'), p('cut', 2, 'a'),
    ];
    const series = compactByDevice(points);
    assert.deepEqual(
      [...series].map(([id, s]) => [id, s.ok]),
      [['longer', false], ['shorter', false], ['split', false], ['other', true], ['decreasing', false], ['nan', false], ['kept', true], ['cut', false]],
    );
    const text = telemetryJsonByDevice(points);
    const messages = readCompactRow(compactRow([...series].map(([deviceId, numbers]) => ({ deviceId, prefix: '{"telemetry":', numbers }))));
    assert.deepEqual(messages.map((m) => [m.deviceId, m.data]), [...text].map(([deviceId, json]) => [deviceId, `{"telemetry":${json}}`]));
  });

  it('a kept row head holds only its own bytes, not a block of the shared buffer pool', () => {
    // Rows are cut from Node's 8 KiB pool around each head; a head that were a slice of it would keep its whole block.
    for (const keys of [['t'], ['temperature', 'humidity'], Array.from({ length: 40 }, (_, i) => `key-${i}`)]) {
      const head = numbersHead('1a2b3c4d-0000-4000-8000-000000000001', '{"deviceName":"d","profileId":"p","telemetry":', keys);
      assert.equal(head.buffer.byteLength, head.length, `${keys.length} keys: a buffer of its own`);
    }
  });
});
