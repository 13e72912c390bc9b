/**
 * Provision-only sessions (spec §5.2): `/provision/request` -> core.provisioning.provision ->
 * `/provision/response`, JSON first with a sticky protobuf fallback; the session closes itself 60 s
 * after its first answer.
 */
import type { IPublishPacket } from 'mqtt-packet';
import type { ProvisionRequest, ProvisionResult } from '../../core/api.ts';
import { FleetgateError } from '../../core/errors.ts';
import { decodeProvisionRequestProto, encodeProvisionResponseProto } from '../../core/provisioning/protobuf.ts';
import { renderProvisionJson } from '../../core/provisioning/render.ts';
import { parseProvisionJson } from '../../core/provisioning/request.ts';
import type { PendingAck } from './acks.ts';
import type { MqttConnection } from './connection.ts';
import { ackNow } from './publish.ts';
import { ackReason, classify, RC } from './reason-codes.ts';
import { PROVISION_REQUEST_TOPIC, PROVISION_RESPONSE_TOPIC } from './topics.ts';

/** State of a provision-only session. */
export class ProvisionSession {
  /** spec §5.2: once a request was protobuf, every later answer on this session is protobuf. */
  protobuf = false;
  /** QoS granted for `/provision/response`; undefined while not subscribed (answers then go at QoS 1). */
  responseQos: 0 | 1 | undefined;
  private closeTimer: NodeJS.Timeout | undefined;

  constructor(private readonly conn: MqttConnection) {}

  /** spec §5.2: the server closes the connection 60 s after the first answer. */
  scheduleClose(): void {
    if (this.closeTimer) return;
    this.closeTimer = setTimeout(endSession, this.conn.ctx.limits.provisionSessionTtlMs, this.conn);
    this.closeTimer.unref?.();
  }

  close(): void {
    clearTimeout(this.closeTimer);
  }
}

/** Parses a request: JSON, else protobuf (spec §5.2 "Payload format detection"). */
function parseRequest(payload: Buffer): { request: ProvisionRequest; protobuf: boolean } {
  try {
    return { request: parseProvisionJson(payload.toString('utf8')), protobuf: false };
  } catch (err) {
    if (classify(err).code !== 'MALFORMED_PAYLOAD') throw err;
  }
  return { request: decodeProvisionRequestProto(payload), protobuf: true };
}

function endSession(conn: MqttConnection): void {
  conn.end();
}

/**
 * Calls `settle` once: with the outcome of `promise`, or with a TIMEOUT error after `ms` (spec §5.2: the core's answer
 * did not come in time). Plain callbacks: no promise race made per request.
 */
function settleWithin<T>(promise: Promise<T>, ms: number, settle: (err: unknown, result?: T) => void): void {
  let settled = false;
  const timer = setTimeout(() => {
    if (settled) return;
    settled = true;
    settle(new FleetgateError('TIMEOUT', 'Provisioning timed out'));
  }, ms);
  promise.then(
    (result) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      settle(undefined, result);
    },
    (err: unknown) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      settle(err ?? new Error('provisioning failed'));
    },
  );
}

/** Handles a PUBLISH in a provision session. */
export function handleProvisionPublish(conn: MqttConnection, topic: string, packet: IPublishPacket, payload: Buffer): void {
  const session = conn.provision!;
  if (topic !== PROVISION_REQUEST_TOPIC) {
    // spec §5.2: PUBACK 0x90 (v5) if QoS>=1, then DISCONNECT 0x90 (v5) and close.
    ackNow(conn, packet, RC.TOPIC_NAME_INVALID);
    conn.fail(RC.TOPIC_NAME_INVALID, 'provision session published to another topic');
    return;
  }
  let parsed: { request: ProvisionRequest; protobuf: boolean };
  try {
    parsed = parseRequest(payload);
  } catch (err) {
    rejectRequest(conn, packet, err);
    return;
  }
  if (parsed.protobuf) session.protobuf = true;
  const ack = packet.qos > 0 ? conn.acks.enqueue(packet.messageId!) : undefined;
  conn.beginWork();
  const source = { transport: 'mqtt' as const, address: conn.address };
  let provisioning: Promise<ProvisionResult>;
  try {
    provisioning = conn.ctx.core.provisioning.provision(parsed.request, source);
  } catch (err) {
    provisioning = Promise.reject(err);
  }
  settleWithin(provisioning, conn.ctx.limits.provisionTimeoutMs, (err, result) => {
    try {
      if (err === undefined) answer(conn, session, ack, result!);
      else {
        // spec §5.2: core timeout / internal error -> PUBACK 0x83 then close.
        if (classify(err).code === 'INTERNAL') conn.ctx.logger.error({ err, address: conn.address }, 'mqtt: provisioning failed');
        if (ack) conn.acks.complete(ack, ackReason(err));
        conn.fail(ackReason(err), 'provisioning failed');
      }
    } catch (failure) {
      // Thrown here it would be an unhandled rejection (this runs in a promise callback): the process would exit.
      answerFailed(conn, ack, failure);
    } finally {
      conn.endWork();
    }
  });
}

/** spec §5.2 order: PUBACK, then the response (published even without a subscription, QoS 1). */
function answer(conn: MqttConnection, session: ProvisionSession, ack: PendingAck | undefined, result: ProvisionResult): void {
  if (conn.closed) return;
  const body = session.protobuf ? encodeProvisionResponseProto(result) : renderProvisionJson(result);
  if (ack) conn.acks.complete(ack, RC.SUCCESS);
  conn.publishAndForget(PROVISION_RESPONSE_TOPIC, body, session.responseQos ?? 1);
  session.scheduleClose();
}

/**
 * The answer could not be rendered or sent: logged without the error's message (it may quote the credentials or the
 * request's secret); then, like any internal error (spec §5.2), PUBACK 0x83 unless it was sent, and the session ends.
 */
function answerFailed(conn: MqttConnection, ack: PendingAck | undefined, failure: unknown): void {
  const err = failure instanceof Error ? failure : new Error(typeof failure);
  conn.ctx.logger.error(
    { event: 'mqtt_provision_answer_failed', address: conn.address, error: err.name, stack: stackFrames(err) },
    'mqtt: the provisioning answer could not be sent; session closed',
  );
  if (conn.closed) return;
  if (ack && ack.reason === undefined) conn.acks.complete(ack, RC.IMPLEMENTATION_SPECIFIC_ERROR);
  conn.fail(RC.IMPLEMENTATION_SPECIFIC_ERROR, 'provisioning answer failed');
}

/** The frames of an error's stack without its message, which may span lines (a PEM, pretty JSON): `at` lines only. */
function stackFrames(err: Error): string | undefined {
  return err.stack
    ?.split('\n')
    .filter((line) => /^\s+at /.test(line))
    .join('\n');
}

/**
 * A request that could not be parsed (spec §5.2, §5.5): neither JSON nor protobuf -> v5 with a packet id
 * gets PUBACK 0x99 and the connection stays; otherwise (missing key, bad enum, or 3.x/QoS 0) -> v5 PUBACK
 * with the reason, DISCONNECT with the same reason, close.
 */
function rejectRequest(conn: MqttConnection, packet: IPublishPacket, err: unknown): void {
  const reason = ackReason(err);
  const malformed = classify(err).code === 'MALFORMED_PAYLOAD';
  if (conn.version === 5 && packet.qos > 0) {
    ackNow(conn, packet, reason);
    if (malformed) return;
  }
  conn.fail(reason, 'bad provisioning request');
}
