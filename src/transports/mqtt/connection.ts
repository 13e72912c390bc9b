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
import { decodePacket } from './decode.ts';
import type { DeviceSession } from './device-session.ts';
import { dispatchPacket } from './dispatch.ts';
import { decodePublish, MqttFramer, type FrameSink } from './framer.ts';
import type { MqttLimits } from './limits.ts';
import { keepAliveWheel, type Watched } from './keep-alive.ts';
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

/** The connection a stream belongs to, for the stream listeners below (shared functions, not closures per stream). */
const CONNECTION = Symbol('mqtt connection');
type OwnedStream = Duplex & { [CONNECTION]: MqttConnection };

function onStreamData(this: OwnedStream, chunk: Buffer): void {
  this[CONNECTION].onData(chunk);
}

function onStreamGone(this: OwnedStream): void {
  this[CONNECTION].destroy();
}

/**
 * A connection's protocol engine. Create one per accepted stream; it owns the stream from then on.
 * Memory per idle connection is kept small (issue 17: ≤ 4 KB with the socket): no closure or timer per connection,
 * the parser shared (decode.ts), and what only some connections need (ack queue, outbound in-flight ids, topic aliases,
 * the queue before CONNACK) made when first needed.
 */
export class MqttConnection implements FrameSink, Watched {
  state: ConnectionState = 'awaiting-connect';
  /** 3 (3.1), 4 (3.1.1) or 5, known once CONNECT is parsed. */
  version: 3 | 4 | 5 = 4;
  /** The CONNECT set the bridge bit of its protocol level (mqtt-packet then reads SUBSCRIBE options differently). */
  bridgeMode = false;
  provision: ProvisionSession | undefined = undefined;
  device: DeviceSession | undefined = undefined;
  /** v5 CONNECT Maximum Packet Size: larger outbound packets are dropped ([MQTT-3.1.2-25]). */
  clientMaxPacketSize: number | undefined = undefined;
  /** Called once when the connection has closed, with the connection as `this`. */
  onClose: ((this: MqttConnection) => void) | undefined = undefined;
  /** TLS connections: the client certificate (spec §8.1 step 1); undefined on plain TCP. */
  clientCertificate: ClientCertificate | undefined = undefined;
  /** Set at accept when an admission limit refuses the connection; CONNECT is then answered with the refusal. */
  refusal: 'max-connections' | 'connect-rate' | undefined = undefined;
  /** Watched by keepAliveWheel: its tick count when bytes last arrived, and the silence allowed in ticks. */
  lastActivity = 0;
  silenceLimitTicks = 0;

  private readonly framer: MqttFramer;
  private aliases: Map<number, string> | undefined = undefined;
  private ackQueue: OrderedAcks | undefined = undefined;
  private queued: Packet[] | undefined = undefined;
  private outbound: OutboundInflight | undefined = undefined;
  private work = 0;
  private paused = false;
  private corked = false;
  private connackSent = false;

  constructor(
    readonly stream: Duplex,
    readonly ctx: TransportContext,
    readonly address?: string,
  ) {
    this.framer = new MqttFramer(this, ctx.limits.maxPacketSize);
    (stream as OwnedStream)[CONNECTION] = this;
    stream.on('data', onStreamData);
    stream.on('error', onStreamGone);
    stream.on('close', onStreamGone);
    stream.on('end', onStreamGone);
    keepAliveWheel.watch(this, ctx.limits.connectTimeoutMs);
  }

  get closed(): boolean {
    return this.state === 'closed';
  }

  /** v5 inbound topic aliases (made on first use). */
  get topicAliases(): Map<number, string> {
    return (this.aliases ??= new Map());
  }

  /** PUBACKs in arrival order (made on the first QoS 1 PUBLISH). */
  get acks(): OrderedAcks {
    return (this.ackQueue ??= new OrderedAcks(this));
  }

  /** Bytes arrived from the client. */
  onData(chunk: Buffer): void {
    if (this.closed) return;
    this.lastActivity = keepAliveWheel.now;
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
    const packet = decodePacket(frame, this.version, this.bridgeMode);
    if (packet instanceof Error) this.onMalformed(packet.message);
    else this.onPacket(packet);
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
      const queued = (this.queued ??= []);
      if (queued.length >= this.ctx.limits.maxQueuedBeforeConnack) {
        this.ctx.onLimit?.('QUEUE_BEFORE_CONNACK');
        this.fail(RC.QUOTA_EXCEEDED, 'too many packets before CONNACK');
      }
      else queued.push(packet);
      return;
    }
    dispatchPacket(this, packet);
  }

  /** The client's PUBACK for a QoS 1 message this server sent. */
  acknowledged(messageId: number): void {
    this.outbound?.acknowledge(messageId);
  }

  /** Completes CONNECT: sends CONNACK and starts serving the packets that arrived meanwhile. */
  accept(state: 'provision' | 'device', connack: Packet): void {
    if (this.closed) return;
    this.send(connack);
    this.connackSent = true;
    this.state = state;
    const queued = this.queued;
    this.queued = undefined;
    if (queued) for (let i = 0; i < queued.length && !this.closed; i++) dispatchPacket(this, queued[i]);
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
    if (this.closed) return;
    if (seconds > 0) keepAliveWheel.watch(this, seconds * 1500);
    else keepAliveWheel.unwatch(this);
  }

  /** The connection was silent past its limit (keepAliveWheel). */
  onSilence(): void {
    if (this.closed) return;
    try {
      this.ctx.onLimit?.(this.connackSent ? 'KEEP_ALIVE_TIMEOUT' : 'CONNECT_TIMEOUT');
      if (this.connackSent) this.fail(RC.KEEP_ALIVE_TIMEOUT, 'keepalive timeout');
      else this.end();
    } catch (err) {
      this.internalError(err);
    }
  }

  /** Writes one packet. */
  send(packet: Packet): void {
    if (this.closed || this.stream.destroyed) return;
    this.ackQueue?.flushReady();
    const bytes = mqtt.generate(packet, { protocolVersion: this.version });
    if (this.clientMaxPacketSize !== undefined && bytes.length > this.clientMaxPacketSize) return; // [MQTT-3.1.2-25]
    this.write(bytes);
  }

  /** Writes encoded packets; cork/uncork batches the writes of one event-loop turn into one syscall. */
  write(bytes: Buffer): void {
    if (this.closed || this.stream.destroyed) return;
    if (!this.corked) {
      this.corked = true;
      this.stream.cork();
      process.nextTick(uncork, this);
    }
    this.stream.write(bytes);
    if (this.stream.writableLength > this.ctx.limits.maxWriteBuffer) {
      this.ctx.logger.warn({ address: this.address }, 'mqtt: slow consumer disconnected');
      this.ctx.onLimit?.('SLOW_CONSUMER');
      this.destroy();
    }
  }

  /** Ends the cork of one event-loop turn (see write). */
  uncorkNow(): void {
    this.corked = false;
    this.stream.uncork();
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
    this.ackQueue?.flushReady();
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
    keepAliveWheel.unwatch(this);
    this.queued = undefined;
    this.outbound?.abandon();
    this.provision?.close();
    this.device?.close();
    this.onClose?.();
  }
}

function uncork(conn: MqttConnection): void {
  conn.uncorkNow();
}
