/**
 * PUBACKs in the order the PUBLISH packets arrived, each sent only once its work has finished
 * ([MQTT-4.6.0-2]; DESIGN "acknowledged only after the commit"). The acks that become ready in one turn of the
 * event loop (a commit releases many at once) are encoded into one buffer and written with one call.
 */

interface PendingAck {
  readonly messageId: number;
  reason: number | undefined;
}

/** Encodes PUBACKs as mqtt-packet does: v5 omits a success reason code ([MQTT-3.4.2-1]), else adds it and an empty property length. */
export function pubackSize(version: number, reason: number): number {
  return version === 5 && reason !== 0 ? 6 : 4;
}

function writePuback(out: Buffer, at: number, version: number, messageId: number, reason: number): number {
  const long = version === 5 && reason !== 0;
  out[at] = 0x40;
  out[at + 1] = long ? 4 : 2;
  out[at + 2] = messageId >> 8;
  out[at + 3] = messageId & 0xff;
  if (!long) return at + 4;
  out[at + 4] = reason;
  out[at + 5] = 0;
  return at + 6;
}

/** Queue of QoS 1 acknowledgements awaiting their work. */
export class OrderedAcks {
  private queue: PendingAck[] = [];
  private head = 0;
  private flushScheduled = false;
  private readonly flushLater = () => this.flush();

  /**
   * @param version the connection's protocol version, read when acks are encoded
   * @param write writes encoded PUBACKs to the client
   * @param maxSize the client's Maximum Packet Size: a larger ack is not sent ([MQTT-3.1.2-25])
   */
  constructor(
    private readonly version: () => number,
    private readonly write: (bytes: Buffer) => void,
    private readonly maxSize: () => number | undefined = () => undefined,
  ) {}

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
  complete(ack: PendingAck, reason: number): void {
    ack.reason = reason;
    if (this.flushScheduled || this.queue[this.head] !== ack) return;
    this.flushScheduled = true;
    process.nextTick(this.flushLater);
  }

  /** Sends the ready acks now (before another packet, so the client sees the order in which work finished). */
  flushReady(): void {
    if (this.flushScheduled) this.flush();
  }

  private flush(): void {
    if (!this.flushScheduled) return;
    this.flushScheduled = false;
    const queue = this.queue;
    const version = this.version();
    const maxSize = this.maxSize() ?? Infinity;
    let end = this.head;
    let bytes = 0;
    while (end < queue.length && queue[end].reason !== undefined) {
      const size = pubackSize(version, queue[end].reason!);
      if (size <= maxSize) bytes += size;
      end++;
    }
    const out = Buffer.allocUnsafe(bytes);
    let at = 0;
    for (let i = this.head; i < end; i++) {
      const { messageId, reason: code } = queue[i];
      if (pubackSize(version, code!) <= maxSize) at = writePuback(out, at, version, messageId, code!);
    }
    if (end === queue.length) {
      this.queue = [];
      this.head = 0;
    } else if (end > 64 && end * 2 > queue.length) {
      this.queue = queue.slice(end); // a connection that is never idle must not grow its queue forever
      this.head = 0;
    } else this.head = end;
    if (bytes > 0) this.write(out);
  }

  /** Number of PUBLISH packets not yet acknowledged. */
  get size(): number {
    return this.queue.length - this.head;
  }
}

export type { PendingAck };
