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
import { parseTelemetryPoints, toKvValue } from './kv-json.ts';
import type { KvValue, TsPoint } from './model.ts';

const QUOTE = 0x22;
const COMMA = 0x2c;
const COLON = 0x3a;
const OPEN_BRACE = 0x7b;
const CLOSE_BRACE = 0x7d;
const OPEN_BRACKET = 0x5b;
const CLOSE_BRACKET = 0x5d;
const BACKSLASH = 0x5c;
const MINUS = 0x2d;
const DOT = 0x2e;
const ZERO = 0x30;
const NINE = 0x39;

/** Most digits of a number read here: below 2^53, so digits / 10^k is one correctly rounded division (Clinger). */
const MAX_DIGITS = 15;
const POWERS_OF_TEN = Array.from({ length: MAX_DIGITS + 1 }, (_, k) => 10 ** k);

const TRUE: KvValue = toKvValue(true)!;
const FALSE: KvValue = toKvValue(false)!;

const isDigit = (c: number) => c >= ZERO && c <= NINE;
const isSpace = (c: number) => c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09;

/** Keys made into strings, by a hash of their bytes: a device sends the same few keys in every message. */
const KEY_SLOTS = 1024;
const keyCache: (string | undefined)[] = new Array(KEY_SLOTS).fill(undefined);
/** Keys at their places in the last payload read (the first RECENT_KEYS): tried first by Reader.key(). */
const RECENT_KEYS = 16;
const recentKeys: (string | undefined)[] = new Array(RECENT_KEYS).fill(undefined);
/** Longest key kept in the cache (a longer one is made each time). */
const KEY_CACHED_MAX = 64;

/** The key in bytes [from, to) (printable ASCII, checked by the caller) as a string, from the cache when it is there. */
function keyAt(buf: Buffer, from: number, to: number): string {
  const length = to - from;
  if (length > KEY_CACHED_MAX) return buf.toString('latin1', from, to);
  let hash = length;
  for (let i = from; i < to; i++) hash = (Math.imul(hash, 31) + buf[i]) | 0;
  const slot = (hash ^ (hash >>> 10)) & (KEY_SLOTS - 1);
  const cached = keyCache[slot];
  if (cached !== undefined && cached.length === length) {
    let i = 0;
    while (i < length && cached.charCodeAt(i) === buf[from + i]) i++;
    if (i === length) return cached;
  }
  return (keyCache[slot] = buf.toString('latin1', from, to));
}

/**
 * Whether bytes [from, to) of a string's text would make the general path use its exact-number parser (the rules of
 * needsExactNumbers, kv-json.ts; the bytes around a string are quotes, which are not digits).
 */
function exactNumbersInText(buf: Buffer, from: number, to: number): boolean {
  let digits = 0;
  for (let i = from; i < to; i++) {
    const c = buf[i];
    if (isDigit(c)) {
      if (++digits === 16) return true;
      continue;
    }
    if (digits > 0) {
      if (c === 0x65 || c === 0x45) return true; // e, E
      if (c === DOT && i + 1 < to && buf[i + 1] === ZERO) {
        let j = i + 2;
        while (j < to && buf[j] === ZERO) j++;
        if (j >= to || !isDigit(buf[j])) return true;
      }
    }
    digits = 0;
  }
  return false;
}

/** Reads one payload; `pos` is where it is, `end` where it ends. Every method answers false to give up. */
class Reader {
  pos = 0;
  end = 0;
  buf: Buffer = Buffer.alloc(0);
  /** The last string's bytes (read by string()): [stringFrom, stringTo). */
  stringFrom = 0;
  stringTo = 0;
  /** The last number read by number(). */
  numberValue = 0;
  /** The last value read by value(): undefined for null. */
  kvValue: KvValue | undefined = undefined;

  skipSpace(): number {
    const buf = this.buf;
    let pos = this.pos;
    while (pos < this.end && isSpace(buf[pos])) pos++;
    this.pos = pos;
    return pos < this.end ? buf[pos] : -1;
  }

  /** A string of printable ASCII without escapes, at pos (a quote). */
  string(): boolean {
    const buf = this.buf;
    const from = this.pos + 1;
    let pos = from;
    let digits = false;
    for (;;) {
      if (pos >= this.end) return false;
      const c = buf[pos];
      if (c === QUOTE) break;
      if (c < 0x20 || c >= 0x7f || c === BACKSLASH) return false;
      if (isDigit(c)) digits = true;
      pos++;
    }
    if (digits && exactNumbersInText(buf, from, pos)) return false;
    this.stringFrom = from;
    this.stringTo = pos;
    this.pos = pos + 1;
    return true;
  }

  /**
   * A number with at most MAX_DIGITS digits and no exponent, at pos: its double is exactly JSON.parse's. A fraction
   * of zeros (`21.0`) gives up too: the general path reads it with its exact parser (a DOUBLE, not a LONG).
   */
  number(): boolean {
    const buf = this.buf;
    let pos = this.pos;
    const negative = buf[pos] === MINUS;
    if (negative) pos++;
    const first = pos;
    let digits = 0;
    let mantissa = 0;
    while (pos < this.end && isDigit(buf[pos])) {
      mantissa = mantissa * 10 + (buf[pos] - ZERO);
      pos++;
    }
    digits = pos - first;
    if (digits === 0 || (digits > 1 && buf[first] === ZERO)) return false; // no digits, or a leading zero: not JSON
    let scale = 0;
    if (pos < this.end && buf[pos] === DOT) {
      pos++;
      const fractionFrom = pos;
      let zerosOnly = true;
      while (pos < this.end && isDigit(buf[pos])) {
        if (buf[pos] !== ZERO) zerosOnly = false;
        mantissa = mantissa * 10 + (buf[pos] - ZERO);
        pos++;
      }
      scale = pos - fractionFrom;
      if (scale === 0 || zerosOnly) return false;
    }
    if (digits + scale > MAX_DIGITS) return false;
    if (pos < this.end && (buf[pos] === 0x65 || buf[pos] === 0x45)) return false; // an exponent
    const value = scale === 0 ? mantissa : mantissa / POWERS_OF_TEN[scale];
    this.numberValue = negative ? -value : value;
    this.pos = pos;
    return true;
  }

  /** The word `word` (true, false, null) at pos. */
  word(word: string): boolean {
    const buf = this.buf;
    if (this.pos + word.length > this.end) return false;
    for (let i = 0; i < word.length; i++) if (buf[this.pos + i] !== word.charCodeAt(i)) return false;
    this.pos += word.length;
    return true;
  }

  /** A value that is not an object or array, at pos, into kvValue. */
  value(): boolean {
    const c = this.buf[this.pos];
    if (c === QUOTE) {
      if (!this.string()) return false;
      this.kvValue = toKvValue(this.buf.toString('latin1', this.stringFrom, this.stringTo));
      return true;
    }
    if (c === MINUS || isDigit(c)) {
      if (!this.number()) return false;
      this.kvValue = toKvValue(this.numberValue);
      return true;
    }
    if (c === 0x74) {
      this.kvValue = TRUE;
      return this.word('true');
    }
    if (c === 0x66) {
      this.kvValue = FALSE;
      return this.word('false');
    }
    if (c === 0x6e) {
      this.kvValue = undefined;
      return this.word('null');
    }
    return false; // an object or an array (a JSON value), or not JSON
  }

  /** The time of items without a ts; -1 until one needs it (then Date.now(): a payload with its ts never asks). */
  now = -1;
  /** The last key read by key(). */
  keyText = '';
  /** Keys read so far in this payload (their place, for recentKeys). */
  keyIndex = 0;

  /**
   * A key at pos (a quote) and the colon after it, into keyText. The key at the same place in the last payload is
   * tried first: the same bytes make the same key, valid as it was, so they are neither checked nor looked up again.
   */
  key(): boolean {
    const buf = this.buf;
    if (buf[this.pos] !== QUOTE) return false;
    const index = this.keyIndex++;
    const expected = index < RECENT_KEYS ? recentKeys[index] : undefined;
    if (expected !== undefined) {
      const from = this.pos + 1;
      const to = from + expected.length;
      if (to < this.end && buf[to] === QUOTE) {
        let i = from;
        while (i < to && buf[i] === expected.charCodeAt(i - from)) i++;
        if (i === to) {
          this.keyText = expected;
          this.pos = to + 1;
          return this.colon();
        }
      }
    }
    if (!this.string()) return false;
    if (this.stringTo > this.stringFrom && isDigit(buf[this.stringFrom])) return false; // maybe an integer key
    this.keyText = keyAt(buf, this.stringFrom, this.stringTo);
    if (index < RECENT_KEYS) recentKeys[index] = this.keyText;
    return this.colon();
  }

  /** Whether the last key read is `name`. */
  keyIs(name: string): boolean {
    return this.keyText === name;
  }

  /** The colon after a key, and the space after it. */
  private colon(): boolean {
    if (this.skipSpace() !== COLON) return false;
    this.pos++;
    this.skipSpace();
    return true;
  }
}

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

/** A `ts` at pos: a whole number of at most MAX_DIGITS digits (a safe integer), no sign, fraction or exponent; -1 to give up. */
function readTs(r: Reader): number {
  const buf = r.buf;
  const from = r.pos;
  let pos = from;
  let ts = 0;
  while (pos < r.end && isDigit(buf[pos])) ts = ts * 10 + (buf[pos++] - ZERO);
  const digits = pos - from;
  if (digits === 0 || digits > MAX_DIGITS || (digits > 1 && buf[from] === ZERO)) return -1;
  if (pos < r.end && (buf[pos] === DOT || buf[pos] === 0x65 || buf[pos] === 0x45)) return -1;
  r.pos = pos;
  return ts;
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
