/**
 * The compact outbox form of telemetry (issue 16, bench/RESULTS.md "Data out, session 7"). A commit's telemetry
 * outbox rows hold each device's points as numbers (float64: its ts, then its values in the order of its keys)
 * instead of the messages' JSON text, which delivery writes from them. On the commit path that costs copying the
 * numbers (~50 ns a message against ~350 ns for the text), and the row SQLite writes, to the WAL and then the table,
 * is a third of the text's size (24 bytes a message of two values against ~70).
 *
 * A device is in the number form when every message of it in the batch has the same keys in the same order, each
 * value a finite number, and its timestamps increase; otherwise its part of the row holds its telemetry array's JSON
 * text from telemetry-json.ts. Either way the JSON delivered is byte for byte what the text form holds.
 *
 * Row bytes (`OutboxEntry.points`): u8 version (2; rows of version 1 are still read), then per device (one message
 * each, `messages` of them):
 *   u16 id length, id · u32 prefix length, prefix (`{"deviceName":…,"profileId":…,"telemetry":`) · u8 form:
 *   0 numbers (version 1): u16 key count, per key u16 length + its JSON text (quoted) · u32 messages ·
 *     messages x (1 + keys) f64
 *   1 text: u32 length + the telemetry array's JSON text.
 *   2 packed numbers (version 2): u16 key count, keys as in form 0 · u32 messages · u32 packed bytes · f64 first ts ·
 *     per message: varint ts - previous ts (0 for the first), then per key a tag and its value: 0 the key's previous
 *     value again, 1 an integer (zigzag varint), 2-5 a decimal of 1-4 fractional digits (zigzag varint of
 *     value x 10^(tag-1), read back as that integer / 10^(tag-1), which is the value exactly), 6 f64.
 * Lengths are UTF-8 bytes; numbers little-endian. The packed form takes ~3-12 bytes a message of two values against
 * 24 as f64s (what SQLite writes twice and delivery deletes); every number reads back as the same double, so the JSON
 * is the same.
 */
import type { TsPoint } from '../model.ts';
import { telemetryJsonByDevice, tsText } from './telemetry-json.ts';

const VERSION = 2;

/** One device's points of a batch: its keys, and per message its ts and values. */
export interface DeviceNumbers {
  keys: string[];
  nums: Float64Array;
  /** Its buffer's place in the pool of reused buffers, or -1. */
  slot: number;
  /** Numbers written. */
  n: number;
  /** False once the device's points cannot take the number form. */
  ok: boolean;
  lastTs: number;
  /** Its telemetry array's JSON text, when not `ok`. */
  text?: string;
}

/**
 * Each device's points of a batch, in order of its first point (number form where it fits, else text). The numbers
 * live in buffers reused by the next call: write the rows (compactRow) before encoding another batch.
 */
export function compactByDevice(points: readonly TsPoint[]): Map<string, DeviceNumbers> {
  const series = new Map<string, DeviceNumbers>();
  handedOut = 0;
  if (collectNumbers(points, series) > 0) {
    const text = telemetryJsonByDevice(points.filter((p) => !series.get(p.deviceId)!.ok));
    for (const [deviceId, json] of text) series.get(deviceId)!.text = json;
  }
  return series;
}

/**
 * compactByDevice's pass over the points; returns how many devices fell back to the text form. A function of its own
 * whose loop is its last statement: V8 optimizes this loop on the stack (OSR) within the first batches, and code after
 * such a loop that had not run yet (compactByDevice's `texts > 0`, when it followed the loop here) deoptimized the
 * optimized loop for lack of type feedback, over and over: 524 deopts in one 6 s run of bench/export/run.ts (V8's
 * --log-deopt; it depends on when V8 optimizes, and later runs did not do it), each followed by another optimization
 * (bench/RESULTS.md, issue 16, session 9).
 */
function collectNumbers(points: readonly TsPoint[], series: Map<string, DeviceNumbers>): number {
  let texts = 0;
  for (let i = 0; i < points.length; ) {
    const { deviceId, ts } = points[i];
    // A run: consecutive points of one device and one ts (one message's values, usually).
    let end = i + 1;
    while (end < points.length && points[end].deviceId === deviceId && points[end].ts === ts) end++;
    let s = series.get(deviceId);
    if (s === undefined) {
      const keys: string[] = [];
      for (let j = i; j < end; j++) keys.push(points[j].key);
      const slot = handedOut < POOLED_BUFFERS ? handedOut++ : -1;
      series.set(deviceId, (s = { keys, nums: pooledBuffer(slot), slot, n: 0, ok: distinct(keys), lastTs: -Infinity }));
      if (!s.ok) texts++;
    }
    if (s.ok) {
      const width = s.keys.length;
      // The packed form holds ts - previous ts as a varint: it must be a safe integer too, or it would not be exact.
      if (end - i !== width || !(ts > s.lastTs) || !Number.isSafeInteger(ts) || (s.n > 0 && ts - s.lastTs > Number.MAX_SAFE_INTEGER)) {
        s.ok = false;
        texts++;
      } else {
        if (s.n + width + 1 > s.nums.length) {
          const grown = new Float64Array(Math.max(s.nums.length * 2, s.n + width + 1));
          grown.set(s.nums.subarray(0, s.n));
          s.nums = grown;
          if (s.slot >= 0 && grown.length <= LARGEST_POOLED) pool[s.slot] = grown;
        }
        const nums = s.nums;
        let at = s.n;
        nums[at++] = ts;
        for (let j = i; j < end; j++) {
          const p = points[j];
          const v = p.value;
          if (p.key !== s.keys[j - i] || !(v.type === 'DOUBLE' || (v.type === 'LONG' && typeof v.value === 'number')) || !Number.isFinite(v.value)) {
            s.ok = false;
            texts++;
            break;
          }
          nums[at++] = v.value as number;
        }
        s.n = at;
        s.lastTs = ts;
      }
    }
    i = end;
  }
  return texts;
}

/**
 * True when a message's keys can be written in their order: distinct, and none that a JSON object would move (an
 * array index) or drop (`__proto__`); those devices take the text form, which orders them as an object does.
 */
/**
 * Number buffers reused from batch to batch (a typed array costs a microsecond or so to allocate; the rows copy the
 * numbers out before the next batch is encoded): the batch's n-th device takes the n-th. Bounded in count and size,
 * so what stays allocated does not grow with the fleet (past the bounds, fresh buffers).
 */
const pool: Float64Array[] = [];
const POOLED_BUFFERS = 1_024;
/** Elements of the largest buffer kept (16 KiB). */
const LARGEST_POOLED = 2_048;
/** Buffers of the pool the current batch took. */
let handedOut = 0;

function pooledBuffer(slot: number): Float64Array {
  if (slot < 0) return new Float64Array(256);
  return (pool[slot] ??= new Float64Array(256));
}

/** Longest key (UTF-16 units) the number form takes: its quoted JSON text fits a u16 length ((65535 - 2) / 6). */
const MAX_KEY_UNITS = 10_000;

function distinct(keys: readonly string[]): boolean {
  if (keys.length === 0 || keys.length > 0xffff) return false;
  for (let j = 0; j < keys.length; j++) {
    const first = keys[j].charCodeAt(0);
    // A key's JSON text is stored behind a u16 length: at most 6 bytes a UTF-16 unit (\u00XX), so longer keys take text.
    if ((first >= 0x30 && first <= 0x39) || keys[j] === '__proto__' || keys[j].length > MAX_KEY_UNITS) return false;
    for (let k = 0; k < j; k++) if (keys[k] === keys[j]) return false;
  }
  return true;
}

/** One row's bytes for the devices (each with its message prefix) of one lane. */
export function compactRow(devices: readonly { deviceId: string; prefix: string; numbers: DeviceNumbers }[]): Buffer {
  let size = 1;
  for (const d of devices) {
    size += 2 + d.deviceId.length * 3 + 4 + d.prefix.length * 3 + 1;
    if (d.numbers.ok) {
      // At most 8 varint bytes per ts and 9 per value.
      size += 2 + 4 + 4 + 8 + d.numbers.n * 9;
      for (const k of d.numbers.keys) size += 2 + (k.length + 2) * 6;
    } else size += 4 + d.numbers.text!.length * 3;
  }
  // Written into a buffer reused from row to row, then copied out at its size (small rows come from Node's pool).
  if (rowScratch.length < size) rowScratch = Buffer.allocUnsafe(Math.max(size, rowScratch.length * 2));
  const buf = rowScratch;
  let at = 0;
  buf[at++] = VERSION;
  const text = (s: string, lengthBytes: 2 | 4) => {
    const n = buf.write(s, at + lengthBytes, 'utf8');
    if (lengthBytes === 2) buf.writeUInt16LE(n, at);
    else buf.writeUInt32LE(n, at);
    at += lengthBytes + n;
  };
  for (const d of devices) {
    text(d.deviceId, 2);
    text(d.prefix, 4);
    const s = d.numbers;
    if (!s.ok) {
      buf[at++] = 1;
      text(s.text!, 4);
      continue;
    }
    buf[at++] = 2;
    const width = s.keys.length;
    buf.writeUInt16LE(width, at);
    at += 2;
    for (const k of s.keys) text(JSON.stringify(k), 2);
    buf.writeUInt32LE(s.n / (width + 1), at);
    const lengthAt = at + 4;
    at += 8;
    const start = at;
    at = packNumbers(buf, at, s.nums, s.n, width);
    buf.writeUInt32LE(at - start, lengthAt);
  }
  const row = Buffer.from(buf.subarray(0, at));
  if (rowScratch.length > LARGEST_SCRATCH) rowScratch = Buffer.allocUnsafe(LARGEST_SCRATCH);
  return row;
}

/** compactRow's buffer (a row is bounded by a batch of its rule: at most a few MB), kept up to 1 MiB. */
let rowScratch = Buffer.allocUnsafe(64 * 1024);
const LARGEST_SCRATCH = 1024 * 1024;

/** The previous value of each key while packing (NaN: none; no packed value is NaN). */
let previous = new Float64Array(16);
const POW10 = [1, 10, 100, 1000, 10000];

/** Form 2's numbers: the first ts as f64, then per message its ts delta and its values, tagged (see the file's head). */
function packNumbers(buf: Buffer, at: number, nums: Float64Array, n: number, width: number): number {
  if (previous.length < width) previous = new Float64Array(width);
  previous.fill(Number.NaN, 0, width);
  let lastTs = nums[0];
  at = buf.writeDoubleLE(lastTs, at);
  for (let i = 0; i < n; ) {
    const ts = nums[i++];
    at = writeVarint(buf, at, ts - lastTs);
    lastTs = ts;
    for (let k = 0; k < width; k++) {
      const v = nums[i++];
      // -0 and 0 are both written 0 in JSON, so a -0 may stand for a 0 and the other way round.
      if (v === previous[k]) {
        buf[at++] = 0;
        continue;
      }
      previous[k] = v;
      if (Number.isInteger(v) && v > -2147483648 && v < 2147483648) {
        buf[at++] = 1;
        at = writeVarint(buf, at, v < 0 ? -2 * v - 1 : 2 * v);
        continue;
      }
      let tag = 6;
      for (let d = 1; d <= 4; d++) {
        const m = Math.round(v * POW10[d]);
        if (m > -2147483648 && m < 2147483648 && m / POW10[d] === v) {
          buf[at++] = 1 + d;
          at = writeVarint(buf, at, m < 0 ? -2 * m - 1 : 2 * m);
          tag = 0;
          break;
        }
      }
      if (tag === 6) {
        buf[at++] = 6;
        at = buf.writeDoubleLE(v, at);
      }
    }
  }
  return at;
}

/** A non-negative safe integer, 7 bits a byte, low bits first. */
function writeVarint(buf: Buffer, at: number, n: number): number {
  while (n >= 128) {
    buf[at++] = n < 2147483648 ? (n & 127) | 128 : (n % 128) | 128;
    n = Math.floor(n / 128);
  }
  buf[at++] = n;
  return at;
}

/**
 * Reads form 2's numbers of one device at `at` into `out` (grown when short: the array to use is returned with the end),
 * each message's ts then its values, as compactByDevice held them (a -0 may come back as 0: the JSON is the same).
 */
export function unpackNumbers(buf: Buffer, at: number, count: number, width: number, out: Float64Array): { nums: Float64Array; end: number } {
  const n = count * (width + 1);
  let nums = out.length >= n ? out : new Float64Array(n);
  let ts = buf.readDoubleLE(at);
  at += 8;
  let i = 0;
  for (let e = 0; e < count; e++) {
    let delta = 0;
    for (let shift = 1; ; shift *= 128) {
      const b = buf[at++];
      delta += (b & 127) * shift;
      if (b < 128) break;
    }
    ts += delta;
    nums[i++] = ts;
    for (let k = 0; k < width; k++, i++) {
      const tag = buf[at++];
      if (tag === 0) {
        nums[i] = nums[i - width - 1];
        continue;
      }
      if (tag === 6) {
        nums[i] = buf.readDoubleLE(at);
        at += 8;
        continue;
      }
      let z = 0;
      for (let shift = 1; ; shift *= 128) {
        const b = buf[at++];
        z += (b & 127) * shift;
        if (b < 128) break;
      }
      const m = z % 2 === 0 ? z / 2 : -(z + 1) / 2;
      if (tag === 1) nums[i] = m;
      else if (tag <= 5) nums[i] = m / POW10[tag - 1];
      else throw new Error(`unknown compact value tag ${tag}`);
    }
  }
  return { nums, end: at };
}

/** One device's message of a compact row: its id and its `data` JSON text. */
export interface CompactMessage {
  deviceId: string;
  data: string;
}

/** The messages of a compact row, in order, each device's `data` rendered as the text form holds it. */
export function readCompactRow(row: Uint8Array): CompactMessage[] {
  const buf = Buffer.isBuffer(row) ? row : Buffer.from(row.buffer, row.byteOffset, row.byteLength);
  if (buf[0] !== 1 && buf[0] !== 2) throw new Error(`unknown compact outbox row version ${buf[0]}`);
  let at = 1;
  const text = (lengthBytes: 2 | 4) => {
    const n = lengthBytes === 2 ? buf.readUInt16LE(at) : buf.readUInt32LE(at);
    const s = buf.toString('utf8', at + lengthBytes, at + lengthBytes + n);
    at += lengthBytes + n;
    return s;
  };
  const out: CompactMessage[] = [];
  while (at < buf.length) {
    const deviceId = text(2);
    const prefix = text(4);
    const form = buf[at++];
    if (form === 1) {
      out.push({ deviceId, data: `${prefix}${text(4)}}` });
      continue;
    }
    if (form !== 0 && form !== 2) throw new Error(`unknown compact outbox form ${form}`);
    const width = buf.readUInt16LE(at);
    at += 2;
    const keys: string[] = [];
    for (let k = 0; k < width; k++) keys.push(text(2));
    const count = buf.readUInt32LE(at);
    at += 4;
    if (form === 2) {
      const { nums, end } = unpackNumbers(buf, at + 4, count, width, new Float64Array(count * (width + 1)));
      at = end;
      const entries: string[] = new Array(count);
      for (let e = 0, i = 0; e < count; e++) {
        let entry = `{"ts":${tsText(nums[i++])},"values":{${keys[0]}:${numberText(nums[i++])}`;
        for (let k = 1; k < width; k++) entry += `,${keys[k]}:${numberText(nums[i++])}`;
        entries[e] = `${entry}}}`;
      }
      out.push({ deviceId, data: `${prefix}[${entries.join(',')}]}` });
      continue;
    }
    const entries: string[] = new Array(count);
    for (let e = 0; e < count; e++) {
      let entry = `{"ts":${tsText(buf.readDoubleLE(at))},"values":{${keys[0]}:${numberText(buf.readDoubleLE(at + 8))}`;
      at += 16;
      for (let k = 1; k < width; k++, at += 8) entry += `,${keys[k]}:${numberText(buf.readDoubleLE(at))}`;
      entries[e] = `${entry}}}`;
    }
    out.push({ deviceId, data: `${prefix}[${entries.join(',')}]}` });
  }
  return out;
}

/** A finite number as JSON.stringify writes it (-0 as 0). */
const numberText = (v: number): string => String(v);
