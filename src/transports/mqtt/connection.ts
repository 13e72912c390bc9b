/**
 * One MQTT connection: a state machine fed packets parsed by mqtt-packet from any Duplex stream
 * (a TCP socket, or an in-memory pair in tests); its write side is MqttOutput (output.ts).
 * States: awaiting-connect -> connecting -> provision | device -> closed.
 */
import type { Packet } from 'mqtt-packet';
import type { Duplex } from 'node:stream';
import type { Core, CoreLogger } from '../../core/core-types.ts';
import { handleConnect } from './connect.ts';
import { decodePacket } from './decode.ts';
import type { DeviceSession } from './device-session.ts';
import { dispatchPacket } from './dispatch.ts';
import { decodePublish, MqttFramer, TOPIC_NOT_UTF8, type FrameSink } from './framer.ts';
import type { MqttLimits } from './limits.ts';
import { keepAliveWheel, type Watched } from './keep-alive.ts';
import { MqttOutput } from './output.ts';
import type { ProvisionSession } from './provision-session.ts';
import type { ClientCertificate } from './tls.ts';
import { disconnectAfterConnack, RC } from './reason-codes.ts';
import { handleTelemetryFrame } from './publish.ts';
import { routeOf } from './topics.ts';
import { topicsWellFormed } from './utf8.ts';

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
export class MqttConnection extends MqttOutput implements FrameSink, Watched {
  state: ConnectionState = 'awaiting-connect';
  /** The CONNECT set the bridge bit of its protocol level (mqtt-packet then reads SUBSCRIBE options differently). */
  bridgeMode = false;
  provision: ProvisionSession | undefined = undefined;
  device: DeviceSession | undefined = undefined;
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
  /** The topic of the last 3.x PUBLISH, reused by the next one with the same bytes (decodePublish). */
  private lastTopic: string | undefined = undefined;
  /** lastTopic is a device telemetry topic: a PUBLISH to it may take handleTelemetryFrame. */
  private lastTopicTelemetry = false;
  private queued: Packet[] | undefined = undefined;
  private work = 0;
  private paused = false;
  private connackSent = false;

  constructor(
    stream: Duplex,
    ctx: TransportContext,
    readonly address?: string,
  ) {
    super(stream, ctx);
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
  onFrame(buf: Buffer, start: number, end: number): void {
    if (buf[start] >> 4 === 3 && this.version !== 5 && this.state !== 'awaiting-connect') {
      if (this.lastTopicTelemetry && this.state === 'device' && handleTelemetryFrame(this, buf, start, end, this.lastTopic!)) return;
      const packet = decodePublish(buf, this.lastTopic, start, end);
      if (typeof packet === 'string') this.onMalformed(packet);
      else {
        if (packet.topic !== this.lastTopic) {
          // Only a topic of a usual length is kept for the next PUBLISH (a hostile one may be ~64 KB).
          this.lastTopic = packet.topic.length <= 128 ? packet.topic : undefined;
          this.lastTopicTelemetry = this.lastTopic !== undefined && routeOf(this.lastTopic).kind === 'telemetry';
        }
        this.onPacket(packet);
      }
      return;
    }
    if (!topicsWellFormed(buf, start, end, this.version)) {
      this.onMalformed(TOPIC_NOT_UTF8);
      return;
    }
    const packet = decodePacket(buf.subarray(start, end), this.version, this.bridgeMode);
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
      handleConnect(this, packet)?.catch((err) => this.internalError(err)); // a promise only when a lookup is needed
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

  /** The connection was silent past its limit, or (once closed) its client did not close within the disconnect timeout. */
  onSilence(): void {
    if (this.closed) {
      this.stream.destroy();
      return;
    }
    try {
      this.ctx.onLimit?.(this.connackSent ? 'KEEP_ALIVE_TIMEOUT' : 'CONNECT_TIMEOUT');
      if (this.connackSent) this.fail(RC.KEEP_ALIVE_TIMEOUT, 'keepalive timeout');
      else this.end();
    } catch (err) {
      this.internalError(err);
    }
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
    if (this.provision) this.flushOutput(); // what holdsOutput kept, with the answer
  }

  /**
   * A provision session holds what it writes while its request is being worked on (the SUBACK of a SUBSCRIBE that came
   * with the request), so the SUBACK, the request's PUBACK and the answer leave in one write, in that order.
   */
  holdsOutput(): boolean {
    return this.work > 0 && this.provision !== undefined && !this.closed;
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
    this.flushOutput();
    if (this.closed) return; // the flush found a slow consumer and dropped the connection
    this.cleanup();
    this.stream.end();
    // A client that does not close its side is dropped after the disconnect timeout (onSilence), unless it closes first.
    if (!this.stream.destroyed) keepAliveWheel.watch(this, this.ctx.limits.disconnectTimeoutMs);
  }

  /**
   * The client's DISCONNECT ([MQTT-3.14.4-1]; TB: "DISCONNECT -> close", spec §5.2): the socket is closed at once once
   * what was written has left, with no half-close waiting for the client's FIN.
   */
  clientDisconnected(): void {
    if (this.closed) return;
    this.ackQueue?.flushReady();
    this.flushOutput();
    if (this.closed) return; // the flush found a slow consumer and dropped the connection
    if (this.stream.writableLength > 0) this.end(); // bytes still queued: let them out before the FIN
    else this.destroy();
  }

  /** Drops the connection at once. */
  destroy(): void {
    if (!this.closed) this.cleanup();
    keepAliveWheel.unwatch(this);
    if (!this.stream.destroyed) this.stream.destroy();
  }

  private cleanup(): void {
    this.state = 'closed';
    keepAliveWheel.unwatch(this);
    this.queued = undefined;
    this.dropOutput();
    this.provision?.close();
    this.device?.close();
    this.onClose?.();
  }
}
