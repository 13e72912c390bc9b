/**
 * PUBACKs in the order the PUBLISH packets arrived, each sent only once its work has finished
 * ([MQTT-4.6.0-2]; DESIGN "acknowledged only after the commit").
 */

interface PendingAck {
  readonly messageId: number;
  reason: number | undefined;
}

/** Queue of QoS 1 acknowledgements awaiting their work. */
export class OrderedAcks {
  private readonly queue: PendingAck[] = [];

  constructor(private readonly sendPuback: (messageId: number, reason: number) => void) {}

  /** Reserves the ack slot of a PUBLISH that has just been received. */
  enqueue(messageId: number): PendingAck {
    const ack: PendingAck = { messageId, reason: undefined };
    this.queue.push(ack);
    return ack;
  }

  /** Marks an ack ready with its reason code and sends every ready ack at the head of the queue. */
  complete(ack: PendingAck, reason: number): void {
    ack.reason = reason;
    while (this.queue.length > 0 && this.queue[0].reason !== undefined) {
      const head = this.queue.shift()!;
      this.sendPuback(head.messageId, head.reason!);
    }
  }

  /** Number of PUBLISH packets not yet acknowledged. */
  get size(): number {
    return this.queue.length;
  }
}

export type { PendingAck };
