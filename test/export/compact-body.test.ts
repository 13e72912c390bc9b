/**
 * The webhook body written in one pass from compact outbox rows (src/core/export/compact-body.ts) must be byte for
 * byte the body the string rendering gives: each message's JSON text (readCompactRow, then the message wrapper),
 * joined and UTF-8 encoded. Random batches of both row forms, odd numbers (-0, 1e21, 5e-324, large LONGs), unicode and
 * escaped keys, device ids and rule names that need escaping.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { compactByDevice, compactRow, readCompactRow } from '../../src/core/export/compact-telemetry.ts';
import { writeNumber } from '../../src/core/export/compact-body.ts';
import { messagesOf, type OutboxRow } from '../../src/core/export/model.ts';
import type { KvValue, TsPoint } from '../../src/core/model.ts';
import { webhookBody } from '../../src/export/webhook-sink.ts';

function random(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}

const SPECIAL = [0, -0, 1e21, 1e-7, 1e-6, 5e-324, -5e-324, 2 ** 53, 2 ** 53 - 1, -(2 ** 53) + 1, 2 ** 51, 2 ** 51 - 0.5, 0.1, 0.1 + 0.2, 1 / 3, -123.456789,
  21.5, 123456789012.25, 999999999999999.9, 1e15 + 0.5, 4.35, 0.000123, 1.7976931348623157e308, 9.999999999999999e20, 1e-5 + 1e-21];

/** A value: the special ones, short decimals, integers of every size, and raw doubles. */
function numberValue(next: () => number): KvValue {
  const r = next();
  if (r < 0.2) return { type: 'DOUBLE', value: SPECIAL[Math.floor(next() * SPECIAL.length)] };
  if (r < 0.45) return { type: 'DOUBLE', value: Math.round((next() - 0.5) * 10 ** Math.floor(next() * 12)) / 10 ** Math.floor(next() * 8) };
  if (r < 0.6) return { type: 'LONG', value: Math.floor((next() - 0.5) * 2 ** Math.floor(next() * 54)) };
  if (r < 0.8) return { type: 'DOUBLE', value: (next() - 0.5) * 10 ** Math.floor(next() * 40 - 20) };
  return { type: 'DOUBLE', value: new Float64Array(new Uint32Array([Math.floor(next() * 2 ** 32), Math.floor(next() * 0x7fefffff)]).buffer)[0] * (next() < 0.5 ? -1 : 1) };
}
const OTHERS: KvValue[] = [
  { type: 'DOUBLE', value: Number.NaN },
  { type: 'LONG', value: 9007199254740993n },
  { type: 'BOOLEAN', value: true },
  { type: 'STRING', value: 'a "quoted"\nline\u2028 ключ 😀' },
  { type: 'JSON', value: '{ "x" : [1, 2.50] }' },
];
const KEYS = ['temperature', 'humidity', 'a "b"\\', 'ключ', 'emoji 😀', 'tab\there', '\u2028', 'x', '7', '__proto__'];
const DEVICES = ['device-1', 'dévice "2"', 'd\\3', 'd\n4', '😀5', 'plain-6'];

function batch(next: () => number, size: number, odd: number): TsPoint[] {
  const points: TsPoint[] = [];
  const shapes = new Map<string, string[]>();
  let ts = 1_700_000_000_000;
  while (points.length < size) {
    const deviceId = DEVICES[Math.floor(next() * DEVICES.length)];
    let shape = shapes.get(deviceId);
    if (!shape) shapes.set(deviceId, (shape = [KEYS[Math.floor(next() * 7)], 'x'].concat(next() < 0.3 ? [KEYS[7 + Math.floor(next() * 3)]] : [])));
    ts = next() < odd ? ts : ts + 1 + Math.floor(next() * 3);
    for (const key of shape) points.push({ deviceId, ts, key, value: next() < odd ? OTHERS[Math.floor(next() * OTHERS.length)] : numberValue(next) });
  }
  return points;
}

/** The body as the string rendering gives it (session 7's delivery): each message's text, joined, encoded. */
function stringBody(rows: OutboxRow[], rule: string): Buffer {
  const texts: string[] = [];
  for (const row of rows) {
    const messages = readCompactRow(row.points!);
    messages.forEach((m, n) => {
      const id = messages.length === 1 ? String(row.seq) : `${row.seq}.${n}`;
      texts.push(`{"id":"${id}","rule":${JSON.stringify(rule)},"kind":"${row.kind}","deviceId":${JSON.stringify(m.deviceId)},"ts":${row.createdTime},"data":${m.data}}`);
    });
  }
  return Buffer.from(`[${texts.join(',')}]`, 'utf8');
}

describe('webhook body in one pass from compact rows', () => {
  it('writes numbers exactly as String() does', () => {
    const next = random(42);
    const buf = Buffer.alloc(64);
    const values = [...SPECIAL, ...SPECIAL.map((v) => -v)];
    for (let i = 0; i < 200_000; i++) values.push((numberValue(next).value as number));
    for (const v of values) {
      if (!Number.isFinite(v)) continue;
      const end = writeNumber(buf, 0, v);
      assert.equal(buf.toString('latin1', 0, end), String(v), `${v}`);
    }
  });

  it('gives byte for byte the string rendering\'s body over random batches of both forms', () => {
    let numberForm = 0;
    let textForm = 0;
    for (let seed = 1; seed <= 300; seed++) {
      const next = random(seed);
      const rows: OutboxRow[] = [];
      for (let r = 0; r < 1 + (seed % 4); r++) {
        const points = batch(next, 1 + Math.floor(next() * 120), seed % 3 === 0 ? 0 : 0.03);
        const series = compactByDevice(points);
        for (const s of series.values()) if (s.ok) numberForm++; else textForm++;
        const devices = [...series].map(([deviceId, numbers]) => ({ deviceId, prefix: `{"deviceName":${JSON.stringify(`név ${deviceId}`)},"profileId":"p","telemetry":`, numbers }));
        rows.push({ seq: seed * 10 + r, ruleId: 'r', partition: 0, kind: 'telemetry', createdTime: 1_700_000_000_000 + seed, deviceId: devices.length === 1 ? devices[0].deviceId : null, messages: devices.length, payload: '', points: compactRow(devices) });
      }
      const rule = seed % 2 ? 'all telemetry' : 'règle "x"\\ 😀';
      const messages = rows.flatMap((row) => messagesOf(row, rule));
      const expected = stringBody(rows, rule);
      assert.ok(webhookBody(messages).equals(expected), `seed ${seed}: body bytes`);
      // Each message's text (Redis Streams, dead letters) is the same JSON.
      assert.deepEqual(JSON.parse(`[${messages.map((m) => m.json).join(',')}]`), JSON.parse(expected.toString('utf8')), `seed ${seed}: texts`);
      assert.equal(Buffer.from(`[${messages.map((m) => m.json).join(',')}]`).equals(expected), true, `seed ${seed}: text bytes`);
    }
    assert.ok(numberForm > 300 && textForm > 50, `both forms exercised (${numberForm} number, ${textForm} text)`);
  });

  it('mixes compact messages with text ones in one body', () => {
    const points: TsPoint[] = [{ deviceId: 'd1', ts: 1_700_000_000_001, key: 't', value: { type: 'DOUBLE', value: 1.5 } }];
    const devices = [...compactByDevice(points)].map(([deviceId, numbers]) => ({ deviceId, prefix: '{"telemetry":', numbers }));
    const compact = messagesOf({ seq: 3, ruleId: 'r', partition: 0, kind: 'telemetry', createdTime: 5, deviceId: 'd1', messages: 1, payload: '', points: compactRow(devices) }, 'r');
    const text = messagesOf({ seq: 4, ruleId: 'r', partition: 0, kind: 'connectivity', createdTime: 6, deviceId: 'd1', payload: '{"ok":"é"}' }, 'r');
    const body = webhookBody([...text, ...compact, ...text]).toString('utf8');
    const one = '{"id":"3","rule":"r","kind":"telemetry","deviceId":"d1","ts":5,"data":{"telemetry":[{"ts":1700000000001,"values":{"t":1.5}}]}}';
    const two = '{"id":"4","rule":"r","kind":"connectivity","deviceId":"d1","ts":6,"data":{"ok":"é"}}';
    assert.equal(body, `[${two},${one},${two}]`);
    assert.equal(compact[0].json, one);
  });
  it('copies repeated values and writes timestamps across a million boundary, below 10^6 and negative, as the text does', () => {
    const points: TsPoint[] = [];
    const shapes: [number, number][] = [[-0, 0], [0, -0], [21.5, 40], [21.5, 40], [21.6, 40], [21.5, 41], [1e21, 1e21], [1e21, 5e-324], [0.1 + 0.2, 0.1 + 0.2]];
    let ts = 1_700_000_999_990;
    for (const deviceId of ['a', 'b']) {
      for (const [x, y] of shapes) {
        ts += 3;
        points.push({ deviceId, ts, key: 'x', value: { type: 'DOUBLE', value: x } }, { deviceId, ts, key: 'y', value: { type: 'DOUBLE', value: y } });
      }
      ts = -2_000_005;
    }
    for (const [i, [x, y]] of shapes.entries()) points.push({ deviceId: 'c', ts: 999_990 + i * 3, key: 'x', value: { type: 'DOUBLE', value: x } }, { deviceId: 'c', ts: 999_990 + i * 3, key: 'y', value: { type: 'DOUBLE', value: y } });
    const devices = [...compactByDevice(points)].map(([deviceId, numbers]) => ({ deviceId, prefix: '{"telemetry":', numbers }));
    assert.ok(devices.every((d) => d.numbers.ok));
    const row: OutboxRow = { seq: 9, ruleId: 'r', partition: 0, kind: 'telemetry', createdTime: 5, deviceId: null, messages: devices.length, payload: '', points: compactRow(devices) };
    assert.deepEqual(webhookBody(messagesOf(row, 'r')), stringBody([row], 'r'));
    assert.ok(stringBody([row], 'r').toString().includes('"ts":1700001000002,'));
  });

  it('copies a repeated reading\'s entry and writes only its new timestamp, byte for byte as the text does', () => {
    // Readings that repeat (most of a fleet's, and every one of bench/export/run.ts's) take the entry-copy path;
    // timestamps step across millions (where the copy is not taken) and values change now and then.
    let repeats = 0;
    for (let seed = 1; seed <= 200; seed++) {
      const next = random(1000 + seed);
      const points: TsPoint[] = [];
      const small = [21.5, 40, -0, 0, 1e21, 0.1 + 0.2, 7];
      for (const deviceId of ['a', 'b', 'c']) {
        let ts = 1_700_000_000_000 + Math.floor(next() * 2_000_000);
        let x = 21.5;
        let y = 40;
        for (let m = 0; m < 1 + Math.floor(next() * 60); m++) {
          ts += 1 + Math.floor(next() < 0.1 ? next() * 400_000 : next() * 300);
          if (next() < 0.15) x = small[Math.floor(next() * small.length)];
          if (next() < 0.1) y = small[Math.floor(next() * small.length)];
          points.push({ deviceId, ts, key: 'temperature', value: { type: 'DOUBLE', value: x } }, { deviceId, ts, key: 'humidity', value: { type: 'LONG', value: y } });
        }
      }
      const devices = [...compactByDevice(points)].map(([deviceId, numbers]) => ({ deviceId, prefix: `{"deviceName":"n ${deviceId}","profileId":"p","telemetry":`, numbers }));
      assert.ok(devices.every((d) => d.numbers.ok));
      const row: OutboxRow = { seq: seed, ruleId: 'r', partition: 0, kind: 'telemetry', createdTime: 5, deviceId: null, messages: devices.length, payload: '', points: compactRow(devices) };
      const body = webhookBody(messagesOf(row, 'r'));
      assert.ok(body.equals(stringBody([row], 'r')), `seed ${seed}: body bytes`);
      repeats += (body.toString().match(/"values":\{"temperature":21\.5,"humidity":40\}/g) ?? []).length;
    }
    assert.ok(repeats > 1000, `repeated readings exercised (${repeats})`);
  });

  it('writes long runs of repeated readings (copied in doubling blocks) byte for byte as the text does', () => {
    // Runs of 1 to ~900 repeated entries (powers of two and their neighbours among them), broken by a changed value,
    // a timestamp in the next million, or the message's end; deltas of one to three varint bytes.
    const lengths = [1, 2, 3, 4, 5, 7, 8, 9, 15, 16, 17, 31, 32, 33, 63, 64, 65, 127, 128, 129, 255, 256, 257, 300, 511, 512, 513, 900];
    let entries = 0;
    for (let seed = 1; seed <= 40; seed++) {
      const next = random(5000 + seed);
      const points: TsPoint[] = [];
      for (const deviceId of ['d-1', 'ключ 2', 'd"3']) {
        let ts = 1_700_000_000_000 + Math.floor(next() * 999_000);
        let x = 21.5;
        for (let run = 0; run < 1 + Math.floor(next() * 4); run++) {
          const n = lengths[Math.floor(next() * lengths.length)];
          for (let m = 0; m < n; m++) {
            const step = next();
            ts += step < 0.7 ? 1 : step < 0.9 ? 1 + Math.floor(next() * 200) : 1 + Math.floor(next() * 40_000);
            points.push({ deviceId, ts, key: 'temperature', value: { type: 'DOUBLE', value: x } }, { deviceId, ts, key: 'humidity', value: { type: 'LONG', value: -40 } });
          }
          // The next run starts with a new value, or in the next million of ms.
          if (next() < 0.5) x = Math.round((x + 0.1) * 10) / 10;
          else ts += 1_000_000 - (ts % 1_000_000) + Math.floor(next() * 3);
        }
      }
      entries += points.length / 2;
      const devices = [...compactByDevice(points)].map(([deviceId, numbers]) => ({ deviceId, prefix: `{"deviceName":"n ${deviceId}","profileId":"p","telemetry":`, numbers }));
      assert.ok(devices.every((d) => d.numbers.ok));
      const row: OutboxRow = { seq: seed, ruleId: 'r', partition: 0, kind: 'telemetry', createdTime: 1_700_000_000_000 + seed, deviceId: null, messages: devices.length, payload: '', points: compactRow(devices) };
      const messages = messagesOf(row, 'all telemetry');
      assert.ok(webhookBody(messages).equals(stringBody([row], 'all telemetry')), `seed ${seed}: body bytes`);
      assert.equal(Buffer.from(`[${messages.map((m) => m.json).join(',')}]`).equals(stringBody([row], 'all telemetry')), true, `seed ${seed}: texts`);
    }
    assert.ok(entries > 20_000, `long runs exercised (${entries} entries)`);
  });

  it('writes packed integers and 1-4 digit decimals from their digits as String() does', () => {
    // Values the packer tags as integers (|v| < 2^31) and decimals (m / 10^d, |m| < 2^31, d 1-4), written from m:
    // both signs, the bounds, leading zeros after the point, and long keys (the constant bytes go 4 at a time).
    const next = random(77);
    const fixed = [0, -0, 1, -1, 2 ** 31 - 1, -(2 ** 31) + 1, 2 ** 31, 0.1, -0.1, 0.0001, -0.0001, 0.0012, 0.05, 1.5, -21.25, 214748.3647, -214748.3647, 99999.9999, 100000.001, 4.35, 1.005, 0.3];
    const values: number[] = [...fixed];
    for (let i = 0; i < 20_000; i++) {
      const d = Math.floor(next() * 5);
      const m = Math.floor((next() - 0.5) * 2 * 2 ** Math.floor(next() * 32));
      values.push(m / 10 ** d);
    }
    const keys = ['t', 'humidity', 'a much longer key name than most 😀', 'x"y'];
    const points: TsPoint[] = [];
    let ts = 1_700_000_000_000;
    for (let i = 0; i < values.length; i += keys.length) {
      ts += 1 + Math.floor(next() * 5000);
      keys.forEach((key, k) => points.push({ deviceId: `d${i % 7}`, ts, key, value: { type: 'DOUBLE', value: values[(i + k) % values.length] } }));
    }
    const devices = [...compactByDevice(points)].map(([deviceId, numbers]) => ({ deviceId, prefix: '{"telemetry":', numbers }));
    assert.ok(devices.every((d) => d.numbers.ok));
    const row: OutboxRow = { seq: 77, ruleId: 'r', partition: 0, kind: 'telemetry', createdTime: 1_700_000_000_000, deviceId: null, messages: devices.length, payload: '', points: compactRow(devices) };
    const body = webhookBody(messagesOf(row, 'r'));
    const expected = stringBody([row], 'r');
    assert.ok(body.equals(expected), 'body bytes');
    // The values went out as written by String() (the text rendering is the oracle; this checks it read them all).
    for (const v of fixed) assert.ok(expected.toString().includes(`:${String(v)}`), `${v}`);
  });

  it('writes rows of version 1 (numbers as f64s) as the string rendering does', () => {
    const u16 = (n: number) => { const b = Buffer.alloc(2); b.writeUInt16LE(n); return b; };
    const u32 = (n: number) => { const b = Buffer.alloc(4); b.writeUInt32LE(n); return b; };
    const text = (s: string, width: 2 | 4) => { const b = Buffer.from(s); return Buffer.concat([width === 2 ? u16(b.length) : u32(b.length), b]); };
    const points = Buffer.concat([
      Buffer.from([1]), text('d1', 2), text('{"telemetry":', 4), Buffer.from([0]), u16(2), text('"t"', 2), text('"h"', 2), u32(2),
      Buffer.from(new Float64Array([1_700_000_000_001, 21.5, 40, 1_700_000_000_002, 21.5, 0.1]).buffer),
    ]);
    const row: OutboxRow = { seq: 2, ruleId: 'r', partition: 0, kind: 'telemetry', createdTime: 5, deviceId: 'd1', messages: 1, payload: '', points };
    const body = webhookBody(messagesOf(row, 'r'));
    assert.deepEqual(body, stringBody([row], 'r'));
    assert.ok(body.toString().includes('[{"ts":1700000000001,"values":{"t":21.5,"h":40}},{"ts":1700000000002,"values":{"t":21.5,"h":0.1}}]'));
  });
});
