/**
 * The byte-level reader under telemetry-json-bytes.ts: JSON strings, numbers, keys and plain values read from a
 * Buffer without decoding it, each giving up (false) on anything the general path must decide (see that file), and
 * the small caches that make a key a string once.
 */
import { toKvValue } from './kv-json.ts';
import type { KvValue } from './model.ts';

export const QUOTE = 0x22;
export const COMMA = 0x2c;
const COLON = 0x3a;
export const OPEN_BRACE = 0x7b;
export const CLOSE_BRACE = 0x7d;
export const OPEN_BRACKET = 0x5b;
export const CLOSE_BRACKET = 0x5d;
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
export class Reader {
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

/** A `ts` at pos: a whole number of at most MAX_DIGITS digits (a safe integer), no sign, fraction or exponent; -1 to give up. */
export function readTs(r: Reader): number {
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
