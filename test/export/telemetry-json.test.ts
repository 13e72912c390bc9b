/**
 * The export's telemetry rendering (src/core/export/telemetry-json.ts) writes JSON text without building objects; it
 * must give exactly the text JSON.stringify gives for the reference objects, whatever the batch holds.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { kvJsonText, referenceTelemetry, telemetryJsonByDevice, tsText } from '../../src/core/export/telemetry-json.ts';
import { kvToJson } from '../../src/core/kv-json.ts';
import type { KvValue, TsPoint } from '../../src/core/model.ts';

/** A small deterministic PRNG, so a failure can be replayed. */
function random(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}

const VALUES: KvValue[] = [
  { type: 'DOUBLE', value: 21.5 },
  { type: 'DOUBLE', value: -0 },
  { type: 'DOUBLE', value: 1e21 },
  { type: 'DOUBLE', value: Number.NaN },
  { type: 'DOUBLE', value: Number.POSITIVE_INFINITY },
  { type: 'LONG', value: 40 },
  { type: 'LONG', value: 9007199254740993n },
  { type: 'LONG', value: -12n },
  { type: 'BOOLEAN', value: true },
  { type: 'BOOLEAN', value: false },
  { type: 'STRING', value: 'a "quoted"\nline\u2028 and \u0001' },
  { type: 'STRING', value: '' },
  { type: 'JSON', value: '{ "x" : [1, 2.50, {"y":null}] }' },
  { type: 'JSON', value: 'not json {' },
];
const KEYS = ['temperature', 'humidity', 'a "b"', 'ключ', '7', '0', '01', '4294967295', '__proto__', 'constructor', 'toString'];

function batch(next: () => number, size: number): TsPoint[] {
  const points: TsPoint[] = [];
  let ts = 1_700_000_000_000;
  while (points.length < size) {
    const deviceId = `device-${Math.floor(next() * 5)}`;
    // Mostly increasing ts per message; sometimes a ts again (a device without ts sends several in one ms).
    ts = next() < 0.15 ? ts : ts + 1 + Math.floor(next() * 3);
    const keys = 1 + Math.floor(next() * 4);
    for (let k = 0; k < keys; k++) {
      const key = next() < 0.7 ? KEYS[Math.floor(next() * 2)] : KEYS[Math.floor(next() * KEYS.length)];
      points.push({ deviceId, ts: next() < 0.05 ? ts - 5 : ts, key, value: VALUES[Math.floor(next() * VALUES.length)] });
    }
  }
  return points;
}

describe('telemetry JSON of export messages', () => {
  it('renders every value type as JSON.stringify renders its JSON form', () => {
    for (const value of VALUES) assert.equal(kvJsonText(value), JSON.stringify(kvToJson(value)), `${value.type} ${String(value.value)}`);
  });

  it('writes a timestamp as String() does, across the millions it is cut at and outside the range it speeds up', () => {
    const next = random(7);
    const samples = [0, 1, 999_999, 1_000_000, 1_000_001, 1_999_999, 2_000_000, 1_700_000_000_000, 1_700_000_999_999, 1_700_001_000_000, 1_700_000_000_999, 1_700_000_001_000, Number.MAX_SAFE_INTEGER, Number.MAX_SAFE_INTEGER - 1, 2 ** 53, 1e21, -1, -1_700_000_000_000, 1.5e12 + 0.5, Number.NaN];
    for (let i = 0; i < 20_000; i++) samples.push(Math.floor(next() * 2 ** 53), 1_700_000_000_000 + Math.floor(next() * 5_000_000));
    for (const ts of samples) assert.equal(tsText(ts), String(ts), String(ts));
  });

  it('gives the text JSON.stringify gives for the reference objects, on random batches', () => {
    for (let seed = 1; seed <= 400; seed++) {
      const points = batch(random(seed), 1 + (seed % 60));
      const fast = telemetryJsonByDevice(points);
      const reference = referenceTelemetry(points, () => true);
      assert.deepEqual([...fast.keys()], [...reference.keys()], `seed ${seed}: devices in first-seen order`);
      for (const [deviceId, text] of fast) assert.equal(text, JSON.stringify(reference.get(deviceId)), `seed ${seed}, ${deviceId}`);
    }
  });

  it('merges a ts sent twice into one entry and lets the later value of a key win', () => {
    const v = (n: number): KvValue => ({ type: 'LONG', value: n });
    const points: TsPoint[] = [
      { deviceId: 'd', ts: 5, key: 'a', value: v(1) },
      { deviceId: 'e', ts: 5, key: 'a', value: v(9) },
      { deviceId: 'd', ts: 6, key: 'b', value: v(2) },
      { deviceId: 'd', ts: 5, key: 'a', value: v(3) },
      { deviceId: 'd', ts: 5, key: 'c', value: v(4) },
    ];
    const out = telemetryJsonByDevice(points);
    assert.equal(out.get('d'), '[{"ts":5,"values":{"a":3,"c":4}},{"ts":6,"values":{"b":2}}]');
    assert.equal(out.get('e'), '[{"ts":5,"values":{"a":9}}]');
  });

  it('orders index-like keys as a JSON object does', () => {
    const v: KvValue = { type: 'BOOLEAN', value: true };
    const out = telemetryJsonByDevice([
      { deviceId: 'd', ts: 1, key: 'z', value: v },
      { deviceId: 'd', ts: 1, key: '10', value: v },
      { deviceId: 'd', ts: 1, key: '2', value: v },
    ]);
    assert.equal(out.get('d'), '[{"ts":1,"values":{"2":true,"10":true,"z":true}}]');
  });
});
