/**
 * The write side of an MQTT connection: packets encoded (encode.ts for the 3.x packets every session sends, mqtt-packet
 * for the rest), the writes of one event-loop turn handed to the stream together, server-to-client QoS 1 bookkeeping,
 * and the slow-consumer limit. MqttConnection (connection.ts) extends it with the protocol state machine.
 */
import mqtt, { type Packet } from 'mqtt-packet';
import type { Duplex } from 'node:stream';
import { OrderedAcks, type AckSink } from './acks.ts';
import type { TransportContext } from './connection.ts';
import { encodeFast } from './encode.ts';
import { OutboundInflight } from './outbound.ts';

function flushLater(output: MqttOutput): void {
  if (!output.holdsOutput()) output.flushOutput();
}

/** Several small buffers are copied into one and written with one write(2), not a writev (less work per call). */
const CONCAT_BELOW = 16 * 1024;

function totalLength(buffers: Buffer[]): number {
  let n = 0;
  for (let i = 0; i < buffers.length; i++) n += buffers[i].length;
  return n;
}

/** Encodes, batches and writes what a connection sends to its client. */
export abstract class MqttOutput implements AckSink {
  /** 3 (3.1), 4 (3.1.1) or 5, known once CONNECT is parsed. */
  version: 3 | 4 | 5 = 4;
  /** v5 CONNECT Maximum Packet Size: larger outbound packets are dropped ([MQTT-3.1.2-25]). */
  clientMaxPacketSize: number | undefined = undefined;

  protected ackQueue: OrderedAcks | undefined = undefined;
  private outbound: OutboundInflight | undefined = undefined;
  /** What this event-loop turn wrote and the stream has not been given yet: one buffer, or several in order. */
  private pending: Buffer | Buffer[] | undefined = undefined;

  constructor(
    readonly stream: Duplex,
    readonly ctx: TransportContext,
  ) {}

  /** The connection has closed: nothing more is sent. */
  abstract get closed(): boolean;
  /** Drops the connection at once. */
  abstract destroy(): void;
  /**
   * Whether the writes of this turn wait for a later one (a provisioning answer that is on its way: connection.ts);
   * whoever ends the hold calls flushOutput. Ending the connection flushes regardless.
   */
  abstract holdsOutput(): boolean;
  /** The client's address, for logs. */
  abstract readonly address?: string;

  /** PUBACKs in arrival order (made on the first QoS 1 PUBLISH). */
  get acks(): OrderedAcks {
    return (this.ackQueue ??= new OrderedAcks(this));
  }

  /** Writes one packet (after any PUBACK that is ready, so the client sees the order in which work finished). */
  send(packet: Packet): void {
    if (this.closed || this.stream.destroyed) return;
    this.ackQueue?.flushReady();
    const bytes = (this.version !== 5 ? encodeFast(packet) : undefined) ?? mqtt.generate(packet, { protocolVersion: this.version });
    if (this.clientMaxPacketSize !== undefined && bytes.length > this.clientMaxPacketSize) return; // [MQTT-3.1.2-25]
    this.write(bytes);
  }

  /** Writes encoded packets: what one event-loop turn writes reaches the stream together (one syscall) at its end. */
  write(bytes: Buffer): void {
    if (this.closed || this.stream.destroyed) return;
    const pending = this.pending;
    if (pending === undefined) {
      this.pending = bytes;
      process.nextTick(flushLater, this);
    } else if (Array.isArray(pending)) pending.push(bytes);
    else this.pending = [pending, bytes];
  }

  /** Hands this turn's writes to the stream (at the end of the turn, and before the stream is ended). */
  flushOutput(): void {
    const pending = this.pending;
    if (pending === undefined) return;
    this.pending = undefined;
    const stream = this.stream;
    if (stream.destroyed) return;
    if (!Array.isArray(pending)) stream.write(pending);
    else if (totalLength(pending) < CONCAT_BELOW) stream.write(Buffer.concat(pending));
    else {
      stream.cork(); // several buffers: one writev, no copy
      for (let i = 0; i < pending.length; i++) stream.write(pending[i]);
      stream.uncork();
    }
    if (stream.writableLength > this.ctx.limits.maxWriteBuffer) {
      this.ctx.logger.warn({ address: this.address }, 'mqtt: slow consumer disconnected');
      this.ctx.onLimit?.('SLOW_CONSUMER');
      this.destroy();
    }
  }

  /** Forgets what has not been handed to the stream yet, and fails every wait for a client's PUBACK. */
  protected dropOutput(): void {
    this.pending = undefined;
    this.outbound?.abandon();
  }

  /** Publishes to the client. QoS 1 resolves on the client's PUBACK; QoS 0 once written. */
  publish(topic: string, payload: Buffer | string, qos: 0 | 1): Promise<void> {
    if (this.closed) return Promise.reject(new Error('connection closed'));
    if (qos === 0) {
      this.send({ cmd: 'publish', topic, payload, qos: 0, retain: false, dup: false });
      return Promise.resolve();
    }
    const inflight = (this.outbound ??= new OutboundInflight(this.ctx.limits.maxOutboundInflight)).begin();
    if (!inflight) return Promise.reject(new Error('too many unacknowledged messages'));
    this.send({ cmd: 'publish', topic, payload, qos: 1, messageId: inflight.messageId, retain: false, dup: false });
    return inflight.acked;
  }

  /**
   * Publishes to the client when nobody waits for its PUBACK (a provisioning answer, an attribute update): no promise.
   * Dropped, as a failed `publish` would be, when the connection has closed or too many messages are unacknowledged.
   */
  publishAndForget(topic: string, payload: Buffer | string, qos: 0 | 1): void {
    if (this.closed) return;
    const messageId = qos === 0 ? undefined : (this.outbound ??= new OutboundInflight(this.ctx.limits.maxOutboundInflight)).track();
    if (qos === 1 && messageId === undefined) return;
    this.send({ cmd: 'publish', topic, payload, qos, messageId, retain: false, dup: false });
  }

  /** The client's PUBACK for a QoS 1 message this server sent. */
  acknowledged(messageId: number): void {
    this.outbound?.acknowledge(messageId);
  }
}
