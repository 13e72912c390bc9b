import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { attributeJson, javaDoubleString, stringValue, toJsonText, tsPointJson } from '../../src/admin/kv-values.ts';

describe('rendering stored values as ThingsBoard does', () => {
  it('prints doubles as Java Double.toString', () => {
    const cases: [number, string][] = [
      [1, '1.0'],
      [21.5, '21.5'],
      [0, '0.0'],
      [-0, '-0.0'],
      [0.001, '0.001'],
      [0.0001, '1.0E-4'],
      [1e7, '1.0E7'],
      [12345678.9, '1.23456789E7'],
      [-2.5e-10, '-2.5E-10'],
      [9999999.5, '9999999.5'],
      [Number.NaN, 'NaN'],
      [Number.POSITIVE_INFINITY, 'Infinity'],
    ];
    for (const [value, text] of cases) assert.equal(javaDoubleString(value), text, String(value));
  });

  it('renders time series values as strings unless strict', () => {
    assert.equal(stringValue({ type: 'BOOLEAN', value: false }), 'false');
    assert.equal(stringValue({ type: 'LONG', value: 2n ** 62n }), '4611686018427387904');
    assert.equal(stringValue({ type: 'JSON', value: '{"a":1}' }), '{"a":1}');
    assert.deepEqual(tsPointJson({ ts: 5, value: { type: 'LONG', value: 7 } }, false), { ts: 5, value: '7' });
    assert.deepEqual(tsPointJson({ ts: 5, value: { type: 'LONG', value: 7 } }, true), { ts: 5, value: 7 });
    assert.deepEqual(tsPointJson({ ts: 5, value: null }, true), { ts: 5, value: null });
  });

  it('serialises bigints, Java doubles and big numbers inside JSON values exactly', () => {
    const text = toJsonText([
      tsPointJson({ ts: 1, value: { type: 'LONG', value: 2n ** 62n } }, true),
      tsPointJson({ ts: 2, value: { type: 'DOUBLE', value: 3 } }, true),
      attributeJson({ key: 'j', lastUpdateTs: 3, value: { type: 'JSON', value: '{"n":12345678901234567890}' } }),
    ]);
    assert.equal(text, '[{"ts":1,"value":4611686018427387904},{"ts":2,"value":3.0},{"lastUpdateTs":3,"key":"j","value":{"n":12345678901234567890}}]');
  });
});
