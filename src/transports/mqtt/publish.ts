/**
 * Inbound PUBLISH: resolves v5 topic aliases, enforces the QoS the server offers, and hands the message
 * to the session (provisioning, spec §5.2; device topics, spec §8.2). Also the shared helpers that
 * acknowledge a PUBLISH once its work is done.
 */
import type { IPublishPacket } from 'mqtt-packet';
import type { CommitListener } from '../../core/api.ts';
import type { PendingAck } from './acks.ts';
import type { MqttConnection } from './connection.ts';
import { sameAscii } from './framer.ts';
import { handleProvisionPublish } from './provision-session.ts';
import { ackReason, classify, RC } from './reason-codes.ts';
import { handleDevicePublish } from './routes.ts';

/**
 * A 3.x PUBLISH in a device session to `topic`, the connection's last topic and a telemetry topic (routeOf), handled
 * from its frame, bytes [start, end) of `buf`: what decodePublish, handlePublish and handleDevicePublish do for it,
 * without the packet object or a view of the payload (issue 17: the MQTT telemetry hot path). Answers false, having
 * done nothing, for any other frame (a malformed one, another topic) or a core without ingestJsonTo: the general path
 * then takes it.
 */
export function handleTelemetryFrame(conn: MqttConnection, buf: Buffer, start: number, end: number, topic: string): boolean {
  const telemetry = conn.ctx.core.telemetry;
  if (!telemetry.ingestJsonTo) return false;
  const qos = (buf[start] >> 1) & 3;
  if (qos === 3) return false; // malformed: decodePublish says so
  let pos = start + 2;
  while (buf[pos - 1] & 0x80) pos++;
  if (pos + 2 > end) return false;
  const topicEnd = pos + 2 + ((buf[pos] << 8) | buf[pos + 1]);
  if (topicEnd > end || !sameAscii(buf, pos + 2, topicEnd, topic)) return false;
  pos = topicEnd;
  let messageId: number | undefined;
  if (qos > 0) {
    if (pos + 2 > end) return false;
    messageId = (buf[pos] << 8) | buf[pos + 1];
    pos += 2;
  }
  // spec §5.2: on 3.x a QoS 2 PUBLISH is answered with PUBACK, as handlePublish does.
  telemetry.ingestJsonTo(conn.device!.identity, buf, ackWhenCommitted(conn, qos, messageId), pos, end);
  return true;
}

/** Handles a PUBLISH from the client. */
export function handlePublish(conn: MqttConnection, packet: IPublishPacket): void {
  const topic = resolveTopic(conn, packet);
  if (topic === undefined) return;
  if (packet.qos === 2 && conn.version === 5) {
    conn.fail(RC.QOS_NOT_SUPPORTED, 'QoS 2 publish'); // [MQTT-3.2.2-11]: CONNACK said Maximum QoS 1
    return;
  }
  // spec §5.2: on 3.x a QoS 2 PUBLISH is answered with PUBACK, never PUBREC.
  const payload = typeof packet.payload === 'string' ? Buffer.from(packet.payload) : packet.payload;
  if (conn.provision) handleProvisionPublish(conn, topic, packet, payload);
  else handleDevicePublish(conn, topic, packet, payload);
}

/** The topic of a PUBLISH after v5 topic-alias resolution; undefined when the connection was closed. */
function resolveTopic(conn: MqttConnection, packet: IPublishPacket): string | undefined {
  const alias = packet.properties?.topicAlias;
  if (alias === undefined) {
    if (packet.topic === '') conn.fail(RC.PROTOCOL_ERROR, 'empty topic without alias');
    return packet.topic === '' ? undefined : packet.topic;
  }
  if (alias === 0 || alias > conn.ctx.limits.topicAliasMaximum) {
    conn.fail(RC.TOPIC_ALIAS_INVALID, 'topic alias out of range'); // [MQTT-3.3.2-9], [MQTT-3.3.2-10]
    return undefined;
  }
  if (packet.topic !== '') {
    conn.topicAliases.set(alias, packet.topic);
    return packet.topic;
  }
  const topic = conn.topicAliases.get(alias);
  if (topic === undefined) conn.fail(RC.PROTOCOL_ERROR, 'unknown topic alias');
  return topic;
}

/**
 * Runs the work of a PUBLISH and acknowledges it when the work resolves (PUBACK only after commit).
 * A failure is acknowledged with its v5 reason code; on 3.x the connection closes without an ack, so the
 * device resends (spec §8.2: invalid JSON closes a 3.x connection, v5 gets PUBACK 0x99).
 */
export function ackWhenDone(conn: MqttConnection, packet: IPublishPacket, work: () => Promise<unknown>): void {
  const ack = packet.qos > 0 ? conn.acks.enqueue(packet.messageId!) : undefined;
  conn.beginWork();
  let promise: Promise<unknown>;
  try {
    promise = work();
  } catch (err) {
    promise = Promise.reject(err);
  }
  promise.then(
    () => workDone(conn, ack),
    (err: unknown) => workFailed(conn, ack, err),
  );
}

/**
 * ackWhenDone for work that tells a CommitListener (core.telemetry.ingestJsonTo): reserves the ack slot and returns
 * the listener to hand to the work — one small object a PUBLISH, which is also its slot in the ack queue, in place of
 * a promise, its resolvers and the reaction closures (issue 17: less garbage per message).
 */
export function ackWhenCommitted(conn: MqttConnection, qos: number, messageId: number | undefined): CommitListener {
  const ack = new PublishAck(conn, qos > 0 ? messageId! : NO_ACK);
  if (qos > 0) conn.acks.add(ack);
  conn.beginWork();
  return ack;
}

/** PublishAck's messageId for a QoS 0 PUBLISH: nothing to acknowledge (MQTT ids are 0-65535). */
const NO_ACK = -1;

/** A telemetry PUBLISH's listener and, for QoS 1 and 2, its slot in the connection's ack queue. */
class PublishAck implements CommitListener, PendingAck {
  reason: number | undefined = undefined;
  reasonString?: Buffer;

  constructor(
    private readonly conn: MqttConnection,
    readonly messageId: number,
  ) {}

  committed(): void {
    workDone(this.conn, this.messageId === NO_ACK ? undefined : this);
  }

  failed(err: unknown): void {
    workFailed(this.conn, this.messageId === NO_ACK ? undefined : this, err);
  }
}

function workDone(conn: MqttConnection, ack: PendingAck | undefined): void {
  conn.endWork();
  if (ack) conn.acks.complete(ack, RC.SUCCESS);
}

function workFailed(conn: MqttConnection, ack: PendingAck | undefined, err: unknown): void {
  conn.endWork();
  const error = classify(err);
  if (error.code === 'INTERNAL') conn.ctx.logger.error({ err, address: conn.address }, 'mqtt: publish failed');
  if (conn.version === 5) {
    if (ack) conn.acks.complete(ack, ackReason(error));
  } else {
    conn.fail(RC.UNSPECIFIED_ERROR, `publish rejected: ${error.code}`);
  }
}

/** Acknowledges a PUBLISH at once with `reason` (v5; plain PUBACK on 3.x). */
export function ackNow(conn: MqttConnection, packet: IPublishPacket, reason: number): void {
  if (packet.qos > 0) conn.acks.complete(conn.acks.enqueue(packet.messageId!), reason);
}
