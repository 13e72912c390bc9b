/**
 * The compact outbox form of telemetry (issue 16, bench/RESULTS.md "Data out, session 7"). A commit's telemetry
 * outbox rows hold each device's points as numbers (float64: its ts, then its values in the order of its keys)
 * instead of the messages' JSON text, which delivery writes from them. On the commit path that costs copying the
 * numbers (~50 ns a message against ~350 ns for the text), and the row SQLite writes, to the WAL and then the table,
 * is a third of the text's size (24 bytes a message of two values against ~70).
 *
 * A device is in the number form when every message of it in the batch has the same keys in the same order, each
 * value a finite number, and its timestamps increase; otherwise its part of the row holds its telemetry array's JSON
 * text from telemetry-json.ts. Either way the JSON delivered is byte for byte what the text form holds. The numbers
 * are packed in one pass over a batch's points (telemetry-collector.ts).
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
import { tsText } from './telemetry-json.ts';
import { TelemetryCollector, type DeviceNumbers } from './telemetry-collector.ts';

export type { DeviceNumbers } from './telemetry-collector.ts';

const VERSION = 2;

/** compactByDevice's collector, reused from call to call. */
const shared = new TelemetryCollector();

/**
 * Each device's points of a batch, in order of its first point (number form where it fits, else text), from one pass
 * over the batch. The entries and their bytes are reused by the next call: write the rows (compactRow) before
 * encoding another batch.
 */
export function compactByDevice(points: readonly TsPoint[]): Map<string, DeviceNumbers> {
  shared.reset();
  shared.add(points);
  return shared.finish(points);
}

/**
 * The constant start of a device's part of a row in the number form: its id, its message prefix, the form and its
 * keys. The outbox keeps it per device (its identity and keys seldom change), so a row copies it instead of encoding it.
 */
export function numbersHead(deviceId: string, prefix: string, keys: readonly string[]): Buffer {
  const quoted = keys.map((k) => JSON.stringify(k));
  let size = 2 + Buffer.byteLength(deviceId) + 4 + Buffer.byteLength(prefix) + 1 + 2;
  for (const q of quoted) size += 2 + Buffer.byteLength(q);
  // Its own memory, not a slice of Node's shared 8 KiB pool: a head is kept (per device) while the rows cut from the
  // pool beside it are gone, and a kept slice would hold its whole 8 KiB block.
  const head = Buffer.allocUnsafeSlow(size);
  let at = 0;
  const text = (s: string, lengthBytes: 2 | 4) => {
    const n = head.write(s, at + lengthBytes, 'utf8');
    if (lengthBytes === 2) head.writeUInt16LE(n, at);
    else head.writeUInt32LE(n, at);
    at += lengthBytes + n;
  };
  text(deviceId, 2);
  text(prefix, 4);
  head[at++] = 2;
  head.writeUInt16LE(keys.length, at);
  at += 2;
  for (const q of quoted) text(q, 2);
  return head;
}

/** One device of a row: its numbers, and its numbersHead() when the caller keeps one (else it is encoded here). */
export interface RowDevice {
  deviceId: string;
  prefix: string;
  numbers: DeviceNumbers;
  head?: Uint8Array;
}

/** One row's bytes for the devices (each with its message prefix) of one lane. */
export function compactRow(devices: readonly RowDevice[]): Buffer {
  // Every device in the number form with its head: the size is exact, so the row is written where it stays.
  let exact = 1;
  for (const d of devices) {
    if (d.head === undefined || !d.numbers.ok) {
      exact = -1;
      break;
    }
    exact += d.head.length + 16 + d.numbers.length;
  }
  if (exact > 0) {
    const row = Buffer.allocUnsafe(exact);
    writeRow(row, devices);
    return row;
  }
  let size = 1;
  for (const d of devices) {
    size += 2 + d.deviceId.length * 3 + 4 + d.prefix.length * 3 + 1;
    if (d.numbers.ok) {
      size += 2 + 4 + 4 + 8 + d.numbers.length;
      for (const k of d.numbers.keys) size += 2 + (k.length + 2) * 6;
    } else size += 4 + d.numbers.text!.length * 3;
  }
  // Written into a buffer reused from row to row, then copied out at its size (small rows come from Node's pool).
  if (rowScratch.length < size) rowScratch = Buffer.allocUnsafe(Math.max(size, rowScratch.length * 2));
  const row = Buffer.from(rowScratch.subarray(0, writeRow(rowScratch, devices)));
  if (rowScratch.length > LARGEST_SCRATCH) rowScratch = Buffer.allocUnsafe(LARGEST_SCRATCH);
  return row;
}

/** Writes the row of `devices` into `buf` (large enough); returns its length. */
function writeRow(buf: Buffer, devices: readonly RowDevice[]): number {
  let at = 0;
  buf[at++] = VERSION;
  const text = (s: string, lengthBytes: 2 | 4) => {
    const n = buf.write(s, at + lengthBytes, 'utf8');
    if (lengthBytes === 2) buf.writeUInt16LE(n, at);
    else buf.writeUInt32LE(n, at);
    at += lengthBytes + n;
  };
  for (const d of devices) {
    const s = d.numbers;
    if (!s.ok) {
      text(d.deviceId, 2);
      text(d.prefix, 4);
      buf[at++] = 1;
      text(s.text!, 4);
      continue;
    }
    if (d.head !== undefined) {
      buf.set(d.head, at);
      at += d.head.length;
    } else {
      text(d.deviceId, 2);
      text(d.prefix, 4);
      buf[at++] = 2;
      buf.writeUInt16LE(s.keys.length, at);
      at += 2;
      for (const k of s.keys) text(JSON.stringify(k), 2);
    }
    buf.writeUInt32LE(s.messages, at);
    buf.writeUInt32LE(8 + s.length, at + 4);
    buf.writeDoubleLE(s.firstTs, at + 8);
    at += 16;
    // Up to 512 bytes copied byte by byte: making a subarray view to copy from costs more (~10-25 ns a message at 24
    // messages a device, bench/export/enqueue.ts).
    const bytes = s.bytes;
    if (s.length <= 512) for (let i = 0; i < s.length; i++) buf[at + i] = bytes[i];
    else buf.set(s.length === bytes.length ? bytes : bytes.subarray(0, s.length), at);
    at += s.length;
  }
  return at;
}

/** compactRow's buffer (a row is bounded by a batch of its rule: at most a few MB), kept up to 1 MiB. */
let rowScratch = Buffer.allocUnsafe(64 * 1024);
const LARGEST_SCRATCH = 1024 * 1024;

const POW10 = [1, 10, 100, 1000, 10000];

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
      if (!(b >= 128)) break; // past the row's end (undefined) too: a damaged row must not loop forever
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
        if (!(b >= 128)) break; // past the row's end (undefined) too: a damaged row must not loop forever
      }
      const m = z % 2 === 0 ? z / 2 : -(z + 1) / 2;
      if (tag === 1) nums[i] = m;
      else if (tag <= 5) nums[i] = m / POW10[tag - 1];
      else throw new Error(`unknown compact value tag ${tag}`);
    }
  }
  if (at > buf.length) throw new Error('compact outbox row ends inside its numbers');
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
