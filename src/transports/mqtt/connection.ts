/**
 * One MQTT connection: a state machine fed packets parsed by mqtt-packet from any Duplex stream
 * (a TCP socket, or an in-memory pair in tests), writing packets back with mqtt-packet's generator.
 * States: awaiting-connect -> connecting -> provision | device -> closed.
 */
import mqtt, { type Packet } from 'mqtt-packet';
import type { Duplex } from 'node:stream';
import type { Core, CoreLogger } from '../../core/core-types.ts';
import { OrderedAcks } from './acks.ts';
import { handleConnect } from './connect.ts';
import type { DeviceSession } from './device-session.ts';
import { dispatchPacket } from './dispatch.ts';
import { decodePublish, MqttFramer, type FrameSink } from './framer.ts';
import type { MqttLimits } from './limits.ts';
import { OutboundInflight } from './outbound.ts';
import type { ProvisionSession } from './provision-session.ts';
import type { ClientCertificate } from './tls.ts';
import { disconnectAfterConnack, RC } from './reason-codes.ts';

/** What every connection of one transport shares. */
export interface TransportContext {
  core: Core;
  logger: CoreLogger;
  limits: MqttLimits;
  /** Reports a connection ended by one of the transport's limits (metric `fleetgate_rejected_connections_total`). */
  onLimit?: (reason: 'CONNECT_TIMEOUT' | 'KEEP_ALIVE_TIMEOUT' | 'PACKET_TOO_LARGE' | 'QUEUE_BEFORE_CONNACK' | 'SLOW_CONSUMER') => void;
}

export type ConnectionState = 'awaiting-connect' | 'connecting' | 'provision' | 'device' | 'closed';

/** A connection's protocol engine. Create one per accepted stream; it owns the stream from then on. */
export class MqttConnection implements FrameSink {
  state: ConnectionState = 'awaiting-connect';
  /** 3 (3.1), 4 (3.1.1) or 5, known once CONNECT is parsed. */
  version: 3 | 4 | 5 = 4;
  provision: ProvisionSession | undefined;
  device: DeviceSession | undefined;
  /** v5 CONNECT Maximum Packet Size: larger outbound packets are dropped ([MQTT-3.1.2-25]). */
  clientMaxPacketSize: number | undefined;
  /** v5 inbound topic aliases. */
  readonly topicAliases = new Map<number, string>();
  readonly acks: OrderedAcks;
  /** Called once when the connection has closed. */
  onClose: (() => void) | undefined;
  /** TLS connections: the client certificate (spec §8.1 step 1); undefined on plain TCP. */
  clientCertificate: ClientCertificate | undefined;
  /** Set at accept when an admission limit refuses the connection; CONNECT is then answered with the refusal. */
  refusal: 'max-connections' | 'connect-rate' | undefined;

  private readonly parser = mqtt.parser();
  private readonly framer: MqttFramer;
  private readonly queued: Packet[] = [];
  private readonly outbound: OutboundInflight;
  private timer: NodeJS.Timeout | undefined;
  private work = 0;
  private paused = false;
  private corked = false;
  private connackSent = false;

  constructor(
    readonly stream: Duplex,
    readonly ctx: TransportContext,
    readonly address?: string,
  ) {
    this.acks = new OrderedAcks(() => this.version, (bytes) => this.write(bytes), () => this.clientMaxPacketSize);
    this.framer = new MqttFramer(this, ctx.limits.maxPacketSize);
    this.outbound = new OutboundInflight(ctx.limits.maxOutboundInflight);
    this.parser.on('packet', (packet: Packet) => this.onPacket(packet));
    this.parser.on('error', (err: Error) => this.onMalformed(err.message));
    stream.on('data', (chunk: Buffer) => this.onData(chunk));
    stream.on('error', () => this.destroy());
    stream.on('close', () => this.destroy());
    stream.on('end', () => this.destroy());
    this.timer = setTimeout(() => this.onIdle(), ctx.limits.connectTimeoutMs);
    this.timer.unref?.();
  }

  get closed(): boolean {
    return this.state === 'closed';
  }

  private onData(chunk: Buffer): void {
    if (this.closed) return;
    this.timer?.refresh();
    try {
      this.framer.push(chunk);
    } catch (err) {
      this.internalError(err); // a handler bug must cost one connection, never the process
    }
  }

  /** One whole packet from the framer. A 3.x PUBLISH is decoded in place (the hot path); the rest goes to mqtt-packet. */
  onFrame(frame: Buffer): void {
    if (frame[0] >> 4 === 3 && this.version !== 5 && this.state !== 'awaiting-connect') {
      const packet = decodePublish(frame);
      if (typeof packet === 'string') this.onMalformed(packet);
      else this.onPacket(packet);
      return;
    }
    this.parser.parse(frame);
  }

  onTooLarge(): void {
    this.ctx.onLimit?.('PACKET_TOO_LARGE');
    this.fail(RC.PACKET_TOO_LARGE, 'packet too large');
  }

  /** A packet mqtt-packet or the framer could not decode. */
  onMalformed(why: string): void {
    if (this.closed) return;
    if (this.state === 'awaiting-connect' && /protocol version/i.test(why)) {
      this.send({ cmd: 'connack', returnCode: 1, sessionPresent: false }); // [MQTT-3.1.2-2]
      this.end();
      return;
    }
    this.fail(RC.MALFORMED_PACKET, `malformed packet: ${why}`);
  }

  private onPacket(packet: Packet): void {
    if (this.closed) return;
    if (this.state === 'awaiting-connect') {
      if (packet.cmd !== 'connect') {
        this.end(); // [MQTT-3.1.0-1] the first packet must be CONNECT
        return;
      }
      this.state = 'connecting';
      handleConnect(this, packet).catch((err) => this.internalError(err));
      return;
    }
    if (packet.cmd === 'connect') {
      this.fail(RC.PROTOCOL_ERROR, 'second CONNECT'); // [MQTT-3.1.0-2]
      return;
    }
    if (this.state === 'connecting') {
      // spec §8.1: packets sent before CONNACK are queued, at most 100.
      if (this.queued.length >= this.ctx.limits.maxQueuedBeforeConnack) {
        this.ctx.onLimit?.('QUEUE_BEFORE_CONNACK');
        this.fail(RC.QUOTA_EXCEEDED, 'too many packets before CONNACK');
      }
      else this.queued.push(packet);
      return;
    }
    dispatchPacket(this, packet);
  }

  /** The client's PUBACK for a QoS 1 message this server sent. */
  acknowledged(messageId: number): void {
    this.outbound.acknowledge(messageId);
  }

  /** Completes CONNECT: sends CONNACK and starts serving the packets that arrived meanwhile. */
  accept(state: 'provision' | 'device', connack: Packet): void {
    if (this.closed) return;
    this.send(connack);
    this.connackSent = true;
    this.state = state;
    while (this.queued.length > 0 && !this.closed) dispatchPacket(this, this.queued.shift()!);
  }

  /** Refuses CONNECT with a return/reason code; v5 also sends DISCONNECT where the code allows (spec §8.1). */
  refuse(code: number): void {
    if (this.closed) return;
    this.send(this.version === 5 ? { cmd: 'connack', reasonCode: code, sessionPresent: false } : { cmd: 'connack', returnCode: code, sessionPresent: false });
    const disconnect = this.version === 5 ? disconnectAfterConnack(code) : undefined;
    if (disconnect !== undefined) this.send({ cmd: 'disconnect', reasonCode: disconnect });
    this.end();
  }

  /** Starts the keepalive watchdog: 1.5 x keepalive of silence closes the connection ([MQTT-3.1.2-24]). */
  setKeepalive(seconds: number): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    if (seconds > 0) {
      this.timer = setTimeout(() => this.onIdle(), seconds * 1500);
      this.timer.unref?.();
    }
  }

  private onIdle(): void {
    this.ctx.onLimit?.(this.connackSent ? 'KEEP_ALIVE_TIMEOUT' : 'CONNECT_TIMEOUT');
    if (this.connackSent) this.fail(RC.KEEP_ALIVE_TIMEOUT, 'keepalive timeout');
    else this.end();
  }

  /** Writes one packet. */
  send(packet: Packet): void {
    if (this.closed || this.stream.destroyed) return;
    this.acks.flushReady();
    const bytes = mqtt.generate(packet, { protocolVersion: this.version });
    if (this.clientMaxPacketSize !== undefined && bytes.length > this.clientMaxPacketSize) return; // [MQTT-3.1.2-25]
    this.write(bytes);
  }

  /** Writes encoded packets; cork/uncork batches the writes of one event-loop turn into one syscall. */
  private write(bytes: Buffer): void {
    if (this.closed || this.stream.destroyed) return;
    if (!this.corked) {
      this.corked = true;
      this.stream.cork();
      process.nextTick(() => {
        this.corked = false;
        this.stream.uncork();
      });
    }
    this.stream.write(bytes);
    if (this.stream.writableLength > this.ctx.limits.maxWriteBuffer) {
      this.ctx.logger.warn({ address: this.address }, 'mqtt: slow consumer disconnected');
      this.ctx.onLimit?.('SLOW_CONSUMER');
      this.destroy();
    }
  }

  /** Publishes to the client. QoS 1 resolves on the client's PUBACK; QoS 0 once written. */
  publish(topic: string, payload: Buffer | string, qos: 0 | 1): Promise<void> {
    if (this.closed) return Promise.reject(new Error('connection closed'));
    if (qos === 0) {
      this.send({ cmd: 'publish', topic, payload, qos: 0, retain: false, dup: false });
      return Promise.resolve();
    }
    const inflight = this.outbound.begin();
    if (!inflight) return Promise.reject(new Error('too many unacknowledged messages'));
    this.send({ cmd: 'publish', topic, payload, qos: 1, messageId: inflight.messageId, retain: false, dup: false });
    return inflight.acked;
  }

  /** Counts a PUBLISH being worked on; reading pauses while too many are unfinished (bounded memory). */
  beginWork(): void {
    if (++this.work >= this.ctx.limits.maxInflight && !this.paused) {
      this.paused = true;
      this.stream.pause();
    }
  }

  endWork(): void {
    if (--this.work <= this.ctx.limits.maxInflight / 2 && this.paused && !this.closed) {
      this.paused = false;
      this.stream.resume();
    }
  }

  /** Closes after a protocol-level failure: v5 gets DISCONNECT with `reasonCode` once connected. */
  fail(reasonCode: number, why: string): void {
    if (this.closed) return;
    this.ctx.logger.info({ event: 'disconnect', transport: 'mqtt', address: this.address, deviceId: this.device?.identity.deviceId, reasonCode }, `mqtt: closing connection: ${why}`);
    this.end(reasonCode);
  }

  private internalError(err: unknown): void {
    this.ctx.logger.error({ err, address: this.address }, 'mqtt: internal error');
    this.end(RC.IMPLEMENTATION_SPECIFIC_ERROR);
  }

  /** Ends the connection gracefully (flushing writes); v5 DISCONNECT first when a reason is given. */
  end(reasonCode?: number): void {
    if (this.closed) return;
    this.acks.flushReady();
    if (reasonCode !== undefined && this.version === 5 && this.connackSent) this.send({ cmd: 'disconnect', reasonCode });
    this.cleanup();
    this.stream.end();
    const hard = setTimeout(() => this.stream.destroy(), this.ctx.limits.disconnectTimeoutMs);
    hard.unref?.();
    this.stream.once('close', () => clearTimeout(hard));
  }

  /** Drops the connection at once. */
  destroy(): void {
    if (!this.closed) this.cleanup();
    if (!this.stream.destroyed) this.stream.destroy();
  }

  private cleanup(): void {
    this.state = 'closed';
    clearTimeout(this.timer);
    this.queued.length = 0;
    this.outbound.abandon();
    this.provision?.close();
    this.device?.close();
    this.onClose?.();
  }
}
