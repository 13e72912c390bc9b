import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ChunkType, chunkHasTs, chunkValue, packChunk, unpackChunk } from '../../src/store/kysely/ts-kv-chunk-format.ts';
import type { KvValue } from '../../src/core/model.ts';

const unpacked = (bytes: Uint8Array, type: ChunkType) => {
  const c = unpackChunk(bytes, type);
  return Array.from(c.ts, (ts, i) => ({ ts, value: chunkValue(c, i) }));
};

test('a chunk keeps each ts once, sorted, the later write of a ts winning', () => {
  const v = (value: number): KvValue => ({ type: 'DOUBLE', value });
  const bytes = packChunk([{ ts: 30, value: v(1) }, { ts: 10, value: v(2) }, { ts: 30, value: v(3) }, { ts: 20, value: v(4) }, { ts: 10, value: v(5) }], ChunkType.DOUBLE);
  assert.deepEqual(unpacked(bytes, ChunkType.DOUBLE), [
    { ts: 10, value: v(5) },
    { ts: 20, value: v(4) },
    { ts: 30, value: v(3) },
  ]);
});

test('LONG values keep 64 bits; BOOLEAN values come back as booleans', () => {
  const longs: KvValue[] = [{ type: 'LONG', value: 40 }, { type: 'LONG', value: -(2n ** 63n) }, { type: 'LONG', value: 2n ** 62n + 1n }, { type: 'LONG', value: Number.MAX_SAFE_INTEGER }];
  const bytes = packChunk(longs.map((value, i) => ({ ts: 1_700_000_000_000 + i, value })), ChunkType.LONG);
  assert.deepEqual(unpacked(bytes, ChunkType.LONG).map((p) => p.value), longs);
  const bools: KvValue[] = [{ type: 'BOOLEAN', value: true }, { type: 'BOOLEAN', value: false }];
  assert.deepEqual(unpacked(packChunk(bools.map((value, i) => ({ ts: i, value })), ChunkType.BOOLEAN), ChunkType.BOOLEAN).map((p) => p.value), bools);
});

test('chunkHasTs finds exactly the stored timestamps, at any byte offset', () => {
  const stored = [3, 5, 8, 13, 21, 34, 55];
  const bytes = packChunk(stored.map((ts) => ({ ts, value: { type: 'DOUBLE', value: ts } })), ChunkType.DOUBLE);
  const shifted = new Uint8Array(bytes.byteLength + 3).subarray(3);
  shifted.set(bytes);
  for (const points of [bytes, shifted]) {
    for (let ts = 0; ts < 60; ts++) assert.equal(chunkHasTs(points, BigInt(ts)), stored.includes(ts) ? 1 : 0, `ts ${ts}`);
    assert.deepEqual(unpacked(points, ChunkType.DOUBLE).map((p) => p.ts), stored);
  }
});

test('a damaged chunk is refused with a clear error', () => {
  assert.throws(() => unpackChunk(new Uint8Array(15), ChunkType.DOUBLE), /not a multiple of 16/);
  assert.throws(() => unpackChunk(new Uint8Array(16), 9), /unknown ts_kv_chunk type 9/);
});

test('a DOUBLE -0 is stored as 0, as a ts_kv row stores it', () => {
  const bytes = packChunk([{ ts: 1, value: { type: 'DOUBLE', value: -0 } }], ChunkType.DOUBLE);
  assert.ok(Object.is(unpacked(bytes, ChunkType.DOUBLE)[0].value.value, 0));
});

test('LONG numbers are packed without BigInt and read back exactly, mixed with bigints, at the edges of 32 and 53 bits', () => {
  const edges = [0, 1, -1, 40, 2 ** 31 - 1, 2 ** 31, -(2 ** 31), -(2 ** 31) - 1, 2 ** 32 - 1, 2 ** 32, 2 ** 32 + 1, -(2 ** 32), -(2 ** 32) + 1];
  const numbers = [...edges, Number.MAX_SAFE_INTEGER, Number.MIN_SAFE_INTEGER, 123_456_789_012, -98_765_432_101, -0];
  for (let i = 0; i < 2_000; i++) numbers.push(Math.round((Math.random() - 0.5) * 2 * Number.MAX_SAFE_INTEGER), Math.round((Math.random() - 0.5) * 2 ** 34));
  const values: (number | bigint)[] = [...numbers, 7n, -(2n ** 63n), 2n ** 63n - 1n, 2n ** 53n + 1n];
  const bytes = packChunk(values.map((value, i) => ({ ts: i, value: { type: 'LONG', value } as KvValue })), ChunkType.LONG);
  const c = unpackChunk(bytes, ChunkType.LONG);
  values.forEach((v, i) => assert.equal(c.values[i], BigInt(v), `value ${String(v)}`));
  // What BigInt64Array alone writes, byte for byte.
  const reference = new Uint8Array(16 * values.length);
  new Float64Array(reference.buffer, 0, values.length).set(values.map((_, i) => i));
  new BigInt64Array(reference.buffer, 8 * values.length).set(values.map((v) => BigInt(v)));
  assert.deepEqual(bytes, reference);
});

test('a range of the points is packed as the same points copied out would be', () => {
  const v = (value: number): KvValue => ({ type: 'DOUBLE', value });
  const l = (value: number): KvValue => ({ type: 'LONG', value });
  const points = [{ ts: 1, value: v(9) }, { ts: 30, value: v(1) }, { ts: 10, value: v(2) }, { ts: 30, value: v(3) }, { ts: 40, value: v(4) }, { ts: 2, value: v(8) }];
  for (const [from, to] of [[1, 5], [2, 5], [0, 6], [4, 6], [1, 2]]) {
    assert.deepEqual(packChunk(points, ChunkType.DOUBLE, from, to), packChunk(points.slice(from, to), ChunkType.DOUBLE), `[${from}, ${to})`);
  }
  const longs = [{ ts: 5, value: l(1) }, { ts: 6, value: l(2) }, { ts: 6, value: l(3) }, { ts: 7, value: l(-4) }];
  assert.deepEqual(packChunk(longs, ChunkType.LONG, 1, 4), packChunk(longs.slice(1), ChunkType.LONG));
  assert.deepEqual(unpacked(packChunk(longs, ChunkType.LONG, 1, 4), ChunkType.LONG), [{ ts: 6, value: l(3) }, { ts: 7, value: l(-4) }]);
});
