/**
 * The usual telemetry payload read straight from its bytes: `{"ts":1700000000000,"values":{"temperature":21.5}}`,
 * `{"temperature":21.5,"busy":true}` or an array of either, with plain numbers, booleans, nulls and ASCII strings.
 * No string is made of the payload, no object tree is built and a key is a string made once (a small cache keyed by
 * its bytes), so a message costs its points and little else (issue 17: the event loop's CPU and garbage per MQTT
 * telemetry message).
 *
 * The answer is exactly parseTelemetryPoints' (kv-json.ts: JSON.parse, ThingsBoard's value rules, spec §8.2), or
 * undefined when the payload leaves the simple form: then the caller takes the general path, which also decides
 * every error. Left to it: escapes and non-ASCII bytes in strings, nested objects and arrays as values, keys that
 * start with a digit (JavaScript orders integer-like keys first), a key given twice (the last value wins, at the first
 * one's place), a root with other members beside `ts` and `values` or with only one of them, and any number the
 * general path would read with its exact parser (needsExactNumbers: a zero fraction, an exponent, 16 digits in a row,
 * also inside strings) or whose double this reader cannot compute exactly (more than 15 digits, leading zeros).
 * test/core/telemetry-json-bytes.test.ts compares the two on hand-written and random payloads.
 */
import { CLOSE_BRACE, CLOSE_BRACKET, COMMA, OPEN_BRACE, OPEN_BRACKET, QUOTE, readTs, Reader } from './json-bytes-reader.ts';
import { parseTelemetryPoints } from './kv-json.ts';
import type { TsPoint } from './model.ts';

/** Most members of one object read here (a repeated key is looked for among the earlier ones). */
const MAX_MEMBERS = 128;

/** Whether `key` is already a member of the object being read: one of points [from, n) or of the null members. */
function seen(points: TsPoint[], from: number, n: number, key: string, nulls: number): boolean {
  for (let i = 0; i < nulls; i++) if (nullKeys[i] === key) return true;
  for (let i = from; i < n; i++) if (points[i].key === key) return true;
  return false;
}

const reader = new Reader();
/** Points of the last payload read: the next one's array is made that long. */
let lastCount = 0;
/** Keys of the null members of the object being read (they make no point, yet a repeat of one must be noticed). */
const nullKeys: string[] = [];

/**
 * Reads the members of an object of plain values at pos (its `{`) into `points` from index `n` on, with `ts`;
 * returns the new count, or -1 to give up. With `rootKeys`, a member named `ts` or `values` gives up (a root object
 * with only one of them, or with other members beside them: left to the general path).
 */
function readValues(r: Reader, points: TsPoint[], n: number, deviceId: string, ts: number, rootKeys: boolean): number {
  const from = n;
  let nulls = 0;
  r.pos++; // {
  let c = r.skipSpace();
  if (c === CLOSE_BRACE) {
    r.pos++;
    return n;
  }
  for (;;) {
    if (!r.key() || n - from + nulls >= MAX_MEMBERS) return -1;
    const key = r.keyText;
    if (rootKeys && (key === 'ts' || key === 'values')) return -1;
    if (!r.value() || seen(points, from, n, key, nulls)) return -1;
    const value = r.kvValue;
    if (value === undefined) nullKeys[nulls++] = key;
    else points[n++] = { deviceId, ts, key, value };
    c = r.skipSpace();
    r.pos++;
    if (c === CLOSE_BRACE) return n;
    if (c !== COMMA) return -1;
    r.skipSpace();
  }
}

/** Moves past a flat object at pos (its `{`) whose values are strings, numbers, booleans or nulls; false otherwise. */
function skipValues(r: Reader): boolean {
  r.pos++;
  let c = r.skipSpace();
  if (c === CLOSE_BRACE) {
    r.pos++;
    return true;
  }
  for (;;) {
    if (!r.key() || !r.value()) return false;
    c = r.skipSpace();
    r.pos++;
    if (c === CLOSE_BRACE) return true;
    if (c !== COMMA) return false;
    r.skipSpace();
  }
}

/** The comma after a member and the next member's key; false to give up. */
function nextMember(r: Reader): boolean {
  if (r.skipSpace() !== COMMA) return false;
  r.pos++;
  return r.skipSpace() === QUOTE && r.key();
}

/** The `}` closing an item; false to give up. */
function closeItem(r: Reader): boolean {
  if (r.skipSpace() !== CLOSE_BRACE) return false;
  r.pos++;
  return true;
}

/**
 * Reads one telemetry item at pos (its `{`): `{"ts":N,"values":{..}}` (either order, nothing else beside them) or an
 * object of plain values (at `now`); returns the new count of points, or -1 to give up.
 */
function readItem(r: Reader, points: TsPoint[], n: number, deviceId: string): number {
  const start = r.pos;
  r.pos++;
  const c = r.skipSpace();
  if (c === CLOSE_BRACE) {
    r.pos++;
    return n; // {}: no points
  }
  if (c !== QUOTE || !r.key()) return -1;
  if (r.keyIs('ts')) {
    const ts = readTs(r);
    if (ts < 0 || !nextMember(r) || !r.keyIs('values') || r.buf[r.pos] !== OPEN_BRACE) return -1;
    n = readValues(r, points, n, deviceId, ts, false);
    return n >= 0 && closeItem(r) ? n : -1;
  }
  if (r.keyIs('values')) {
    // {"values":{..},"ts":N}: the values are read once the ts is known.
    const valuesAt = r.pos;
    if (r.buf[r.pos] !== OPEN_BRACE || !skipValues(r) || !nextMember(r) || !r.keyIs('ts')) return -1;
    const ts = readTs(r);
    if (ts < 0 || !closeItem(r)) return -1;
    const after = r.pos;
    r.pos = valuesAt;
    n = readValues(r, points, n, deviceId, ts, false);
    r.pos = after;
    return n;
  }
  r.pos = start;
  if (r.now < 0) r.now = Date.now();
  return readValues(r, points, n, deviceId, r.now, true);
}

/**
 * The points of a telemetry payload in bytes [start, end) of `buf`, exactly as parseTelemetryPoints gives them, or
 * undefined when the payload is not in the simple form this reads (the caller then takes the general path).
 */
export function telemetryPointsFromBytes(buf: Buffer, deviceId: string, now: number | undefined, start = 0, end = buf.length): TsPoint[] | undefined {
  const r = reader;
  r.buf = buf;
  r.pos = start;
  r.end = end;
  r.keyIndex = 0;
  r.now = now ?? -1;
  try {
    const c = r.skipSpace();
    let points: TsPoint[];
    let n: number;
    if (c === OPEN_BRACE) {
      points = new Array(lastCount); // most often the size of the previous payload's (trimmed or grown below)
      n = readItem(r, points, 0, deviceId);
    } else if (c === OPEN_BRACKET) {
      points = [];
      n = 0;
      r.pos++;
      let next = r.skipSpace();
      if (next === CLOSE_BRACKET) r.pos++;
      else
        for (;;) {
          if (next !== OPEN_BRACE || (n = readItem(r, points, n, deviceId)) < 0) return undefined;
          next = r.skipSpace();
          r.pos++;
          if (next === CLOSE_BRACKET) break;
          if (next !== COMMA) return undefined;
          next = r.skipSpace();
        }
    } else return undefined;
    if (n < 0 || r.skipSpace() !== -1) return undefined; // given up, or bytes after the payload
    if (points.length !== n) points.length = n;
    lastCount = n < MAX_MEMBERS ? n : MAX_MEMBERS;
    return points;
  } finally {
    r.buf = EMPTY; // no payload is held after the call
  }
}

const EMPTY = Buffer.alloc(0);

/**
 * A telemetry payload's points (parseTelemetryPoints' answer): the usual payload read from its bytes, any other by
 * parseTelemetryPoints. With `start`/`end`, the payload is bytes [start, end) of the Buffer `json`. `now`: the time of
 * items without a ts; undefined for Date.now() at the moment one needs it.
 */
export function telemetryPoints(json: string | Buffer, deviceId: string, now: number | undefined, start?: number, end?: number): TsPoint[] {
  if (typeof json === 'string') return parseTelemetryPoints(json, deviceId, now ?? Date.now());
  const from = start ?? 0;
  const to = end ?? json.length;
  const points = telemetryPointsFromBytes(json, deviceId, now, from, to);
  return points ?? parseTelemetryPoints(from === 0 && to === json.length ? json : json.subarray(from, to), deviceId, now ?? Date.now());
}
