import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { parseTelemetryPoints } from '../../src/core/kv-json.ts';
import { telemetryPoints, telemetryPointsFromBytes } from '../../src/core/telemetry-json-bytes.ts';
import type { TsPoint } from '../../src/core/model.ts';

const NOW = 1_700_000_000_000;

/** What the general path answers for `text`: its points, or the error code it throws. */
function general(text: string): TsPoint[] | string {
  try {
    return parseTelemetryPoints(text, 'dev', NOW);
  } catch (err) {
    return (err as { code?: string }).code ?? String(err);
  }
}

/** The byte reader's answer for `text` (undefined: left to the general path); when it answers, it must agree. */
function fast(text: string): TsPoint[] | undefined {
  const points = telemetryPointsFromBytes(Buffer.from(text), 'dev', NOW);
  if (points !== undefined) assert.deepStrictEqual(points, general(text), `bytes and general path differ on ${text}`); // deepStrictEqual: -0 is not 0
  return points;
}

const point = (ts: number, key: string, type: string, value: unknown) => ({ deviceId: 'dev', ts, key, value: { type, value } });

describe('telemetry read from its bytes (issue 17: the MQTT hot path)', () => {
  test('the bench payload: a ts and two numbers', () => {
    assert.deepStrictEqual(fast('{"ts":1700000000123,"values":{"temperature":21.5,"humidity":40}}'), [
      point(1700000000123, 'temperature', 'DOUBLE', 21.5),
      point(1700000000123, 'humidity', 'LONG', 40),
    ]);
  });

  test('plain values at now, values before ts, arrays of items, whitespace', () => {
    assert.deepStrictEqual(fast('{"a":1,"b":true,"c":false,"d":null,"e":"x"}'), [
      point(NOW, 'a', 'LONG', 1),
      point(NOW, 'b', 'BOOLEAN', true),
      point(NOW, 'c', 'BOOLEAN', false),
      point(NOW, 'e', 'STRING', 'x'),
    ]);
    assert.deepStrictEqual(fast('{"values":{"a":2.25},"ts":5}'), [point(5, 'a', 'DOUBLE', 2.25)]);
    assert.deepStrictEqual(fast(' [ {"ts":1,"values":{"a":1}} , {"b":-2.5} ,{"ts":0,"values":{}}]\r\n'), [point(1, 'a', 'LONG', 1), point(NOW, 'b', 'DOUBLE', -2.5)]);
    assert.deepStrictEqual(fast('\t{ "ts" : 7 , "values" : { "a" : 0.001 , "b" : -0 } }\n'), [point(7, 'a', 'DOUBLE', 0.001), point(7, 'b', 'LONG', -0)]);
    assert.deepStrictEqual(fast('{}'), []);
    assert.deepStrictEqual(fast('[]'), []);
  });

  test('numeric strings are cast as on the general path', () => {
    assert.deepStrictEqual(fast('{"a":"12","b":"1.25","c":"12a","d":"-7","e":""}'), [
      point(NOW, 'a', 'LONG', 12),
      point(NOW, 'b', 'DOUBLE', 1.25),
      point(NOW, 'c', 'STRING', '12a'),
      point(NOW, 'd', 'LONG', -7),
      point(NOW, 'e', 'STRING', ''),
    ]);
  });

  test('numbers of up to 15 digits give JSON.parse\'s doubles', () => {
    for (const n of ['0.1', '0.3', '123456789012.345', '99999999999999.9', '-0.5', '1.000000000001', '3.14159265358979', '0.00000000000001', '999999999999999']) {
      const text = `{"v":${n}}`;
      assert.notEqual(fast(text), undefined, text);
    }
  });

  test('what the reader leaves to the general path', () => {
    const leftOver = [
      '{"a":1,"a":2}', // a key given twice: the last value wins at the first one's place
      '{"a":null,"a":2}',
      '{"2":1,"1":2}', // integer-like keys are ordered first by JavaScript
      '{"a\\"b":1}', // escapes
      '{"é":1}', // non-ASCII bytes
      '{"a":"\u00e9"}',
      '{"a":{"b":1}}', // a JSON value
      '{"a":[1]}',
      '{"a":1e3}', // exponent: the exact parser
      '{"a":21.0}', // a zero fraction: the exact parser (DOUBLE, not LONG)
      '{"a":1234567890123456}', // 16 digits
      '{"a":1234567890.1234567}', // more than 15 digits in all
      '{"a":"x1e5"}', // the exact parser's test matches inside strings too
      '{"a1.0":1}',
      '{"ts":1,"values":{"a":1},"x":2}', // other members beside ts and values
      '{"ts":1,"a":2}', // ts without values
      '{"ts":1,"a":{"b":1}}',
      '{"values":{"a":1},"x":1}',
      '{"values":{"a":1},"values":{"b":1}}',
      '{"ts":1,"ts":2,"values":{"a":1}}',
      '{"values":{"a":1}}',
      '{"ts":-1,"values":{"a":1}}',
      '{"ts":1.5,"values":{"a":1}}',
      '{"ts":"1","values":{"a":1}}',
      '{"ts":1,"values":2}',
      '{"a":01}', // not JSON
      '{"a":1,}',
      '{"a":1}x',
      '{"a":tru}',
      '{"a":-}',
      '{"a":1.}',
      '"a"',
      '[1]',
      '',
    ];
    for (const text of leftOver) assert.equal(fast(text), undefined, text);
    const many = `{${Array.from({ length: 200 }, (_, i) => `"k${i}":${i}`).join(',')}}`;
    assert.equal(fast(many), undefined, 'more members than the reader takes');
  });

  test('items without a ts get the time of the call, one time for all of them, on both paths', () => {
    for (const text of ['[{"a":1},{"b":2}]', '[{"a":1.0},{"b":2}]']) {
      const before = Date.now();
      const points = telemetryPoints(Buffer.from(text), 'dev', undefined);
      const after = Date.now();
      assert.equal(points.length, 2);
      assert.ok(points[0].ts >= before && points[0].ts <= after, text);
      assert.equal(points[1].ts, points[0].ts);
    }
    assert.deepStrictEqual(telemetryPoints(Buffer.from('xx{"ts":3,"values":{"a":1}}yy'), 'dev', undefined, 2, 27), [point(3, 'a', 'LONG', 1)]);
    assert.deepStrictEqual(telemetryPoints(Buffer.from('xx{"ts":3,"values":{"a":1.0}}yy'), 'dev', undefined, 2, 29), [point(3, 'a', 'DOUBLE', 1)]);
  });

  test('a cached key is never another key with the same hash slot', () => {
    // Two different keys of one length that share a cache slot (found by trying; the cache has 1024 slots).
    const slotOf = (key: string) => {
      let hash = key.length;
      for (let i = 0; i < key.length; i++) hash = (Math.imul(hash, 31) + key.charCodeAt(i)) | 0;
      return (hash ^ (hash >>> 10)) & 1023;
    };
    const bySlot = new Map<number, string>();
    let pair: [string, string] | undefined;
    for (let i = 0; !pair; i++) {
      const key = `key${i.toString(36).padStart(4, '0')}`;
      const other = bySlot.get(slotOf(key));
      if (other !== undefined) pair = [other, key];
      else bySlot.set(slotOf(key), key);
    }
    for (let round = 0; round < 3; round++) {
      for (const key of pair) assert.deepStrictEqual(fast(`{"${key}":1}`), [point(NOW, key, 'LONG', 1)]);
    }
    assert.deepStrictEqual(fast(`{"${pair[0]}":1,"${pair[1]}":2}`), [point(NOW, pair[0], 'LONG', 1), point(NOW, pair[1], 'LONG', 2)]);
  });

  test('agrees with the general path on 30,000 random payloads', () => {
    let seed = 17;
    const random = () => (seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
    const pick = <T>(xs: readonly T[]): T => xs[Math.floor(random() * xs.length)];
    const keys = ['a', 'b', 'temperature', 'ts', 'values', '1', 'x1e', 'k2.0', '', 'ä', 'a b', '__proto__', 'constructor'];
    const spaces = ['', '', '', ' ', '\n', '\t', '\r\n '];
    const digits = (n: number) => Array.from({ length: n }, () => String(Math.floor(random() * 10))).join('');
    const number = () => {
      let text = pick(['', '', '-']) + pick(['0', digits(1 + Math.floor(random() * 17)), '00']);
      if (random() < 0.5) text += `.${pick([digits(1 + Math.floor(random() * 16)), '0', '00', '050', ''])}`;
      if (random() < 0.1) text += pick(['e3', 'E-2', 'e']);
      return text;
    };
    const value = (depth: number): string => {
      const r = random();
      if (r < 0.45) return number();
      if (r < 0.55) return pick(['true', 'false', 'null', 'tru', 'nul']);
      if (r < 0.75) return JSON.stringify(pick(['x', '12', '1.5', '-3', '1.0', '1e5', 'abc 12345678901234567', '', ' 7', 'é', 'a"b']));
      if (r < 0.85 && depth < 2) return object(depth + 1);
      if (r < 0.9) return `[${number()}]`;
      return pick(['', '01', '-', '"', '{']);
    };
    const object = (depth: number): string => {
      const members: string[] = [];
      const n = Math.floor(random() * 5);
      for (let i = 0; i < n; i++) members.push(`${pick(spaces)}${JSON.stringify(pick(keys))}${pick(spaces)}:${pick(spaces)}${value(depth)}${pick(spaces)}`);
      if (random() < 0.05) members.push('');
      return `{${members.join(',')}}`;
    };
    const item = () => {
      const r = random();
      if (r < 0.5) return object(1);
      const ts = pick([String(Math.floor(random() * 2 ** 45)), '0', '-5', '1.5', '"12"', '1e3', '12345678901234567']);
      const members = [`"ts":${pick(spaces)}${ts}`, `"values":${object(1)}`];
      if (random() < 0.3) members.reverse();
      if (random() < 0.05) members.push('"x":1');
      if (random() < 0.03) members.pop();
      if (random() < 0.05) members[members.length - 1] = members[members.length - 1].replace(/^"(ts|values)"/, () => JSON.stringify(pick(keys)));
      return `{${members.join(',')}}`;
    };
    let read = 0;
    for (let n = 0; n < 30_000; n++) {
      let text = random() < 0.7 ? item() : `[${Array.from({ length: Math.floor(random() * 4) }, item).join(',')}]`;
      if (random() < 0.1) {
        const at = Math.floor(random() * (text.length + 1));
        text = text.slice(0, at) + pick(['', ',', '}', '"', ' ', '0', '.', 'x']) + text.slice(at + 1);
      }
      if (fast(text) !== undefined) read++;
    }
    assert.ok(read > 2_000, `the reader answered only ${read} of 30,000 payloads`);
  });
});
