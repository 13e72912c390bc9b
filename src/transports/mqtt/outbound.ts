/**
 * Server-to-client QoS 1 PUBLISH bookkeeping: packet ids in use and the waiters for the client's PUBACK
 * (MQTT 3.1.1 §4.3.2), bounded by the transport's outbound in-flight limit.
 */

interface Waiter {
  resolve: () => void;
  reject: (err: Error) => void;
}

/** The id of a message nobody waits for (see `track`): its PUBACK only frees the id. */
const NO_WAITER: Waiter = { resolve: () => {}, reject: () => {} };

/** The QoS 1 messages a connection has sent and the client has not acknowledged yet. */
export class OutboundInflight {
  private readonly waiting = new Map<number, Waiter>();
  private lastPacketId = 0;

  constructor(private readonly limit: number) {}

  /**
   * Takes a free packet id and returns it with a promise settled by the client's PUBACK (or the connection's end);
   * undefined when `limit` messages are already unacknowledged.
   */
  begin(): { messageId: number; acked: Promise<void> } | undefined {
    const messageId = this.track();
    if (messageId === undefined) return undefined;
    const acked = new Promise<void>((resolve, reject) => this.waiting.set(messageId, { resolve, reject }));
    return { messageId, acked };
  }

  /**
   * Takes a free packet id for a message whose PUBACK nobody waits for (a provisioning answer): no promise is made.
   * Undefined when `limit` messages are already unacknowledged.
   */
  track(): number | undefined {
    if (this.waiting.size >= this.limit) return undefined;
    do this.lastPacketId = (this.lastPacketId % 65535) + 1;
    while (this.waiting.has(this.lastPacketId));
    this.waiting.set(this.lastPacketId, NO_WAITER);
    return this.lastPacketId;
  }

  /** The client's PUBACK for `messageId`; an id not in flight is ignored. */
  acknowledge(messageId: number): void {
    const waiter = this.waiting.get(messageId);
    if (!waiter) return;
    this.waiting.delete(messageId);
    waiter.resolve();
  }

  /** The connection has ended: every waiter is rejected. */
  abandon(): void {
    if (this.waiting.size === 0) return; // the usual close: no Error (its stack trace) made for nobody
    const closedError = new Error('connection closed');
    for (const waiter of this.waiting.values()) waiter.reject(closedError);
    this.waiting.clear();
  }
}
