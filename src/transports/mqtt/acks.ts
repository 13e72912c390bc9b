/**
 * PUBACKs in the order the PUBLISH packets arrived, each sent only once its work has finished
 * ([MQTT-4.6.0-2]; DESIGN "acknowledged only after the commit"). The acks that become ready in one turn of the
 * event loop (a commit releases many at once) are encoded into one buffer and written with one call.
 */

interface PendingAck {
  readonly messageId: number;
  reason: number | undefined;
  /** MQTT 5 Reason String property (0x1F) saying why the PUBLISH was refused; UTF-8, at most REASON_STRING_MAX bytes. */
  reasonString?: Buffer;
}

/** Longest Reason String sent, bytes: room for a 255-character device name the reason names (the client's Maximum Packet Size still applies). */
export const REASON_STRING_MAX = 1024;

/** `text` as UTF-8 of at most REASON_STRING_MAX bytes, cut at a character boundary. */
export function reasonStringBytes(text: string): Buffer {
  let bytes = Buffer.from(text, 'utf8');
  if (bytes.length <= REASON_STRING_MAX) return bytes;
  let chars = text.length;
  while (bytes.length > REASON_STRING_MAX) bytes = Buffer.from(text.slice(0, (chars = Math.floor(chars * 0.9))), 'utf8');
  return bytes;
}

/** Bytes of a Variable Byte Integer holding `n` (MQTT 5.0 §1.5.5). */
function vbiSize(n: number): number {
  return n < 128 ? 1 : n < 16_384 ? 2 : n < 2_097_152 ? 3 : 4;
}

function writeVbi(out: Buffer, at: number, n: number): number {
  while (n >= 128) {
    out[at++] = (n & 0x7f) | 0x80;
    n >>>= 7;
  }
  out[at] = n;
  return at + 1;
}

/** Encodes PUBACKs as mqtt-packet does: v5 omits a success reason code ([MQTT-3.4.2-1]), else adds it and its properties. */
export function pubackSize(version: number, reason: number, reasonString?: Buffer): number {
  return version !== 5 || reason === 0 ? 4 : refusalSize(reasonString);
}

/** Size of a v5 PUBACK with a reason code, and a Reason String if given. */
function refusalSize(reasonString: Buffer | undefined): number {
  if (!reasonString) return 6;
  // Remaining Length and Property Length are Variable Byte Integers (MQTT 5.0 §2.1.4, §2.2.2.1), not one byte.
  const properties = 3 + reasonString.length;
  const remaining = 3 + vbiSize(properties) + properties;
  return 1 + vbiSize(remaining) + remaining;
}

function writePuback(out: Buffer, at: number, version: number, messageId: number, reason: number, reasonString?: Buffer): number {
  if (version === 5 && reason !== 0) return writeRefusal(out, at, messageId, reason, reasonString);
  out[at] = 0x40;
  out[at + 1] = 2;
  out[at + 2] = messageId >> 8;
  out[at + 3] = messageId & 0xff;
  return at + 4;
}

/** A v5 PUBACK with a reason code, and a Reason String property if given. */
function writeRefusal(out: Buffer, at: number, messageId: number, reason: number, text: Buffer | undefined): number {
  out[at] = 0x40;
  if (!text) {
    out[at + 1] = 4;
    out[at + 2] = messageId >> 8;
    out[at + 3] = messageId & 0xff;
    out[at + 4] = reason;
    out[at + 5] = 0; // no properties
    return at + 6;
  }
  const properties = 3 + text.length; // identifier, 2-byte length, bytes
  at = writeVbi(out, at + 1, 3 + vbiSize(properties) + properties);
  out[at] = messageId >> 8;
  out[at + 1] = messageId & 0xff;
  out[at + 2] = reason;
  at = writeVbi(out, at + 3, properties);
  out[at] = 0x1f; // Reason String (MQTT 5.0 §3.4.2.2.2)
  out.writeUInt16BE(text.length, at + 1);
  text.copy(out, at + 3);
  return at + 3 + text.length;
}

/** Where acks go: the connection (read when acks are encoded). */
export interface AckSink {
  /** The connection's protocol version. */
  readonly version: number;
  /** The client's Maximum Packet Size: a larger ack is not sent ([MQTT-3.1.2-25]). */
  readonly clientMaxPacketSize: number | undefined;
  /** Writes encoded PUBACKs to the client. */
  write(bytes: Buffer): void;
}

function flushLater(acks: OrderedAcks): void {
  acks.flushNow();
}

/** Slots a connection's ack queue starts with (it doubles when full; a power of two). */
const FIRST_SLOTS = 4;

/**
 * Queue of QoS 1 acknowledgements awaiting their work: a ring of slots that doubles when full and is reused as acks
 * leave, so a busy connection makes no array per flush (issue 17: garbage per MQTT message).
 */
export class OrderedAcks {
  private slots: (PendingAck | undefined)[] = new Array(FIRST_SLOTS);
  /** Slot of the oldest ack waiting. */
  private head = 0;
  private waiting = 0;
  private flushScheduled = false;

  constructor(private readonly sink: AckSink) {}

  /** Reserves the ack slot of a PUBLISH that has just been received. */
  enqueue(messageId: number): PendingAck {
    const ack: PendingAck = { messageId, reason: undefined };
    this.add(ack);
    return ack;
  }

  /** Reserves an ack slot with an ack the caller made (its reason undefined). */
  add(ack: PendingAck): void {
    if (this.waiting === this.slots.length) this.grow();
    this.slots[(this.head + this.waiting++) & (this.slots.length - 1)] = ack;
  }

  private grow(): void {
    const old = this.slots;
    const slots: (PendingAck | undefined)[] = new Array(old.length * 2);
    for (let i = 0; i < this.waiting; i++) slots[i] = old[(this.head + i) & (old.length - 1)];
    this.slots = slots;
    this.head = 0;
  }

  /**
   * Marks an ack ready with its reason code. Every ready ack at the head of the queue is sent once the current
   * callbacks have run (process.nextTick runs after the promise callbacks of one commit).
   */
  complete(ack: PendingAck, reason: number, reasonString?: string): void {
    ack.reason = reason;
    if (reasonString !== undefined && reason !== 0) ack.reasonString = reasonStringBytes(reasonString);
    if (this.flushScheduled || this.slots[this.head] !== ack) return;
    this.flushScheduled = true;
    process.nextTick(flushLater, this);
  }

  /** Sends the ready acks now (before another packet, so the client sees the order in which work finished). */
  flushReady(): void {
    if (this.flushScheduled) this.flush();
  }

  /** The scheduled flush (process.nextTick). */
  flushNow(): void {
    this.flush();
  }

  private flush(): void {
    if (!this.flushScheduled) return;
    this.flushScheduled = false;
    const slots = this.slots;
    const mask = slots.length - 1;
    const version = this.sink.version;
    const maxSize = this.sink.clientMaxPacketSize ?? Infinity;
    let ready = 0;
    let bytes = 0;
    for (; ready < this.waiting; ready++) {
      const ack = slots[(this.head + ready) & mask]!;
      if (ack.reason === undefined) break;
      // [MQTT-3.4.2-3]: the Reason String is left out when it would pass the client's Maximum Packet Size.
      if (ack.reasonString && pubackSize(version, ack.reason, ack.reasonString) > maxSize) ack.reasonString = undefined;
      const size = pubackSize(version, ack.reason, ack.reasonString);
      if (size <= maxSize) bytes += size;
    }
    const out = Buffer.allocUnsafe(bytes);
    let at = 0;
    for (let i = 0; i < ready; i++) {
      const slot = (this.head + i) & mask;
      const { messageId, reason: code, reasonString } = slots[slot]!;
      slots[slot] = undefined; // the slot is reused; the ack is not kept
      if (pubackSize(version, code!, reasonString) <= maxSize) at = writePuback(out, at, version, messageId, code!, reasonString);
    }
    this.head = (this.head + ready) & mask;
    this.waiting -= ready;
    if (bytes > 0) this.sink.write(out);
  }

  /** Number of PUBLISH packets not yet acknowledged. */
  get size(): number {
    return this.waiting;
  }
}

export type { PendingAck };
