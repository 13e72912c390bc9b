/**
 * Device-session PUBLISH routes (spec §8.2): each topic maps to one core call; the PUBACK follows the
 * call's promise (telemetry and attributes are acknowledged only once committed).
 */
import type { IPublishPacket } from 'mqtt-packet';
import { answerClientRpc as answerCoreClientRpc, parseClientRpc } from '../../core/client-rpc.ts';
import { FleetgateError } from '../../core/errors.ts';
import { renderRotationJson } from '../../core/provisioning/rotation.ts';
import type { MqttConnection } from './connection.ts';
import { handleGatewayPublish } from './gateway/publish.ts';
import { GATEWAY_TOPIC_PREFIX } from './gateway/topics.ts';
import { ackNow, ackWhenCommitted, ackWhenDone } from './publish.ts';
import { RC } from './reason-codes.ts';
import { outboundTopic, routeOf, type DeviceRoute, type TopicStyle } from './topics.ts';
import { handleOtaRequest } from './ota.ts';

/** Handles a PUBLISH in an authenticated device session. */
export function handleDevicePublish(conn: MqttConnection, topic: string, packet: IPublishPacket, payload: Buffer): void {
  const route = routeOf(topic);
  const telemetry = conn.ctx.core.telemetry;
  // Telemetry first, in a function without closures: V8 allocates the variables a closure captures on every call of
  // the function that declares them, taken branch or not (issue 17: garbage per message).
  if (route.kind === 'telemetry' && telemetry.ingestJsonTo) telemetry.ingestJsonTo(conn.device!.identity, payload, ackWhenCommitted(conn, packet.qos, packet.messageId));
  else handleDeviceRoute(conn, topic, route, packet, payload);
}

/** handleDevicePublish for every route but telemetry with ingestJsonTo. */
function handleDeviceRoute(conn: MqttConnection, topic: string, route: DeviceRoute, packet: IPublishPacket, payload: Buffer): void {
  const core = conn.ctx.core;
  const session = conn.device!;
  switch (route.kind) {
    case 'telemetry':
      return ackWhenDone(conn, packet, () => core.telemetry.ingestJson(session.identity, payload));
    case 'attributes':
      return ackWhenDone(conn, packet, () => core.telemetry.saveClientAttributesJson(session.identity, payload));
    case 'attributes-request':
      return ackWhenDone(conn, packet, () => answerAttributeRequest(conn, route.requestId, route.style, payload));
    case 'rpc-reply':
      return ackWhenDone(conn, packet, () => core.rpc.reply(session.identity.deviceId, route.requestId, payload.toString('utf8')));
    case 'rpc-request':
      return ackWhenDone(conn, packet, async () => answerClientRpc(conn, route.requestId, route.style, payload));
    case 'ota-chunk':
      return handleOtaRequest(conn, packet, route, payload);
    case 'credentials-rotate':
      return ackWhenDone(conn, packet, () => answerRotation(conn, payload));
    default:
      // gateway spec §1.6: everything under v1/gateway is the gateway API's.
      if (topic.startsWith(GATEWAY_TOPIC_PREFIX)) return handleGatewayPublish(conn, topic, packet, payload);
      // spec §8.2: unknown topic -> PUBACK 0x90 on v5 (plain PUBACK on 3.x), connection kept.
      // Claim topics have no core API yet and are treated as unknown.
      return ackNow(conn, packet, RC.TOPIC_NAME_INVALID);
  }
}

/**
 * README "Rotation and reprovisioning": the answer goes to `v1/devices/me/credentials/rotate/response` (QoS of the
 * subscription, else 1) after the new credentials are committed; the PUBACK follows.
 */
async function answerRotation(conn: MqttConnection, payload: Buffer): Promise<void> {
  const result = await conn.ctx.core.rotation.rotate(conn.device!.identity, { transport: 'mqtt', address: conn.address }, payload);
  const { qos } = conn.device!.delivery('credentials-rotate-response', 'v1');
  conn.publishAndForget(outboundTopic('credentials-rotate-response', 'v1'), renderRotationJson(result), qos);
}

function parseJsonObject(payload: Buffer, emptyIsObject: boolean): Record<string, unknown> {
  const text = payload.toString('utf8');
  if (emptyIsObject && text.trim() === '') return {};
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw new FleetgateError('MALFORMED_PAYLOAD', 'Payload is not valid JSON');
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value)) throw new FleetgateError('MALFORMED_PAYLOAD', 'Payload must be a JSON object');
  return value as Record<string, unknown>;
}

/** `"a, b"` -> `['a','b']`; absent -> undefined. */
function keyList(value: unknown): string[] | undefined {
  if (value === undefined || value === null) return undefined;
  if (typeof value !== 'string') throw new FleetgateError('INVALID_ARGUMENT', 'clientKeys and sharedKeys must be comma-separated strings');
  return value.split(',').map((k) => k.trim()).filter((k) => k !== '');
}

/**
 * spec §8.2 attribute request: `{"clientKeys":"a,b","sharedKeys":"c"}`; no keys at all -> all client and
 * shared attributes; keys of only one scope -> nothing from the other scope (ThingsBoard's behaviour).
 */
async function answerAttributeRequest(conn: MqttConnection, requestId: number, style: TopicStyle, payload: Buffer): Promise<void> {
  const body = parseJsonObject(payload, true);
  let clientKeys = keyList(body.clientKeys);
  let sharedKeys = keyList(body.sharedKeys);
  const noneGiven = !clientKeys?.length && !sharedKeys?.length;
  if (noneGiven) clientKeys = sharedKeys = undefined;
  else {
    clientKeys ??= [];
    sharedKeys ??= [];
  }
  const result = await conn.ctx.core.attributes.getForDevice(conn.device!.identity.deviceId, clientKeys, sharedKeys);
  const response: Record<string, unknown> = {};
  if (result.client && Object.keys(result.client).length > 0) response.client = result.client;
  if (result.shared && Object.keys(result.shared).length > 0) response.shared = result.shared;
  const { qos } = conn.device!.delivery('attributes-response', style);
  conn.publishAndForget(outboundTopic('attributes-response', style, requestId), JSON.stringify(response), qos);
}

/**
 * spec §8.2 client-side RPC, answered by core. Methods only a rule engine could answer (core: NOT_IMPLEMENTED) get
 * ThingsBoard's reply when no rule chain answers: `{"error":"timeout"}` after transport.client_side_rpc.timeout.
 */
function answerClientRpc(conn: MqttConnection, requestId: number, style: TopicStyle, payload: Buffer): void {
  const request = parseClientRpc(payload);
  const session = conn.device!;
  const limits = conn.ctx.limits;
  try {
    const reply = answerCoreClientRpc(request, { maxPayloadSize: limits.maxPacketSize, maxInflightMessages: limits.maxInflight, gateway: session.identity.gateway });
    session.replyToClientRpc(requestId, style, JSON.stringify(reply)).catch(() => {});
    return;
  } catch (err) {
    if (!(err instanceof FleetgateError && err.code === 'NOT_IMPLEMENTED')) throw err;
  }
  if (session.pendingTimers >= limits.maxInflight) throw new FleetgateError('RATE_LIMITED', 'Too many pending client-side RPC requests');
  session.later(limits.clientRpcTimeoutMs, () => {
    session.replyToClientRpc(requestId, style, JSON.stringify({ error: 'timeout' })).catch(() => {});
  });
}
