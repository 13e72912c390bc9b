/**
 * The compact outbox form of telemetry (src/core/export/compact-telemetry.ts): what delivery writes from a row's
 * numbers must be exactly the text the JSON form holds (telemetry-json.ts), for devices in the number form, devices
 * that fall back to text, and rows mixing both.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { compactByDevice, compactRow, readCompactRow } from '../../src/core/export/compact-telemetry.ts';
import { telemetryJsonByDevice } from '../../src/core/export/telemetry-json.ts';
import { unpackMessages } from '../../src/core/export/model.ts';
import type { KvValue, TsPoint } from '../../src/core/model.ts';

function random(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}

const NUMBERS: KvValue[] = [
  { type: 'DOUBLE', value: 21.5 },
  { type: 'DOUBLE', value: -0 },
  { type: 'DOUBLE', value: 1e21 },
  { type: 'DOUBLE', value: 5e-324 },
  { type: 'DOUBLE', value: -123.456789 },
  { type: 'DOUBLE', value: 40 },
  { type: 'LONG', value: 40 },
  { type: 'LONG', value: -9007199254740991 },
  { type: 'LONG', value: 1234567 },
];
const OTHERS: KvValue[] = [
  { type: 'DOUBLE', value: Number.NaN },
  { type: 'LONG', value: 9007199254740993n },
  { type: 'BOOLEAN', value: true },
  { type: 'STRING', value: 'a "quoted"\nline\u2028 ключ' },
  { type: 'JSON', value: '{ "x" : [1, 2.50] }' },
];
const KEYS = ['temperature', 'humidity', 'a "b"', 'ключ', '7', '__proto__', 'x'];

/** Devices that mostly keep one shape of numbers (the number form), now and then something the text form must take. */
function batch(next: () => number, size: number, odd: number): TsPoint[] {
  const points: TsPoint[] = [];
  const shapes = new Map<string, string[]>();
  let ts = 1_700_000_000_000;
  while (points.length < size) {
    const deviceId = `device-${Math.floor(next() * 6)}`;
    let shape = shapes.get(deviceId);
    if (!shape) shapes.set(deviceId, (shape = KEYS.slice(0, 2).concat(next() < 0.3 ? [KEYS[2 + Math.floor(next() * 5)]] : [])));
    ts = next() < odd ? ts : ts + 1 + Math.floor(next() * 3);
    const keys = next() < odd ? [...shape].reverse() : shape;
    for (const key of keys) {
      const value = next() < odd ? OTHERS[Math.floor(next() * OTHERS.length)] : NUMBERS[Math.floor(next() * NUMBERS.length)];
      points.push({ deviceId, ts: next() < odd / 4 ? ts - 5 : ts, key, value });
    }
  }
  return points;
}

const prefixOf = (deviceId: string) => `{"deviceName":${JSON.stringify(`név ${deviceId}`)},"profileId":"p","telemetry":`;

describe('compact outbox telemetry', () => {
  it('delivers exactly the text form, on random batches with and without values the number form cannot hold', () => {
    let numberForm = 0;
    let textForm = 0;
    for (let seed = 1; seed <= 300; seed++) {
      const points = batch(random(seed), 1 + (seed % 80) * 3, seed % 3 === 0 ? 0 : 0.04);
      const text = telemetryJsonByDevice(points);
      const series = compactByDevice(points);
      assert.deepEqual([...series.keys()], [...text.keys()], `seed ${seed}: devices in first-seen order`);
      for (const s of series.values()) if (s.ok) numberForm++; else textForm++;
      const devices = [...series].map(([deviceId, numbers]) => ({ deviceId, prefix: prefixOf(deviceId), numbers }));
      const messages = readCompactRow(compactRow(devices));
      assert.deepEqual(
        messages.map((m) => [m.deviceId, m.data]),
        [...text].map(([deviceId, json]) => [deviceId, `${prefixOf(deviceId)}${json}}`]),
        `seed ${seed}`,
      );
    }
    assert.ok(numberForm > 200 && textForm > 50, `both forms exercised (${numberForm} number, ${textForm} text)`);
  });

  it('takes the text form for a ts again, keys in another order, and keys an object would reorder', () => {
    const v = (n: number): KvValue => ({ type: 'LONG', value: n });
    const points: TsPoint[] = [
      { deviceId: 'again', ts: 5, key: 'a', value: v(1) },
      { deviceId: 'again', ts: 5, key: 'a', value: v(2) },
      { deviceId: 'order', ts: 5, key: 'a', value: v(1) },
      { deviceId: 'order', ts: 5, key: 'b', value: v(1) },
      { deviceId: 'order', ts: 6, key: 'b', value: v(1) },
      { deviceId: 'order', ts: 6, key: 'a', value: v(1) },
      { deviceId: 'index', ts: 5, key: 'z', value: v(1) },
      { deviceId: 'index', ts: 5, key: '2', value: v(1) },
      { deviceId: 'plain', ts: 5, key: 'z', value: v(1) },
      { deviceId: 'plain', ts: 6, key: 'z', value: { type: 'DOUBLE', value: 0.1 } },
    ];
    const series = compactByDevice(points);
    assert.deepEqual([...series].map(([id, s]) => [id, s.ok]), [['again', false], ['order', false], ['index', false], ['plain', true]]);
    const text = telemetryJsonByDevice(points);
    const messages = readCompactRow(compactRow([...series].map(([deviceId, numbers]) => ({ deviceId, prefix: '{"telemetry":', numbers }))));
    assert.deepEqual(messages.map((m) => m.data), [...text.values()].map((t) => `{"telemetry":${t}}`));
    assert.equal(messages[3].data, '{"telemetry":[{"ts":5,"values":{"z":1}},{"ts":6,"values":{"z":0.1}}]}');
  });

  it('takes the text form for a key whose JSON is too long for the row\'s 16-bit key length (the row is still written)', () => {
    const long = 'é"'.repeat(17_000);
    const points: TsPoint[] = [
      { deviceId: 'long', ts: 5, key: long, value: { type: 'DOUBLE', value: 1.5 } },
      { deviceId: 'short', ts: 5, key: 't', value: { type: 'DOUBLE', value: 2.5 } },
    ];
    const series = compactByDevice(points);
    assert.deepEqual([...series].map(([id, s]) => [id, s.ok]), [['long', false], ['short', true]]);
    const messages = readCompactRow(compactRow([...series].map(([deviceId, numbers]) => ({ deviceId, prefix: '{"telemetry":', numbers }))));
    assert.deepEqual(messages.map((m) => m.data), [...telemetryJsonByDevice(points).values()].map((t) => `{"telemetry":${t}}`));
  });

  it("gives a compact row's messages ids and payloads as a text row's (dead letters keep the JSON)", () => {
    const points: TsPoint[] = [
      { deviceId: 'd1', ts: 1_700_000_000_001, key: 't', value: { type: 'DOUBLE', value: 1.5 } },
      { deviceId: 'd2', ts: 1_700_000_000_002, key: 't', value: { type: 'DOUBLE', value: 2.5 } },
    ];
    const devices = [...compactByDevice(points)].map(([deviceId, numbers]) => ({ deviceId, prefix: '{"telemetry":', numbers }));
    const base = { ruleId: 'r', partition: 0, kind: 'telemetry' as const, createdTime: 1, payload: '' };
    assert.deepEqual(unpackMessages({ ...base, seq: 7, deviceId: null, messages: 2, points: compactRow(devices) }), [
      { id: '7.0', deviceId: 'd1', payload: '{"telemetry":[{"ts":1700000000001,"values":{"t":1.5}}]}' },
      { id: '7.1', deviceId: 'd2', payload: '{"telemetry":[{"ts":1700000000002,"values":{"t":2.5}}]}' },
    ]);
    assert.deepEqual(unpackMessages({ ...base, seq: 8, deviceId: 'd1', messages: 1, points: compactRow(devices.slice(0, 1)) }), [
      { id: '8', deviceId: 'd1', payload: '{"telemetry":[{"ts":1700000000001,"values":{"t":1.5}}]}' },
    ]);
  });
  it('packs numbers so each reads back as the same double (decimals, integers near 2^31, raw doubles, -0, far timestamps)', () => {
    const next = random(99);
    const values: number[] = [0, -0, 1, -1, 0.5, -0.5, 2.5, -2.5, 0.1 + 0.2, 2 ** 31 - 1, -(2 ** 31) + 1, 2 ** 31, -(2 ** 31), 2 ** 32 + 1, 214748364.7, -214748.3647, 21474.83648, 1e-4, 1.0001, 9007199254740991, 4.35, 1.005, 123.4565];
    while (values.length < 20_000) {
      const r = next();
      const digits = Math.floor(next() * 7);
      if (r < 0.5) values.push(Math.round((next() - 0.5) * 10 ** Math.floor(next() * 12)) / 10 ** digits);
      else if (r < 0.7) values.push(Math.floor((next() - 0.5) * 2 ** Math.floor(next() * 54)));
      else if (r < 0.9) values.push((next() - 0.5) * 10 ** Math.floor(next() * 40 - 20));
      else values.push(values[Math.floor(next() * values.length)]); // a repeat
    }
    const points: TsPoint[] = [];
    let ts = -5;
    for (let i = 0; i + 1 < values.length; i += 2) {
      ts += i % 1000 === 0 ? 2 ** 31 + Math.floor(next() * 2 ** 40) : 1 + Math.floor(next() * 300);
      points.push({ deviceId: 'd', ts, key: 'a', value: { type: 'DOUBLE', value: values[i] } }, { deviceId: 'd', ts, key: 'b', value: { type: 'LONG', value: values[i + 1] } });
    }
    const series = compactByDevice(points);
    assert.equal(series.get('d')!.ok, true);
    const row = compactRow([{ deviceId: 'd', prefix: '{"telemetry":', numbers: series.get('d')! }]);
    assert.ok(row.length < values.length * 9, `packed: ${row.length} bytes for ${values.length} numbers`);
    const [message] = readCompactRow(row);
    assert.equal(message.data, `{"telemetry":${telemetryJsonByDevice(points).get('d')}}`);
  });

  it('keeps timestamps exact when two of a device are 2^53 or more apart (the packed delta would round)', () => {
    // compactByDevice takes any safe integer ts; a delta between two of them may exceed 2^53 and is then not exact.
    for (const [a, b] of [[-(2 ** 53) + 1, 2 ** 53 - 2], [-(2 ** 52), 2 ** 53 - 1], [-3, 2 ** 53 - 1]]) {
      const points: TsPoint[] = [
        { deviceId: 'd', ts: a, key: 't', value: { type: 'DOUBLE', value: 1 } },
        { deviceId: 'd', ts: b, key: 't', value: { type: 'DOUBLE', value: 2 } },
      ];
      const series = compactByDevice(points);
      const [message] = readCompactRow(compactRow([{ deviceId: 'd', prefix: '{"telemetry":', numbers: series.get('d')! }]));
      assert.equal(message.data, `{"telemetry":${telemetryJsonByDevice(points).get('d')}}`, `ts ${a} then ${b}`);
    }
  });

  it('reads rows of version 1 (numbers as f64s, written before the packed form)', () => {
    const parts: Buffer[] = [Buffer.from([1])];
    const u16 = (n: number) => { const b = Buffer.alloc(2); b.writeUInt16LE(n); return b; };
    const u32 = (n: number) => { const b = Buffer.alloc(4); b.writeUInt32LE(n); return b; };
    const f64s = (...xs: number[]) => Buffer.from(new Float64Array(xs).buffer);
    const text = (s: string, width: 2 | 4) => { const b = Buffer.from(s); return Buffer.concat([width === 2 ? u16(b.length) : u32(b.length), b]); };
    parts.push(text('d1', 2), text('{"telemetry":', 4), Buffer.from([0]), u16(2), text('"t"', 2), text('"h"', 2), u32(2), f64s(1_700_000_000_001, 21.5, 40, 1_700_000_000_002, -0, 0.1));
    parts.push(text('d2', 2), text('{"telemetry":', 4), Buffer.from([1]), text('[{"ts":5,"values":{"s":"x"}}]', 4));
    const messages = readCompactRow(Buffer.concat(parts));
    assert.deepEqual(messages, [
      { deviceId: 'd1', data: '{"telemetry":[{"ts":1700000000001,"values":{"t":21.5,"h":40}},{"ts":1700000000002,"values":{"t":0,"h":0.1}}]}' },
      { deviceId: 'd2', data: '{"telemetry":[{"ts":5,"values":{"s":"x"}}]}' },
    ]);
  });
});
