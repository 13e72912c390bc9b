import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { kvToString, needsExactNumbers, parseAttributes, parseTelemetry, parseTelemetryPoints, toKvValue } from '../../src/core/kv-json.ts';
import { FleetgateError } from '../../src/core/errors.ts';

const NOW = 1_700_000_000_000;

/** [key, type, value] of each parsed value; parseTelemetryPoints (the ingest path) must read the same as parseTelemetry. */
function values(text: string) {
  const groups = parseTelemetry(text, NOW);
  const points = parseTelemetryPoints(text, 'dev', NOW);
  assert.deepEqual(points, groups.flatMap((g) => g.entries.map((e) => ({ deviceId: 'dev', ts: g.ts, key: e.key, value: e.value }))));
  return groups.flatMap((g) => g.entries.map((e) => [e.key, e.value.type, e.value.value]));
}

describe('spec §8.2 JSON value typing', () => {
  test('booleans, integers, doubles, strings, objects', () => {
    assert.deepEqual(values('{"b":true,"i":42,"d":1.5,"d0":1.0,"s":"hi","o":{"x":1},"a":[1,2]}'), [
      ['b', 'BOOLEAN', true],
      ['i', 'LONG', 42],
      ['d', 'DOUBLE', 1.5],
      ['d0', 'DOUBLE', 1],
      ['s', 'STRING', 'hi'],
      ['o', 'JSON', '{"x":1}'],
      ['a', 'JSON', '[1,2]'],
    ]);
  });
  test('1e3 is a long; 1.5e3 and 1e-3 are doubles', () => {
    assert.deepEqual(values('{"a":1e3,"b":1.5e3,"c":1e-3}'), [
      ['a', 'LONG', 1000],
      ['b', 'DOUBLE', 1500],
      ['c', 'DOUBLE', 0.001],
    ]);
  });
  test('numeric strings are cast to numbers (type cast enabled)', () => {
    assert.deepEqual(values('{"a":"12","b":"1.25","c":"12a","d":"-7"}'), [
      ['a', 'LONG', 12],
      ['b', 'DOUBLE', 1.25],
      ['c', 'STRING', '12a'],
      ['d', 'LONG', -7],
    ]);
    assert.deepEqual(values('{"e":"","f":".5","g":"5.","h":"-.5","i":" 12","j":"-","k":"+1","l":"x1","m":"-0","n":"1.2.3"}'), [
      ['e', 'STRING', ''],
      ['f', 'DOUBLE', 0.5],
      ['g', 'DOUBLE', 5],
      ['h', 'DOUBLE', -0.5],
      ['i', 'STRING', ' 12'],
      ['j', 'STRING', '-'],
      ['k', 'STRING', '+1'],
      ['l', 'STRING', 'x1'],
      ['m', 'LONG', 0],
      ['n', 'STRING', '1.2.3'],
    ]);
  });
  test('integers beyond a long are strings; beyond 2^53 stay exact as bigint', () => {
    assert.deepEqual(values('{"big":9223372036854775808,"long":9007199254740993}'), [
      ['big', 'STRING', '9223372036854775808'],
      ['long', 'LONG', 9007199254740993n],
    ]);
  });
  test('null values are skipped', () => {
    assert.deepEqual(values('{"a":null,"b":1}'), [['b', 'LONG', 1]]);
    assert.deepEqual(values('{"a":null}'), []);
    assert.deepEqual(values('[{"a":null,"b":false},{"ts":3,"values":{"c":null,"d":"x"}},{}]'), [
      ['b', 'BOOLEAN', false],
      ['d', 'STRING', 'x'],
    ]);
  });
  test('nested JSON keeps exact numbers', () => {
    assert.deepEqual(values('{"o":{"x":1.0,"y":12345678901234567890}}'), [['o', 'JSON', '{"x":1.0,"y":12345678901234567890}']]);
  });
  test('doubles with no fraction render as ThingsBoard does in string form', () => {
    assert.equal(kvToString(toKvValue(2.5)!), '2.5');
    assert.equal(kvToString({ type: 'DOUBLE', value: 3 }), '3.0');
    assert.equal(kvToString({ type: 'LONG', value: 3 }), '3');
  });
});

describe('spec §8.2 telemetry forms', () => {
  test('plain object gets the server time', () => {
    const groups = parseTelemetry('{"t":1}', NOW);
    assert.deepEqual(groups.map((g) => g.ts), [NOW]);
  });
  test('{ts, values} uses the device time', () => {
    const groups = parseTelemetry('{"ts":1451649600512,"values":{"t":1}}', NOW);
    assert.deepEqual(groups.map((g) => g.ts), [1451649600512]);
  });
  test('an object with ts but no values is plain telemetry with a key named ts', () => {
    const groups = parseTelemetry('{"ts":5,"t":1}', NOW);
    assert.equal(groups[0].ts, NOW);
    assert.deepEqual(groups[0].entries.map((e) => e.key), ['ts', 't']);
  });
  test('an array mixes both forms', () => {
    const groups = parseTelemetry('[{"ts":10,"values":{"a":1}},{"b":2}]', NOW);
    assert.deepEqual(groups.map((g) => [g.ts, g.entries.map((e) => e.key)]), [
      [10, ['a']],
      [NOW, ['b']],
    ]);
    assert.deepEqual(parseTelemetryPoints('[{"ts":10,"values":{"a":1}},{"b":2},{"ts":"12","values":{"c":3}}]', 'dev', NOW).map((p) => [p.ts, p.key]), [
      [10, 'a'],
      [NOW, 'b'],
      [12, 'c'],
    ]);
  });
  for (const [name, text] of [
    ['invalid JSON', '{"a":'],
    ['a string', '"hello"'],
    ['a number', '42'],
    ['null', 'null'],
    ['an array of numbers', '[1,2]'],
    ['values not an object', '{"ts":1,"values":5}'],
    ['ts not a number', '{"ts":"soon","values":{"a":1}}'],
    ['negative ts', '{"ts":-1,"values":{"a":1}}'],
    ['a fractional ts', '{"ts":1.5,"values":{"a":1}}'],
    ['a ts beyond 2^53', '{"ts":1e300,"values":{"a":1}}'],
    ['a number ts with values not an object', '{"ts":7,"values":[1]}'],
    ['empty body', ''],
  ] as const) {
    test(`${name} is rejected as MALFORMED_PAYLOAD`, () => {
      assert.throws(() => parseTelemetry(text, NOW), (err: unknown) => err instanceof FleetgateError && err.code === 'MALFORMED_PAYLOAD');
      assert.throws(() => parseTelemetryPoints(text, 'dev', NOW), (err: unknown) => err instanceof FleetgateError && err.code === 'MALFORMED_PAYLOAD');
      assert.throws(() => parseTelemetryPoints(`[{"a":1},${text || '{'}]`, 'dev', NOW), (err: unknown) => err instanceof FleetgateError && err.code === 'MALFORMED_PAYLOAD');
    });
  }
  test('attributes must be an object', () => {
    assert.deepEqual(parseAttributes('{"fw":"1.0.2"}').map((e) => e.value), [{ type: 'STRING', value: '1.0.2' }]);
    assert.throws(() => parseAttributes('[1]'), FleetgateError);
  });
});

describe('entity ids', () => {
  test('are RFC 9562 version 7 UUIDs that sort by creation time', async () => {
    const { newId } = await import('../../src/core/ids.ts');
    const a = newId(1_700_000_000_000);
    const b = newId(1_700_000_000_001);
    assert.match(a, /^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    assert.ok(a < b);
    assert.equal(a.slice(0, 13).replace('-', ''), (1_700_000_000_000).toString(16).padStart(12, '0'));
    assert.notEqual(newId(5), newId(5));
  });
});

describe('which texts take the exact-number parser', () => {
  // The scanner replaced this expression; it must answer as the expression did on every text.
  const EXPRESSION = /\d\.0+(?![0-9])|\d[eE]|\d{16}/;
  test('the cases the expression was written for', () => {
    for (const text of ['{"a":21.0}', '{"a":1.00}', '{"a":0.0}', '{"a":1e3}', '{"a":1E3}', '{"a":12345678901234567}', '{"a":"x9.0"}', '1.0']) {
      assert.equal(needsExactNumbers(text), true, text);
    }
    for (const text of ['{"a":21.05}', '{"a":1.001}', '{"a":1.5}', '{"t":"E"}', '{"a":".0"}', '{"a":123456789012345}', '{"ts":1700000000000,"values":{"temperature":21.5}}', '']) {
      assert.equal(needsExactNumbers(text), false, text);
    }
  });
  test('agrees with the expression on 20,000 random texts', () => {
    const alphabet = '0123456789.eE0.0 ,"x-+';
    let seed = 17;
    const random = () => (seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
    for (let n = 0; n < 20_000; n++) {
      let text = '';
      const length = Math.floor(random() * 24);
      for (let i = 0; i < length; i++) text += random() < 0.6 ? String(Math.floor(random() * 10)) : alphabet[Math.floor(random() * alphabet.length)];
      assert.equal(needsExactNumbers(text), EXPRESSION.test(text), JSON.stringify(text));
    }
  });
  test('a number ts is read as the text form reads it', () => {
    assert.deepEqual(parseTelemetryPoints('{"ts":0,"values":{"a":1}}', 'dev', NOW).map((p) => p.ts), [0]);
    assert.ok(Object.is(parseTelemetryPoints('{"ts":-0,"values":{"a":1}}', 'dev', NOW)[0].ts, 0));
    assert.deepEqual(parseTelemetryPoints('{"ts":9007199254740991,"values":{"a":1}}', 'dev', NOW).map((p) => p.ts), [9007199254740991]);
  });
});
