/**
 * A live update frame (spec §3.1 reply shape), written as its points arrive straight into bytes: one growing byte
 * buffer per key, reused from frame to frame, and one Buffer per frame handed to the socket as a text frame.
 *
 * Why bytes: a subscription gathers up to `wsUpdateIntervalMs` (or the frame budget's longer interval) of points
 * before a frame goes out. Held as JavaScript objects or strings they outlive the young generation and the garbage
 * collector copies them; in a Buffer the collector never looks at them, and the frame needs no UTF-8 encoding of a
 * string when it is sent (bench/RESULTS.md, issue 11).
 *
 * The bytes are those `JSON.stringify` gives for the reply object {@link ReplyData.reply} builds from the same pairs:
 * keys in Java's sorted-map order (spec §3.1), values as strings, `latestValues` the ts of each key's last pair.
 */
import type { KvValue } from '../../core/model.ts';
import { javaDoubleString, stringValue } from '../kv-values.ts';

/** A JSON string literal for `text`; plain ASCII without quotes or backslashes skips JSON.stringify. */
export function jsonString(text: string): string {
  return /^[\x20-\x21\x23-\x5b\x5d-\x7e]*$/.test(text) ? `"${text}"` : JSON.stringify(text);
}

/** Bytes of one key's pairs (`[ts,"value"],[ts,"value"]`, no brackets around the list), reused across frames. */
class KeyPairs {
  buf = Buffer.allocUnsafe(INITIAL_BYTES);
  len = 0;
  /** The ts of the last pair added, in this frame or an earlier one (or seeded); -Infinity before any. */
  lastTs = -Infinity;
  constructor(
    /** The key as a JSON string literal. */
    readonly quoted: string,
  ) {}

  /** Makes room for `n` more bytes. */
  reserve(n: number): void {
    if (this.len + n <= this.buf.length) return;
    const next = Buffer.allocUnsafe(Math.max(this.buf.length * 2, this.len + n));
    this.buf.copy(next, 0, 0, this.len);
    this.buf = next;
  }
}

const INITIAL_BYTES = 64;
/** A key's buffer grown past this by a burst is let go after its frame, so an idle subscription holds little. */
const KEEP_BYTES = 64 * 1024;
const COMMA = 0x2c;
const OPEN = 0x5b;
const CLOSE = 0x5d;
const QUOTE = 0x22;

/**
 * A live update reply collected pair by pair and rendered to bytes by {@link LiveFrame.bytes}, which empties it for the
 * next frame. Pairs of several commits may be added in order (one frame for several commits, every point kept).
 */
export class LiveFrame {
  private readonly keys = new Map<string, KeyPairs>();
  /** Pairs held, all keys together. */
  size = 0;
  /** The last ts rendered and its text: a message's points share their ts. */
  private tsNumber = NaN;
  private tsText = '';

  /** A point of core's flat live format (`type`, `value` as on the bus). */
  addFlat(key: string, ts: number, type: string, value: string | number | boolean): void {
    this.addFlatTo(this.keyPairs(key), ts, type, value);
  }

  /**
   * {@link addFlat} unless `ts` is older than the last pair added for the key, in this frame or an earlier one
   * (TB LATEST_TELEMETRY: an equal ts passes, an older one is dropped). One lookup of the key for both.
   */
  addFlatIfNotOlder(key: string, ts: number, type: string, value: string | number | boolean): void {
    const entry = this.keyPairs(key);
    if (ts >= entry.lastTs) this.addFlatTo(entry, ts, type, value);
  }

  /** Records `ts` as the key's latest (a snapshot's value) for {@link addFlatIfNotOlder}, if newer than what it has. */
  seedLatest(key: string, ts: number): void {
    const entry = this.keyPairs(key);
    if (ts > entry.lastTs) entry.lastTs = ts;
  }

  add(key: string, ts: number, value: KvValue | null): void {
    this.addJson(this.keyPairs(key), ts, value === null ? 'null' : jsonString(stringValue(value)));
  }

  /** A deleted value: `[0, ""]` (spec §3.3). */
  addDeleted(key: string): void {
    this.addJson(this.keyPairs(key), 0, '""');
  }

  get empty(): boolean {
    return this.size === 0;
  }

  /** Drops the pairs held. */
  clear(): void {
    for (const entry of this.keys.values()) entry.len = 0;
    this.size = 0;
  }

  /** The reply's JSON text as UTF-8 bytes (what {@link ReplyData.text} gives for the same pairs); empties the frame. */
  bytes(subscriptionId: number): Buffer {
    const names: string[] = [];
    for (const [name, entry] of this.keys) if (entry.len > 0) names.push(name);
    names.sort();
    const head = `{"subscriptionId":${subscriptionId},"errorCode":0,"errorMsg":null,"data":{`;
    let latest = '},"latestValues":{';
    let total = head.length;
    for (let i = 0; i < names.length; i++) {
      const entry = this.keys.get(names[i])!;
      const quotedBytes = Buffer.byteLength(entry.quoted);
      total += quotedBytes + 3 + entry.len + (i > 0 ? 1 : 0); // "key":[...]
      latest += `${i > 0 ? ',' : ''}${entry.quoted}:${entry.lastTs}`; // TB: the ts of the last pair, not the newest (spec §6.5)
    }
    latest += '}}';
    const out = Buffer.allocUnsafe(total + Buffer.byteLength(latest));
    let at = out.write(head, 0, 'latin1');
    for (let i = 0; i < names.length; i++) {
      const entry = this.keys.get(names[i])!;
      if (i > 0) out[at++] = COMMA;
      at += out.write(entry.quoted, at, 'utf8');
      out[at++] = 0x3a; // ':'
      out[at++] = OPEN;
      at += entry.buf.copy(out, at, 0, entry.len);
      out[at++] = CLOSE;
      entry.len = 0;
      if (entry.buf.length > KEEP_BYTES) entry.buf = Buffer.allocUnsafe(INITIAL_BYTES);
    }
    at += out.write(latest, at, 'utf8');
    this.size = 0;
    return at === out.length ? out : out.subarray(0, at); // never hand out bytes not written (allocUnsafe)
  }

  /** The reply's JSON text (tests); empties the frame. */
  text(subscriptionId: number): string {
    return this.bytes(subscriptionId).toString('utf8');
  }

  private keyPairs(key: string): KeyPairs {
    let entry = this.keys.get(key);
    if (!entry) this.keys.set(key, (entry = new KeyPairs(jsonString(key))));
    return entry;
  }

  private addFlatTo(entry: KeyPairs, ts: number, type: string, value: string | number | boolean): void {
    if (type === 'DOUBLE') this.addAscii(entry, ts, javaDoubleString(value as number)); // digits, '.', 'E', '-', NaN, Infinity
    else if (type === 'BOOLEAN') this.addAscii(entry, ts, value ? 'true' : 'false');
    else if (type === 'LONG') this.addAscii(entry, ts, String(value));
    else this.addJson(entry, ts, jsonString(String(value))); // STRING, JSON
  }

  /** Counts a pair of `entry` at `ts`; returns the ts as text (a message's points share their ts: rendered once). */
  private pair(entry: KeyPairs, ts: number): string {
    if (ts !== this.tsNumber) {
      this.tsNumber = ts;
      this.tsText = String(ts);
    }
    entry.lastTs = ts;
    this.size++;
    return this.tsText;
  }

  /** `[ts,"value"]` where `value` is ASCII that needs no escaping (numbers, booleans). */
  private addAscii(entry: KeyPairs, ts: number, value: string): void {
    const tsText = this.pair(entry, ts);
    entry.reserve(tsText.length + value.length + 6);
    const buf = entry.buf;
    let at = entry.len;
    if (at > 0) buf[at++] = COMMA;
    buf[at++] = OPEN;
    for (let i = 0; i < tsText.length; i++) buf[at++] = tsText.charCodeAt(i);
    buf[at++] = COMMA;
    buf[at++] = QUOTE;
    for (let i = 0; i < value.length; i++) buf[at++] = value.charCodeAt(i);
    buf[at++] = QUOTE;
    buf[at++] = CLOSE;
    entry.len = at;
  }

  /** `[ts,<json>]` where `json` is a JSON literal already (escaped, possibly non-ASCII). */
  private addJson(entry: KeyPairs, ts: number, json: string): void {
    const tsText = this.pair(entry, ts);
    entry.reserve(tsText.length + Buffer.byteLength(json) + 4);
    const buf = entry.buf;
    let at = entry.len;
    if (at > 0) buf[at++] = COMMA;
    buf[at++] = OPEN;
    for (let i = 0; i < tsText.length; i++) buf[at++] = tsText.charCodeAt(i);
    buf[at++] = COMMA;
    at += buf.write(json, at, 'utf8');
    buf[at++] = CLOSE;
    entry.len = at;
  }
}
