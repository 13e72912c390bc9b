/**
 * The webhook body written straight from compact outbox rows (issue 16, bench/RESULTS.md "Data out, render in one
 * pass, session 7"): each message's JSON bytes go into the body buffer in one pass over its row (the row's UTF-8
 * texts copied as they are, numbers written as ASCII digits), with no string per message. The bytes are exactly those
 * of the message's `json` text (the string rendering of readCompactRow and messagesOf), UTF-8 encoded; a test compares
 * the two over random batches.
 */
import { readCompactRow } from './compact-telemetry.ts';

/** A growable output buffer the body is written into. */
export class BodyWriter {
  buf: Buffer;
  /** A DataView of `buf` (compact messages write their constant bytes 4 at a time). */
  view: DataView;
  at = 0;

  /**
   * `reuse`: a buffer to write into when it holds `size` bytes (its old bytes are overwritten); else a new one of
   * `size` times `headroom` (room for a later, larger body when the buffer is to be reused).
   */
  constructor(size: number, reuse?: Buffer, headroom = 1) {
    this.buf = reuse && reuse.length >= size ? reuse : Buffer.allocUnsafe(Math.max(Math.ceil(size * headroom), 64));
    this.view = new DataView(this.buf.buffer, this.buf.byteOffset, this.buf.length);
  }

  /** Room for `n` more bytes. */
  ensure(n: number): void {
    if (this.buf.length - this.at >= n) return;
    const grown = Buffer.allocUnsafe(Math.max(this.buf.length + (this.buf.length >> 1), this.at + n + 1024));
    this.buf.copy(grown, 0, 0, this.at);
    this.buf = grown;
    this.view = new DataView(grown.buffer, grown.byteOffset, grown.length);
  }

  /** A string as UTF-8. */
  text(s: string): void {
    this.ensure(s.length * 3);
    this.at += this.buf.write(s, this.at, 'utf8');
  }

  /** The bytes written so far. */
  bytes(): Buffer {
    return this.buf.subarray(0, this.at);
  }
}

/** A message that can write its own JSON bytes (the same bytes as its `json` text, UTF-8 encoded). */
export interface WritableMessage {
  id: string;
  readonly json: string;
  /** Bytes its JSON takes at most (room made before writing it), and about how many it takes (for sizing the body). */
  readonly maxBytes: number;
  readonly likelyBytes: number;
  writeTo(w: BodyWriter): void;
}

/**
 * What the messages of one compact row share: the row, its seq and message count (a message's id is `<seq>` or
 * `<seq>.<n>`), its head's rule and kind bytes, its createdTime, and its messages' texts once asked for.
 */
class CompactRow {
  private texts?: string[];

  constructor(
    readonly row: Buffer,
    readonly seq: number,
    readonly count: number,
    /** `","rule":<rule>,"kind":"<kind>","deviceId":` */
    readonly middle: Buffer,
    readonly createdTime: number,
    private readonly ruleJson: string,
    private readonly kind: string,
  ) {}

  id(n: number): string {
    return this.count === 1 ? String(this.seq) : `${this.seq}.${n}`;
  }

  /** Message n's JSON text (the string rendering, shared by the row's messages: made once, when first asked for). */
  text(n: number): string {
    this.texts ??= readCompactRow(this.row).map((m, i) => messageText(this.id(i), this.ruleJson, this.kind, m.deviceId, this.createdTime, m.data));
    return this.texts[n];
  }
}

/** A device's message of a compact row: its place in the row, rendered only when written (or asked for as text). */
export class CompactRowMessage implements WritableMessage {
  private textOf?: string;

  constructor(
    private readonly of: CompactRow,
    private readonly index: number,
    /** Bytes of the row from this device's section's prefix on. */
    private readonly from: number,
    /** Its device id's place in the row. */
    private readonly idFrom: number,
    private readonly idTo: number,
    readonly maxBytes: number,
    readonly likelyBytes: number,
  ) {}

  get id(): string {
    return this.of.id(this.index);
  }

  get json(): string {
    return (this.textOf ??= this.of.text(this.index));
  }

  writeTo(w: BodyWriter): void {
    writeMessage(w, this.of, this.index, this.from, this.idFrom, this.idTo, this.maxBytes);
  }
}

/** The last head's rule and kind bytes (a round's rows share them: one rule, telemetry). */
let lastMiddle = { ruleJson: '', kind: '', bytes: Buffer.alloc(0) };

/**
 * The messages of a compact row as delivered by a rule (`ruleJson` its name's JSON text): what messagesOf gives for the
 * row, each writing its bytes in one pass.
 */
export function compactRowMessages(stored: Uint8Array, seq: number, kind: string, createdTime: number, ruleJson: string): CompactRowMessage[] {
  const row = Buffer.isBuffer(stored) ? stored : Buffer.from(stored.buffer, stored.byteOffset, stored.byteLength);
  if (row[0] !== 1 && row[0] !== 2) throw new Error(`unknown compact outbox row version ${row[0]}`);
  if (lastMiddle.ruleJson !== ruleJson || lastMiddle.kind !== kind) lastMiddle = { ruleJson, kind, bytes: Buffer.from(`","rule":${ruleJson},"kind":"${kind}","deviceId":`) };
  const middle = lastMiddle.bytes;
  const sections: number[] = [];
  let at = 1;
  while (at < row.length) {
    const idFrom = at + 2;
    const idTo = idFrom + row.readUInt16LE(at);
    const from = idTo;
    at = from + 4 + row.readUInt32LE(from);
    const form = row[at++];
    let values = 0;
    let numbers = 0;
    let keyBytes = 0;
    if (form === 1) at += 4 + row.readUInt32LE(at);
    else if (form === 0 || form === 2) {
      const width = row.readUInt16LE(at);
      at += 2;
      for (let k = 0; k < width; k++) {
        const n = row.readUInt16LE(at);
        keyBytes += n + 2;
        at += 2 + n;
      }
      const count = row.readUInt32LE(at);
      at += form === 0 ? 4 + count * (width + 1) * 8 : 8 + row.readUInt32LE(at + 4);
      values = count;
      numbers = count * (width + 1);
      keyBytes *= count;
    } else throw new Error(`unknown compact outbox form ${form}`);
    if (at > row.length) throw new Error('compact outbox row ends early');
    // Each number becomes at most 25 characters (~13 likely); each entry adds its keys and ~30 bytes of punctuation.
    sections.push(idFrom, idTo, from, (at - from) * 3 + numbers * 25 + keyBytes + values * 32, (at - from) + numbers * 13 + keyBytes + values * 16);
  }
  const count = sections.length / 5;
  const shared = new CompactRow(row, seq, count, middle, createdTime, ruleJson, kind);
  // The head: `{"id":"` (7), the id (a seq, a dot and an index: 25 + 11), the middle, the device id's quotes (2; its
  // bytes escaped take 6 each at most), `,"ts":` createdTime `,"data":` (14 + 25), the closing braces (2).
  const head = 7 + 36 + middle.length + 2 + 39 + 2;
  const out: CompactRowMessage[] = new Array(count);
  for (let n = 0, s = 0; n < count; n++, s += 5) {
    const fixed = head + (sections[s + 1] - sections[s]) * 6 + 2;
    out[n] = new CompactRowMessage(shared, n, sections[s + 2], sections[s], sections[s + 1], fixed + sections[s + 3], fixed + sections[s + 4]);
  }
  return out;
}

let lastRuleName = '';
let lastRuleJson = '""';

/** A rule name's JSON text (messagesOf asks for it per row; a round's rows share one rule). */
export function ruleNameJson(name: string): string {
  if (name !== lastRuleName) {
    lastRuleJson = JSON.stringify(name);
    lastRuleName = name;
  }
  return lastRuleJson;
}

/** A message's JSON text (messagesOf's form). */
export function messageText(id: string, ruleJson: string, kind: string, deviceId: string | null, createdTime: number, data: string): string {
  return `{"id":"${id}","rule":${ruleJson},"kind":"${kind}","deviceId":${deviceId === null ? 'null' : JSON.stringify(deviceId)},"ts":${createdTime},"data":${data}}`;
}

function writeMessage(w: BodyWriter, of: CompactRow, index: number, from: number, idFrom: number, idTo: number, maxBytes: number): void {
  // 4 bytes more: the constant bytes are written 4 at a time, up to 3 past their end (copyWords).
  w.ensure(maxBytes + 4);
  const buf = w.buf;
  const row = of.row;
  let at = w.at;
  for (let i = 0; i < ID_OPEN.length; i++) buf[at++] = ID_OPEN[i];
  // The id: `<seq>`, or `<seq>.<n>` in a row of several.
  at = writeNumber(buf, at, of.seq);
  if (of.count !== 1) {
    buf[at++] = 0x2e;
    at = writeDigits(buf, at, index);
  }
  at += of.middle.copy(buf, at);
  // The device id as JSON: its bytes as they are (copied as they are checked) when nothing in them needs escaping,
  // else JSON.stringify's.
  const idAt = at;
  buf[at++] = 0x22;
  let i = idFrom;
  for (; i < idTo; i++) {
    const b = row[i];
    if (b < 0x20 || b > 0x7e || b === 0x22 || b === 0x5c) break;
    buf[at++] = b;
  }
  if (i < idTo) at = idAt + buf.write(JSON.stringify(row.toString('utf8', idFrom, idTo)), idAt, 'utf8');
  else buf[at++] = 0x22;
  for (let i = 0; i < TS_OPEN_HEAD.length; i++) buf[at++] = TS_OPEN_HEAD[i];
  at = writeNumber(buf, at, of.createdTime);
  for (let i = 0; i < DATA_OPEN.length; i++) buf[at++] = DATA_OPEN[i];
  // The data: its prefix, then the telemetry (text as stored, or entries from the numbers), then `}`.
  const prefixLength = u32(row, from);
  let r = from + 4;
  at += row.copy(buf, at, r, r + prefixLength);
  r += prefixLength;
  const form = row[r++];
  if (form === 1) {
    const n = u32(row, r);
    at += row.copy(buf, at, r + 4, r + 4 + n);
  } else {
    const width = u16(row, r);
    r += 2;
    if (keyPlaces.length < width * 2) keyPlaces = new Int32Array(width * 2);
    const keys = keyPlaces;
    for (let k = 0; k < width; k++) {
      const n = u16(row, r);
      keys[k * 2] = r + 2;
      keys[k * 2 + 1] = r + 2 + n;
      r += 2 + n;
    }
    const count = u32(row, r);
    r += 4;
    // The packed form (2) is decoded as it is written (p: its next byte); form 0 holds f64s at r.
    const packed = form === 2;
    let p = r + 12;
    let packedTs = packed ? row.readDoubleLE(r + 4) : 0;
    // Each column's last value and where its digits are in this message (readings repeat often: written once, then
    // copied), and the timestamps' millions (consecutive timestamps share them: their digits once, the last six from
    // a table).
    if (colValue.length < width) growColumns(width);
    colValue.fill(Number.NaN, 0, width);
    let millions = -1;
    let millionsLength = 0;
    // The constant bytes of an entry, in the scratch buffer: `{"ts":` and the millions' digits at 0 (tsLength of them,
    // rewritten when the millions change), and per key `,"values":{` or `,`, the key, `:` (written 4 bytes at a time:
    // byte loops over them were half of an entry's cost).
    let need = SEGMENTS_FROM + 4;
    for (let k = 0; k < width; k++) need += keys[k * 2 + 1] - keys[k * 2] + 12;
    if (segments.length < need) growSegments(need);
    let tsLength = 0;
    for (let k = 0, s = SEGMENTS_FROM; k < width; k++) {
      const from = s;
      if (k === 0) for (let i = 0; i < VALUES_OPEN.length; i++) segments[s++] = VALUES_OPEN[i];
      else segments[s++] = 0x2c;
      for (let i = keys[k * 2], end = keys[k * 2 + 1]; i < end; i++) segments[s++] = row[i];
      segments[s++] = 0x3a;
      segmentFrom[k] = from;
      segmentLength[k] = s - from;
    }
    const view = w.view;
    // The previous entry's bytes (`{"ts":…}}`), when its timestamp was written as millions and six digits.
    let previousFrom = -1;
    let previousTo = -1;
    buf[at++] = 0x5b; // [
    for (let e = 0; e < count; e++) {
      if (e > 0) buf[at++] = 0x2c;
      let ts: number;
      if (packed) {
        let b = row[p++];
        let delta = b & 127;
        for (let shift = 128; b >= 128; shift *= 128) {
          b = row[p++];
          delta += (b & 127) * shift;
        }
        ts = packedTs += delta;
        // A run of repeated readings (every value tagged 0, the same millions of ms): each entry is the previous
        // entry's bytes with the timestamp's last six digits written over. The run is found first, its entries copied
        // in doubling blocks (copyWithin is a native call of ~45 ns whatever it moves: one per entry cost more than
        // the rest of the entry), then each entry's six digits written.
        if (previousFrom >= 0 && Math.floor(ts / 1e6) === millions && zeroTags(row, p, width)) {
          p += width;
          if (runLows.length < count) runLows = new Int32Array(count);
          let n = 0;
          runLows[n++] = ts - millions * 1e6;
          // Timestamps only grow (deltas are unsigned): one below the next million is in this one.
          const millionsEnd = (millions + 1) * 1e6;
          while (e + n < count) {
            let q = p;
            let b = row[q++];
            let delta = b & 127;
            for (let shift = 128; b >= 128; shift *= 128) {
              b = row[q++];
              delta += (b & 127) * shift;
            }
            const next = packedTs + delta;
            if (next >= millionsEnd || !zeroTags(row, q, width)) break;
            packedTs = next;
            p = q + width;
            runLows[n++] = next - millions * 1e6;
          }
          // The comma before this entry is written: a unit is `,` and an entry, the first at at - 1.
          const length = previousTo - previousFrom;
          const unit = length + 1;
          const start = at - 1;
          if (n <= SHORT_RUN) {
            // A short run: each entry copied from the one before it, 4 bytes at a time (the source ends a unit before
            // its copy starts, so what is read was never written over).
            const view = w.view;
            for (let j = 0, from = previousFrom; j < n; j++, from += unit) {
              const to = from + unit;
              for (let i = 0; i < length; i += 4) view.setUint32(to + i, view.getUint32(from + i, true), true);
              buf[to - 1] = 0x2c;
            }
          } else {
            buf.copyWithin(at, previousFrom, previousTo);
            for (let have = 1; have < n; ) {
              const c = have < n - have ? have : n - have;
              buf.copyWithin(start + have * unit, start, start + c * unit);
              have += c;
            }
          }
          for (let j = 0, d = at + TS_OPEN.length + millionsLength; j < n; j++, d += unit) {
            const low = runLows[j];
            const upper = (low / 1000) | 0;
            const lower = low - upper * 1000;
            buf[d] = DIGITS3[upper * 3];
            buf[d + 1] = DIGITS3[upper * 3 + 1];
            buf[d + 2] = DIGITS3[upper * 3 + 2];
            buf[d + 3] = DIGITS3[lower * 3];
            buf[d + 4] = DIGITS3[lower * 3 + 1];
            buf[d + 5] = DIGITS3[lower * 3 + 2];
          }
          previousFrom = start + (n - 1) * unit + 1;
          previousTo = previousFrom + length;
          at = start + n * unit;
          e += n - 1;
          continue;
        }
      } else {
        ts = row.readDoubleLE(r);
        r += 8;
      }
      const entryFrom = at;
      let millionsForm = false;
      // The compact form holds safe integers only (compactByDevice): above 10^6 the last six digits come from a table.
      if (ts >= 1e6) {
        const high = Math.floor(ts / 1e6);
        if (high !== millions) {
          millions = high;
          millionsLength = writeDigits(millionsDigits, 0, high);
          for (let i = 0; i < TS_OPEN.length; i++) segments[i] = TS_OPEN[i];
          for (let i = 0; i < millionsLength; i++) segments[TS_OPEN.length + i] = millionsDigits[i];
          tsLength = TS_OPEN.length + millionsLength;
        }
        at = copyWords(view, at, 0, tsLength);
        const low = ts - high * 1e6;
        const upper = Math.floor(low / 1000);
        const lower = low - upper * 1000;
        buf[at++] = DIGITS3[upper * 3];
        buf[at++] = DIGITS3[upper * 3 + 1];
        buf[at++] = DIGITS3[upper * 3 + 2];
        buf[at++] = DIGITS3[lower * 3];
        buf[at++] = DIGITS3[lower * 3 + 1];
        buf[at++] = DIGITS3[lower * 3 + 2];
        millionsForm = true;
      } else {
        for (let i = 0; i < TS_OPEN.length; i++) buf[at++] = TS_OPEN[i];
        at = writeNumber(buf, at, ts);
      }
      for (let k = 0; k < width; k++, r += 8) {
        at = copyWords(view, at, segmentFrom[k], segmentLength[k]);
        let v: number;
        // A packed integer or short decimal is written from its digits (scale >= 0: v is m / 10^scale), else v's.
        let m = 0;
        let scale = -1;
        if (!packed) v = row.readDoubleLE(r);
        else {
          const tag = row[p++];
          // 0: the key's previous value, written earlier in this message (the first entry has no tag 0).
          if (tag === 0) v = colValue[k];
          else if (tag === 6) {
            v = row.readDoubleLE(p);
            p += 8;
          } else {
            let b = row[p++];
            let z = b & 127;
            for (let shift = 128; b >= 128; shift *= 128) {
              b = row[p++];
              z += (b & 127) * shift;
            }
            m = z % 2 === 0 ? z / 2 : -(z + 1) / 2;
            if (tag === 1) {
              v = m;
              scale = 0;
            } else if (tag <= 5) {
              scale = tag - 1;
              v = m / POW10[scale];
            } else throw new Error(`unknown compact value tag ${tag}`);
          }
        }
        // -0 and 0 are both written 0, so === is the test (the values are finite).
        if (v === colValue[k]) {
          for (let i = colAt[k], end = i + colLength[k]; i < end; i++) buf[at++] = buf[i];
        } else {
          const start = at;
          at = scale >= 0 ? writeScaled(buf, at, m, scale, v) : writeNumber(buf, at, v);
          colValue[k] = v;
          colAt[k] = start;
          colLength[k] = at - start;
        }
      }
      buf[at++] = 0x7d;
      buf[at++] = 0x7d;
      previousFrom = millionsForm ? entryFrom : -1;
      previousTo = at;
    }
    buf[at++] = 0x5d; // ]
  }
  buf[at++] = 0x7d; // } of data
  buf[at++] = 0x7d; // } of the message
  w.at = at;
  if (at > w.buf.length) throw new Error('compact message overran its estimate');
}

/** '000'..'999' as ASCII digits, three bytes each. */
const DIGITS3 = Uint8Array.from({ length: 3000 }, (_, i) => String(Math.floor(i / 3)).padStart(3, '0').charCodeAt(i % 3));
/** A u16 and a u32 of a row, little-endian (in bounds: compactRowMessages read the row's layout with Buffer's checks). */
function u16(row: Buffer, at: number): number {
  return row[at] | (row[at + 1] << 8);
}

function u32(row: Buffer, at: number): number {
  return (row[at] | (row[at + 1] << 8) | (row[at + 2] << 16)) + row[at + 3] * 0x1000000;
}

/** True when the `width` value tags at `p` are all 0 (each value the key's previous one again). */
function zeroTags(row: Buffer, p: number, width: number): boolean {
  for (let k = 0; k < width; k++) if (row[p + k] !== 0) return false;
  return true;
}

/** Runs of up to this many repeated entries are copied 4 bytes at a time, longer ones in doubling blocks (copyWithin). */
const SHORT_RUN = 4;
/** The last six digits (the timestamp below its millions) of each entry of a run of repeated readings. */
let runLows = new Int32Array(256);
/** The digits of the current message's timestamps' millions. */
const millionsDigits = Buffer.alloc(16);
/** Per column of the message being written: its last value, and where that value's digits are in the body. */
let colValue = new Float64Array(8);
let colAt = new Int32Array(8);
let colLength = new Int32Array(8);
/** Per column: where its constant bytes (`,"values":{` or `,`, the key, `:`) are in `segments`, and how many. */
let segmentFrom = new Int32Array(8);
let segmentLength = new Int32Array(8);
/** The constant bytes of the message being written: the ts's head at 0 (32 bytes of room), the columns' from SEGMENTS_FROM. */
const SEGMENTS_FROM = 32;
let segments = Buffer.alloc(1024);
let segmentsView = new DataView(segments.buffer, segments.byteOffset, segments.length);

function growColumns(width: number): void {
  colValue = new Float64Array(width);
  colAt = new Int32Array(width);
  colLength = new Int32Array(width);
  segmentFrom = new Int32Array(width);
  segmentLength = new Int32Array(width);
}

function growSegments(size: number): void {
  segments = Buffer.alloc(size * 2);
  segmentsView = new DataView(segments.buffer, segments.byteOffset, segments.length);
}

/**
 * Copies `length` bytes of `segments` from `from` to the body at `at`, 4 at a time, and returns at + length. It writes
 * up to 3 bytes past that end (overwritten by what follows; writeMessage makes room for them).
 */
function copyWords(view: DataView, at: number, from: number, length: number): number {
  for (let i = 0; i < length; i += 4) view.setUint32(at + i, segmentsView.getUint32(from + i, true), true);
  return at + length;
}

/**
 * A packed value m / 10^scale (scale 0: the integer m) as String() writes it: its digits, a point before the last
 * `scale` of them. The packer took the fewest digits that read back as the value and |m| < 2^31, so this decimal is
 * the only one of `scale` or fewer fractional digits that reads back as v (their spacing, 10^-scale, is over 2^20
 * times v's ulp), which is String()'s. Anything else (a last digit 0, a larger m: not what the packer writes) takes
 * writeNumber.
 */
function writeScaled(buf: Buffer, at: number, m: number, scale: number, v: number): number {
  const a = m < 0 ? -m : m;
  if (!(a < 2147483648)) return writeNumber(buf, at, v);
  if (scale === 0) {
    if (m < 0) buf[at++] = 0x2d;
    return writeSmall(buf, at, a | 0);
  }
  const p = POW10[scale];
  const q = (a / p) | 0;
  const rest = a - q * p;
  if (rest % 10 === 0) return writeNumber(buf, at, v);
  if (m < 0) buf[at++] = 0x2d;
  at = writeSmall(buf, at, q);
  buf[at++] = 0x2e; // .
  return writePadded(buf, at, rest, scale);
}

const ID_OPEN = Buffer.from('{"id":"', 'latin1');
const TS_OPEN_HEAD = Buffer.from(',"ts":', 'latin1');
const DATA_OPEN = Buffer.from(',"data":', 'latin1');
/** Where each key's JSON text is in the row (from, to), for the message being written. */
let keyPlaces = new Int32Array(32);
const TS_OPEN = Buffer.from('{"ts":', 'latin1');
const VALUES_OPEN = Buffer.from(',"values":{', 'latin1');
const POW10 = [1, 10, 100, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22];
/** 2^51: below it, a number times 10^k is exact enough that the nearest k-decimal is found by Math.round (see below). */
const EXACT = 2 ** 51;

/**
 * Writes a finite number as String() writes it (the shortest decimal that reads back as it; -0 as 0) and returns the
 * new end. Integers below 2^53 are written digit by digit. Other numbers of magnitude 1e-6..2^51 take the fewest
 * fractional digits k whose nearest decimal m/10^k reads back as the number: while |v| x 10^k < 2^51, the grid 10^-k is
 * over twice the number's spacing (ulp(v) <= |v| x 2^-52), so at most one k-digit decimal reads back as v, and
 * Math.round(v x 10^k) finds it (the product's error and v's distance to it stay below 1/2); m/10^k, with m and 10^k
 * exact, is the correctly rounded quotient, the same number parsing the decimal gives. The rest take String().
 */
export function writeNumber(buf: Buffer, at: number, v: number): number {
  let a = v < 0 ? -v : v;
  if (a < 9007199254740992 && Math.floor(a) === a) {
    if (v < 0) buf[at++] = 0x2d;
    return writeDigits(buf, at, a);
  }
  if (a >= 1e-6 && a < EXACT) {
    for (let k = 1; k <= 22 && a * POW10[k] < EXACT; k++) {
      const p = POW10[k];
      const m = Math.round(a * p);
      if (m / p === a) {
        if (v < 0) buf[at++] = 0x2d;
        let q = Math.floor(m / p);
        if (q * p > m) q--;
        at = writeDigits(buf, at, q);
        buf[at++] = 0x2e; // .
        // k digits, leading zeros kept (the last is not 0: k is the fewest), in pieces of at most 8.
        const rest = m - q * p;
        if (k <= 9) return writePadded(buf, at, rest, k);
        const high = Math.floor(rest / 1e8);
        return writePadded(buf, writePadded(buf, at, high, k - 8), rest - high * 1e8, 8);
      }
    }
  }
  const text = String(v); // ASCII: digits, '-', '.', 'e', '+'
  for (let i = 0; i < text.length; i++) buf[at++] = text.charCodeAt(i);
  return at;
}

/**
 * A non-negative integer below 2^53 as decimal digits. In int32 pieces: `%` and `/` on doubles cost several times
 * what integer arithmetic does, so a larger number is split at 10^8 (exactly: both parts are integers below 2^53).
 */
function writeDigits(buf: Buffer, at: number, n: number): number {
  if (n < 2147483648) return writeSmall(buf, at, n | 0);
  const high = Math.floor(n / 1e8);
  return writePadded(buf, writeSmall(buf, at, high), n - high * 1e8, 8);
}

/** An integer 0..2^31-1 as decimal digits. */
function writeSmall(buf: Buffer, at: number, n: number): number {
  let digits = 1;
  while (digits < 10 && n >= POW10[digits]) digits++;
  return writePadded(buf, at, n, digits);
}

/** An integer below 10^digits (digits <= 9, or below 2^31) as exactly `digits` decimal digits, leading zeros kept. */
function writePadded(buf: Buffer, at: number, n: number, digits: number): number {
  let v = n | 0;
  for (let i = at + digits - 1; i >= at; i--) {
    const q = (v / 10) | 0;
    buf[i] = 0x30 + (v - q * 10);
    v = q;
  }
  return at + digits;
}
