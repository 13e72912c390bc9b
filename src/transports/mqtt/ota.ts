/**
 * Firmware and software chunks over MQTT (spec thingsboard-ota §4.1): PUBLISH `v2/fw/request/{requestId}/chunk/{chunk}`
 * (`v2/sw/...`) with the chunk size as payload, answered on `v2/fw/response/{requestId}/chunk/{chunk}` after the
 * PUBACK; errors go to `v2/fw/error` (even for software, as ThingsBoard) and close the connection.
 */
import type { IPublishPacket } from 'mqtt-packet';
import type { OtaPackage, OtaType } from '../../core/ota/model.ts';
import { toFleetgateError } from '../../core/errors.ts';
import type { MqttConnection } from './connection.ts';
import type { DeviceSession } from './device-session.ts';
import { RC } from './reason-codes.ts';

/** What a session remembers per request id (TB: never cleared, so devices use a new id per update). */
interface OtaSessionState {
  sizes: Map<number, number>;
  packages: Map<number, OtaPackage>;
}

const states = new WeakMap<DeviceSession, OtaSessionState>();
/** Request ids remembered per session at most (TB keeps them all; a bound keeps a misbehaving device's cost fixed). */
const MAX_REMEMBERED = 1000;

function stateOf(session: DeviceSession): OtaSessionState {
  let state = states.get(session);
  if (!state) states.set(session, (state = { sizes: new Map(), packages: new Map() }));
  return state;
}

function remember<V>(map: Map<number, V>, key: number, value: V): void {
  if (map.size >= MAX_REMEMBERED && !map.has(key)) map.delete(map.keys().next().value!);
  map.set(key, value);
}

/** A failure answered on `v2/fw/error` with its status name (TB: NOT_FOUND, FAILURE, UNKNOWN, PAYLOAD_TOO_LARGE). */
class OtaRefusal extends Error {}

/** Handles one chunk request of an authenticated device. */
export function handleOtaRequest(conn: MqttConnection, packet: IPublishPacket, route: { type: OtaType; requestId: number; chunk: number }, payload: Buffer): void {
  const session = conn.device!;
  const ack = packet.qos > 0 ? conn.acks.enqueue(packet.messageId!) : undefined;
  conn.beginWork();
  answer(conn, session, route, payload).then(
    ({ topic, data }) => {
      conn.endWork();
      if (ack) conn.acks.complete(ack, RC.SUCCESS);
      // TB: QoS of a matching subscription, else 1; delivery never depends on a subscription (spec §7.8).
      conn.publishAndForget(topic, data, session.delivery(route.type === 'FIRMWARE' ? 'fw-response' : 'sw-response', 'v1').qos);
    },
    (err: unknown) => {
      conn.endWork();
      const status = err instanceof OtaRefusal ? err.message : toFleetgateError(err).code === 'INTERNAL' ? 'FAILURE' : err instanceof Error ? err.message : 'FAILURE';
      if (!(err instanceof OtaRefusal)) conn.ctx.logger.warn({ err, deviceId: session.identity.deviceId }, 'mqtt: ota chunk request failed');
      // TB: no PUBACK, the status name on v2/fw/error, then the connection is closed (MQTT 5 reason 0x83).
      conn.publishAndForget('v2/fw/error', status, session.delivery('fw-error', 'v1').qos);
      conn.fail(RC.IMPLEMENTATION_SPECIFIC_ERROR, `ota request refused: ${status}`);
    },
  );
}

async function answer(conn: MqttConnection, session: DeviceSession, route: { type: OtaType; requestId: number; chunk: number }, payload: Buffer): Promise<{ topic: string; data: Buffer }> {
  const state = stateOf(session);
  const text = payload.toString('utf8').trim();
  // TB crashes the connection on a non-number; fleetgate names the problem first.
  if (text !== '' && !/^\d{1,10}$/.test(text)) throw new OtaRefusal('INVALID_CHUNK_SIZE');
  let size = text === '' ? 0 : Number(text);
  if (size > 0) remember(state.sizes, route.requestId, size);
  else size = state.sizes.get(route.requestId) ?? 0;
  // TB: a chunk size above transport.mqtt.netty.max_payload_size (65536) -> PAYLOAD_TOO_LARGE.
  if (size > conn.ctx.limits.maxPacketSize) throw new OtaRefusal('PAYLOAD_TOO_LARGE');
  let pkg = state.packages.get(route.requestId);
  if (!pkg) {
    const found = await conn.ctx.core.ota.lookup(session.identity.deviceId, route.type);
    if (found.status !== 'SUCCESS') throw new OtaRefusal(found.status);
    pkg = found.pkg;
    remember(state.packages, route.requestId, pkg);
  }
  const [start, end] = conn.ctx.core.ota.slice(pkg, size, route.chunk);
  // The whole package in one PUBLISH (size 0) is held in memory once: allowed up to the connection's write buffer.
  if (end - start > Math.max(conn.ctx.limits.maxPacketSize, conn.ctx.limits.maxWriteBuffer)) throw new OtaRefusal('PAYLOAD_TOO_LARGE');
  const data = end > start ? await conn.ctx.core.ota.readRange(pkg, start, end) : Buffer.alloc(0);
  const prefix = pkg.type === 'FIRMWARE' ? 'fw' : 'sw';
  return { topic: `v2/${prefix}/response/${route.requestId}/chunk/${route.chunk}`, data };
}
