/**
 * Each device's telemetry of one group-commit batch, packed straight into compact-telemetry.ts's form 2 in one pass
 * over the batch's points (issue 16): the bytes a row copies, with no array of numbers in between.
 *
 * A device keeps the number form while each of its messages (a run of consecutive points of one device and one ts)
 * has the keys of its first, in the same order, with finite numbers, and its timestamps increase; otherwise it is
 * marked for the text form and its points are rendered from the batch (telemetry-json.ts). The JSON delivered is the
 * same either way (both forms render one entry per ts in first-seen order).
 *
 * Packing as the group committer queued each submission (the points then in the CPU's cache) was measured and left
 * out: it cost 20-50 ns a message more than this pass (bench/export/enqueue.ts; bench/RESULTS.md, "Data out: the
 * outbox rows' packing"): the pass reads the points in the order they were allocated, which the CPU prefetches, while
 * packing at each queueing touched the device's state in scattered places between other work.
 */
import type { TsPoint } from '../model.ts';
import { telemetryJsonByDevice } from './telemetry-json.ts';

/** One device's points of a batch: its keys, and its messages packed (form 2), or its JSON text when not `ok`. */
export interface DeviceNumbers {
  keys: string[];
  /** False once the device's points cannot take the number form. */
  ok: boolean;
  /** Messages packed. */
  messages: number;
  /** The first message's ts (the packed deltas start from it). */
  firstTs: number;
  lastTs: number;
  /** Form 2's bytes after the first ts: per message the ts delta (varint), then its tagged values. */
  bytes: Uint8Array;
  /** Bytes of `bytes` written. */
  length: number;
  /** The previous value of each key while packing (NaN: none; no packed value is NaN). */
  previous: Float64Array;
  /** Its telemetry array's JSON text, when not `ok` (set by finish()). */
  text?: string;
}

/** Longest key (UTF-16 units) the number form takes: its quoted JSON text fits a u16 length ((65535 - 2) / 6). */
const MAX_KEY_UNITS = 10_000;
/** Devices' entries (and their buffers) a collector keeps from batch to batch, and the largest buffer kept. */
const KEPT_ENTRIES = 1_024;
const LARGEST_KEPT_BYTES = 4_096;
const FIRST_BYTES = 512;
const POW10 = [1, 10, 100, 1000, 10000];
const F64 = new Float64Array(1);
const F64_BYTES = new Uint8Array(F64.buffer);

/** Collects one batch's telemetry by device; reset() makes it ready for another batch (its buffers kept). */
export class TelemetryCollector {
  /** Each device's numbers, in order of its first point. */
  devices = new Map<string, DeviceNumbers>();
  /** Devices marked for the text form. */
  private texts = 0;
  private readonly entries: DeviceNumbers[] = [];
  private used = 0;
  /** The device of the last run, and its entry (a device's messages often come in runs: one socket read's worth). */
  private lastId: string | undefined;
  private last: DeviceNumbers | undefined;

  /**
   * Packs points (a batch's, in order; several calls continue one another, but a run does not span two calls). The
   * loop is the function's last statement: V8 optimizes such a loop on the stack (OSR), and code after it that had
   * not run yet deoptimized it over and over in an earlier version (bench/RESULTS.md, issue 16, session 9).
   */
  add(points: readonly TsPoint[]): void {
    for (let i = 0; i < points.length; ) i = this.run(points, i);
  }

  /** One run at `from` (consecutive points of one device and one ts: one message's values, usually); returns its end. */
  private run(points: readonly TsPoint[], from: number): number {
    const first = points[from];
    const deviceId = first.deviceId;
    const ts = first.ts;
    let d = deviceId === this.lastId ? this.last : this.devices.get(deviceId);
    if (d === undefined) this.devices.set(deviceId, (d = this.open(points, from, runEnd(points, from, deviceId, ts), ts)));
    this.lastId = deviceId;
    this.last = d;
    if (d.ok) {
      // Packed as it is read: each point is read once; the run's end is looked for only when it does not fit.
      const end = pack(d, points, from, deviceId, ts);
      if (end > 0) return end;
      d.ok = false;
      this.texts++;
    }
    return runEnd(points, from, deviceId, ts);
  }

  /** A device's entry at its first run (its keys are the run's). */
  private open(points: readonly TsPoint[], from: number, end: number, ts: number): DeviceNumbers {
    const keys: string[] = new Array(end - from);
    for (let j = from; j < end; j++) keys[j - from] = points[j].key;
    let d = this.entries[this.used];
    if (d === undefined) {
      d = { keys, ok: true, messages: 0, firstTs: ts, lastTs: -Infinity, bytes: new Uint8Array(FIRST_BYTES), length: 0, previous: new Float64Array(keys.length) };
      if (this.used < KEPT_ENTRIES) this.entries[this.used++] = d;
    } else {
      this.used++;
      d.keys = keys;
      d.ok = true;
      d.messages = 0;
      d.firstTs = ts;
      d.lastTs = -Infinity;
      d.length = 0;
      d.text = undefined;
      if (d.previous.length < keys.length) d.previous = new Float64Array(keys.length);
    }
    d.previous.fill(Number.NaN, 0, keys.length);
    if (!distinct(keys)) {
      d.ok = false;
      this.texts++;
    }
    return d;
  }

  /** The batch's devices, those of the text form with their text rendered from `points` (the whole batch). */
  finish(points: readonly TsPoint[]): Map<string, DeviceNumbers> {
    if (this.texts > 0) {
      const text = telemetryJsonByDevice(points.filter((p) => !this.devices.get(p.deviceId)!.ok));
      for (const [deviceId, json] of text) this.devices.get(deviceId)!.text = json;
    }
    return this.devices;
  }

  /** Ready for another batch: the devices forgotten, the buffers of up to KEPT_ENTRIES of them kept. */
  reset(): void {
    for (let i = 0; i < this.used; i++) {
      const d = this.entries[i];
      if (d.bytes.length > LARGEST_KEPT_BYTES) d.bytes = new Uint8Array(FIRST_BYTES);
      d.text = undefined;
    }
    this.devices = new Map();
    this.lastId = this.last = undefined;
    this.texts = 0;
    this.used = 0;
  }
}

/** The end of the run at `from`. */
function runEnd(points: readonly TsPoint[], from: number, deviceId: string, ts: number): number {
  let end = from + 1;
  while (end < points.length && points[end].deviceId === deviceId && points[end].ts === ts) end++;
  return end;
}

/**
 * Packs the message of `d` at `from` (a run of points of `deviceId` and `ts`); returns the run's end, or -1 when it
 * does not fit the number form (the device then takes the text form; what was written is dropped with it).
 */
function pack(d: DeviceNumbers, points: readonly TsPoint[], from: number, deviceId: string, ts: number): number {
  const keys = d.keys;
  const width = keys.length;
  const end = from + width;
  // The packed form holds ts - previous ts as a varint: it must be a safe integer too, or it would not be exact.
  if (end > points.length || !(ts > d.lastTs) || !Number.isSafeInteger(ts) || (d.messages > 0 && ts - d.lastTs > Number.MAX_SAFE_INTEGER)) return -1;
  // At most 8 varint bytes for the ts and 9 a value.
  if (d.length + 8 + 9 * width > d.bytes.length) {
    const grown = new Uint8Array(Math.max(2 * d.bytes.length, d.length + 8 + 9 * width));
    grown.set(d.bytes.subarray(0, d.length));
    d.bytes = grown;
  }
  const buf = d.bytes;
  const previous = d.previous;
  let at = d.length;
  const delta = d.messages === 0 ? 0 : ts - d.lastTs;
  if (delta < 128) buf[at++] = delta;
  else at = writeVarint(buf, at, delta);
  for (let k = 0; k < width; k++) {
    const p = points[from + k];
    const v = p.value;
    // The run must be exactly the device's keys: as many points, of this device and ts, in the same order.
    if (p.key !== keys[k] || (k > 0 && (p.deviceId !== deviceId || p.ts !== ts))) return -1;
    if (!(v.type === 'DOUBLE' || (v.type === 'LONG' && typeof v.value === 'number'))) return -1;
    const n = v.value as number;
    // -0 and 0 are both written 0 in JSON, so a -0 may stand for a 0 and the other way round.
    if (n === previous[k]) {
      buf[at++] = 0;
      continue;
    }
    if (!Number.isFinite(n)) return -1;
    previous[k] = n;
    at = packValue(buf, at, n);
  }
  // A run longer than the keys needs no check here: its rest is read as the next run, of the same ts, which fails
  // `ts > d.lastTs` and turns the device to the text form.
  d.length = at;
  d.lastTs = ts;
  d.messages++;
  return end;
}

/** One value that is not its key's previous: tag 1 an integer, 2-5 a decimal of 1-4 digits, 6 an f64 (the file's head). */
function packValue(buf: Uint8Array, at: number, v: number): number {
  if (Number.isInteger(v) && v > -2147483648 && v < 2147483648) {
    buf[at++] = 1;
    return writeVarint(buf, at, v < 0 ? -2 * v - 1 : 2 * v);
  }
  for (let d = 1; d <= 4; d++) {
    const m = Math.round(v * POW10[d]);
    if (m > -2147483648 && m < 2147483648 && m / POW10[d] === v) {
      buf[at++] = 1 + d;
      return writeVarint(buf, at, m < 0 ? -2 * m - 1 : 2 * m);
    }
  }
  buf[at++] = 6;
  F64[0] = v;
  // Little-endian, as Buffer#writeDoubleLE writes it (every platform Node runs on is little-endian).
  for (let b = 0; b < 8; b++) buf[at++] = F64_BYTES[b];
  return at;
}

/** A non-negative safe integer, 7 bits a byte, low bits first. */
function writeVarint(buf: Uint8Array, at: number, n: number): number {
  while (n >= 128) {
    buf[at++] = n < 2147483648 ? (n & 127) | 128 : (n % 128) | 128;
    n = Math.floor(n / 128);
  }
  buf[at++] = n;
  return at;
}

/**
 * True when a message's keys can be written in their order: distinct, and none that a JSON object would move (an
 * array index) or drop (`__proto__`); those devices take the text form, which orders them as an object does.
 */
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
