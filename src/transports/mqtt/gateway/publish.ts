/**
 * PUBLISH on `v1/gateway/*` (gateway spec §2): each topic is one call on core's gateway session, and the PUBACK
 * follows that call (after the group commit for data). A refusal carries its reason: MQTT 5 gets the PUBACK reason
 * code with a Reason String saying what was wrong, and the connection stays open; MQTT 3.1.1, whose PUBACK has no code,
 * is closed without the PUBACK (as ThingsBoard closes it), so nothing refused is ever acknowledged.
 */
import type { IPublishPacket } from 'mqtt-packet';
import type { FleetgateError } from '../../../core/errors.ts';
import { SubDeviceRateLimited } from '../../../core/gateway/gateway-session.ts';
import type { MqttConnection } from '../connection.ts';
import { ackReason, classify, RC } from '../reason-codes.ts';
import { gatewayRouteOf } from './topics.ts';

/** A v3 gateway over a sub-device's message rate waits for it at most this many times before it is disconnected. */
const V3_RATE_RETRIES = 3;

/** Handles a PUBLISH whose topic starts with `v1/gateway`. */
export function handleGatewayPublish(conn: MqttConnection, topic: string, packet: IPublishPacket, payload: Buffer): void {
  const gateway = conn.device!.gateway;
  if (!gateway) {
    // spec §1.6: TB drops it without PUBACK. MQTT 5 is told why; MQTT 3.1.1 stays as ThingsBoard (no PUBACK, kept).
    conn.ctx.logger.info({ event: 'gateway_refused', deviceId: conn.device!.identity.deviceId, topic }, 'mqtt: gateway topic from a device that is not a gateway');
    if (conn.version === 5) refuseNow(conn, packet, RC.NOT_AUTHORIZED, 'Device is not a gateway: set additionalInfo.gateway to true');
    return;
  }
  const core = gateway.core;
  gateway.ready();
  switch (gatewayRouteOf(topic)) {
    case 'connect':
      return ackGatewayWork(conn, packet, () => core.connect(payload));
    case 'disconnect':
      return ackGatewayWork(conn, packet, () => core.disconnect(payload));
    case 'telemetry':
      return ackGatewayWork(conn, packet, () => core.telemetry(payload));
    case 'attributes':
      return ackGatewayWork(conn, packet, () => core.attributes(payload));
    case 'attributes-request':
      return ackGatewayWork(conn, packet, async () => gateway.sendAttributeResponse(await core.attributeRequest(payload)));
    case 'rpc':
      return ackGatewayWork(conn, packet, () => core.rpcReply(payload));
    case 'claim':
      // Device claiming (customers) does not exist in fleetgate: answered as an unknown topic, with the reason.
      return refuseNow(conn, packet, RC.TOPIC_NAME_INVALID, 'v1/gateway/claim: device claiming is not supported');
    default:
      // spec §2.0: any other v1/gateway topic -> PUBACK 0x90, connection kept.
      return refuseNow(conn, packet, RC.TOPIC_NAME_INVALID, `Unknown gateway topic: ${topic}`);
  }
}

/** Acknowledges at once with a refusal (v5 reason code and string; a plain PUBACK on 3.x, as ThingsBoard). */
function refuseNow(conn: MqttConnection, packet: IPublishPacket, reason: number, why: string): void {
  if (packet.qos > 0) conn.acks.complete(conn.acks.enqueue(packet.messageId!), conn.version === 5 ? reason : RC.SUCCESS, why);
}

/** Runs `work`, then PUBACKs; a failure is answered as the module comment says. */
function ackGatewayWork(conn: MqttConnection, packet: IPublishPacket, work: () => Promise<unknown>): void {
  const ack = packet.qos > 0 ? conn.acks.enqueue(packet.messageId!) : undefined;
  conn.beginWork();
  const attempt = (retriesLeft: number): void => {
    let promise: Promise<unknown>;
    try {
      promise = work();
    } catch (err) {
      promise = Promise.reject(err);
    }
    promise.then(
      () => {
        conn.endWork();
        if (ack) conn.acks.complete(ack, RC.SUCCESS);
      },
      (err: unknown) => {
        const error = classify(err);
        if (conn.version !== 5 && error.code === 'RATE_LIMITED' && retriesLeft > 0 && !conn.closed) {
          // MQTT 3.1.1 cannot say "slow down" in a PUBACK: the message waits for the sub-device's rate instead of
          // costing the gateway its connection (ThingsBoard closes it), and later PUBACKs queue behind it.
          const wait = Math.min(10_000, (error.retryAfterSeconds ?? 1) * 1000);
          setTimeout(() => attempt(retriesLeft - 1), wait).unref?.();
          return;
        }
        conn.endWork();
        if (error.code === 'INTERNAL') conn.ctx.logger.error({ err, address: conn.address }, 'mqtt: gateway publish failed');
        else conn.ctx.logger.info({ event: 'gateway_refused', deviceId: conn.device?.identity.deviceId, reason: error.code, why: error.message }, 'mqtt: gateway message refused');
        if (conn.version === 5) {
          // spec §2.3: reason 150 (message rate too high) tells the SDK to slow down that device; ThingsBoard sends it
          // after closing the connection, so it never arrives. Here it comes first and the connection stays.
          if (err instanceof SubDeviceRateLimited) conn.publishAndForget('v1/gateway/disconnect', JSON.stringify({ device: err.device, reason: 150 }), 0);
          if (ack) conn.acks.complete(ack, ackReason(error), reasonText(error));
        } else conn.fail(RC.UNSPECIFIED_ERROR, `gateway publish refused: ${error.code}`);
      },
    );
  };
  attempt(V3_RATE_RETRIES);
}

function reasonText(error: FleetgateError): string {
  return error.code === 'INTERNAL' ? 'Internal server error' : error.message;
}
