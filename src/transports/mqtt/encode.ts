/**
 * Hand-encoded forms of the packets every MQTT 3.1 / 3.1.1 session sends (CONNACK, SUBACK, PUBLISH), byte for byte what
 * mqtt-packet's `generate` writes for them (test/transports/mqtt/encode.test.ts compares the two), without its
 * per-packet stream object, validation passes and chunk list. MQTT 5 packets (properties) and every other packet still
 * go through mqtt-packet: `encodeFast` answers undefined for them.
 */
import type { Packet } from 'mqtt-packet';

/** CONNACK of 3.x for each (sessionPresent, return code 0-5), made once. */
const CONNACKS = [0, 1].map((sp) => [0, 1, 2, 3, 4, 5].map((rc) => Buffer.from([0x20, 2, sp, rc])));

/** Bytes of the Remaining Length of `n` (MQTT 3.1.1 §2.2.3). */
function varintSize(n: number): number {
  return n < 128 ? 1 : n < 16_384 ? 2 : n < 2_097_152 ? 3 : 4;
}

function writeVarint(out: Buffer, at: number, n: number): number {
  do {
    let byte = n % 128;
    n = Math.floor(n / 128);
    if (n > 0) byte |= 0x80;
    out[at++] = byte;
  } while (n > 0);
  return at;
}

/** A 3.x PUBLISH (no properties); a string payload is UTF-8. */
function encodePublish(topic: string, payload: Buffer | string, qos: number, messageId: number | undefined, retain: boolean, dup: boolean): Buffer | undefined {
  const topicLength = Buffer.byteLength(topic);
  const payloadLength = typeof payload === 'string' ? Buffer.byteLength(payload) : payload.length;
  const remaining = 2 + topicLength + (qos > 0 ? 2 : 0) + payloadLength;
  if (topicLength > 0xffff || remaining > 268_435_455 || (qos > 0 && (messageId === undefined || messageId < 1 || messageId > 0xffff))) return undefined;
  const out = Buffer.allocUnsafe(1 + varintSize(remaining) + remaining);
  out[0] = 0x30 | (dup ? 8 : 0) | (qos << 1) | (retain ? 1 : 0);
  let at = writeVarint(out, 1, remaining);
  out.writeUInt16BE(topicLength, at);
  at += 2;
  at += out.write(topic, at, 'utf8');
  if (qos > 0) {
    out.writeUInt16BE(messageId!, at);
    at += 2;
  }
  if (typeof payload === 'string') out.write(payload, at, 'utf8');
  else payload.copy(out, at);
  return out;
}

/** A 3.x SUBACK with one granted code per filter (0, 1, 2 or 0x80). */
function encodeSuback(messageId: number, granted: readonly number[]): Buffer | undefined {
  const remaining = 2 + granted.length;
  if (granted.length === 0 || remaining > 127 || messageId < 1 || messageId > 0xffff) return undefined;
  const out = Buffer.allocUnsafe(2 + remaining);
  out[0] = 0x90;
  out[1] = remaining;
  out.writeUInt16BE(messageId, 2);
  for (let i = 0; i < granted.length; i++) {
    const code = granted[i];
    if (code !== 0 && code !== 1 && code !== 2 && code !== 0x80) return undefined;
    out[4 + i] = code;
  }
  return out;
}

/**
 * The bytes of `packet` for a 3.1 / 3.1.1 connection when it is one of the packets encoded here, else undefined (the
 * caller then uses mqtt-packet). Never called for MQTT 5.
 */
export function encodeFast(packet: Packet): Buffer | undefined {
  switch (packet.cmd) {
    case 'publish':
      if (packet.properties !== undefined || packet.qos > 1 || typeof packet.topic !== 'string') return undefined;
      if (typeof packet.payload !== 'string' && !Buffer.isBuffer(packet.payload)) return undefined;
      return encodePublish(packet.topic, packet.payload, packet.qos ?? 0, packet.messageId, packet.retain, packet.dup);
    case 'suback':
      if (packet.properties !== undefined || packet.messageId === undefined) return undefined;
      return Array.isArray(packet.granted) ? encodeSuback(packet.messageId, packet.granted as number[]) : undefined;
    case 'connack': {
      const rc = packet.returnCode;
      if (packet.properties !== undefined || rc === undefined || !Number.isInteger(rc) || rc < 0 || rc > 5) return undefined;
      return CONNACKS[packet.sessionPresent ? 1 : 0][rc];
    }
    default:
      return undefined;
  }
}
