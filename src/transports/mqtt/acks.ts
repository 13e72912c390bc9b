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

/** Longest Reason String sent, bytes: keeps every length field of the PUBACK a single byte. */
export const REASON_STRING_MAX = 100;

/** `text` as UTF-8 of at most REASON_STRING_MAX bytes, cut at a character boundary. */
export function reasonStringBytes(text: string): Buffer {
  let bytes = Buffer.from(text, 'utf8');
  if (bytes.length <= REASON_STRING_MAX) return bytes;
  let chars = text.length;
  while (bytes.length > REASON_STRING_MAX) bytes = Buffer.from(text.slice(0, (chars = Math.floor(chars * 0.9))), 'utf8');
  return bytes;
}

/** Encodes PUBACKs as mqtt-packet does: v5 omits a success reason code ([MQTT-3.4.2-1]), else adds it and its properties. */
export function pubackSize(version: number, reason: number, reasonString?: Buffer): number {
  if (version !== 5 || reason === 0) return 4;
  return reasonString ? 9 + reasonString.length : 6;
}

function writePuback(out: Buffer, at: number, version: number, messageId: number, reason: number, reasonString?: Buffer): number {
  const long = version === 5 && reason !== 0;
  const text = long ? reasonString : undefined;
  out[at] = 0x40;
  out[at + 1] = !long ? 2 : text ? 7 + text.length : 4;
  out[at + 2] = messageId >> 8;
  out[at + 3] = messageId & 0xff;
  if (!long) return at + 4;
  out[at + 4] = reason;
  if (!text) {
    out[at + 5] = 0;
    return at + 6;
  }
  out[at + 5] = 3 + text.length; // property length: identifier, 2-byte length, bytes
  out[at + 6] = 0x1f; // Reason String (MQTT 5.0 §3.4.2.2.2)
  out.writeUInt16BE(text.length, at + 7);
  text.copy(out, at + 9);
  return at + 9 + text.length;
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

/** Queue of QoS 1 acknowledgements awaiting their work. */
export class OrderedAcks {
  private queue: PendingAck[] = [];
  private head = 0;
  private flushScheduled = false;

  constructor(private readonly sink: AckSink) {}

  /** Reserves the ack slot of a PUBLISH that has just been received. */
  enqueue(messageId: number): PendingAck {
    const ack: PendingAck = { messageId, reason: undefined };
    this.queue.push(ack);
    return ack;
  }

  /**
   * Marks an ack ready with its reason code. Every ready ack at the head of the queue is sent once the current
   * callbacks have run (process.nextTick runs after the promise callbacks of one commit).
   */
  complete(ack: PendingAck, reason: number, reasonString?: string): void {
    ack.reason = reason;
    if (reasonString !== undefined && reason !== 0) ack.reasonString = reasonStringBytes(reasonString);
    if (this.flushScheduled || this.queue[this.head] !== ack) return;
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
    const queue = this.queue;
    const version = this.sink.version;
    const maxSize = this.sink.clientMaxPacketSize ?? Infinity;
    let end = this.head;
    let bytes = 0;
    while (end < queue.length && queue[end].reason !== undefined) {
      const ack = queue[end];
      // [MQTT-3.4.2-3]: the Reason String is left out when it would pass the client's Maximum Packet Size.
      if (ack.reasonString && pubackSize(version, ack.reason!, ack.reasonString) > maxSize) ack.reasonString = undefined;
      const size = pubackSize(version, ack.reason!, ack.reasonString);
      if (size <= maxSize) bytes += size;
      end++;
    }
    const out = Buffer.allocUnsafe(bytes);
    let at = 0;
    for (let i = this.head; i < end; i++) {
      const { messageId, reason: code, reasonString } = queue[i];
      if (pubackSize(version, code!, reasonString) <= maxSize) at = writePuback(out, at, version, messageId, code!, reasonString);
    }
    if (end === queue.length) {
      this.queue = [];
      this.head = 0;
    } else if (end > 64 && end * 2 > queue.length) {
      this.queue = queue.slice(end); // a connection that is never idle must not grow its queue forever
      this.head = 0;
    } else this.head = end;
    if (bytes > 0) this.sink.write(out);
  }

  /** Number of PUBLISH packets not yet acknowledged. */
  get size(): number {
    return this.queue.length - this.head;
  }
}

export type { PendingAck };
