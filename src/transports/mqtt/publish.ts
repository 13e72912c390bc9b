/**
 * Inbound PUBLISH: resolves v5 topic aliases, enforces the QoS the server offers, and hands the message
 * to the session (provisioning, spec §5.2; device topics, spec §8.2). Also the shared helpers that
 * acknowledge a PUBLISH once its work is done.
 */
import type { IPublishPacket } from 'mqtt-packet';
import type { CommitListener } from '../../core/api.ts';
import type { PendingAck } from './acks.ts';
import type { MqttConnection } from './connection.ts';
import { handleProvisionPublish } from './provision-session.ts';
import { ackReason, classify, RC } from './reason-codes.ts';
import { handleDevicePublish } from './routes.ts';

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
 * the listener to hand to the work — one small object a PUBLISH, in place of the promise, its resolvers and the
 * reaction closures (issue 17: less garbage per message).
 */
export function ackWhenCommitted(conn: MqttConnection, packet: IPublishPacket): CommitListener {
  const ack = packet.qos > 0 ? conn.acks.enqueue(packet.messageId!) : undefined;
  conn.beginWork();
  return new PublishAck(conn, ack);
}

class PublishAck implements CommitListener {
  constructor(
    private readonly conn: MqttConnection,
    private readonly ack: PendingAck | undefined,
  ) {}

  committed(): void {
    workDone(this.conn, this.ack);
  }

  failed(err: unknown): void {
    workFailed(this.conn, this.ack, err);
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
