/**
 * Hand decoders for the MQTT 3.1 / 3.1.1 packets every session sends besides PUBLISH (framer.ts decodes that one):
 * CONNECT (without a will), SUBSCRIBE, PUBACK and DISCONNECT. Each gives exactly the packet mqtt-packet's parser would
 * (test/transports/mqtt/decode-fast.test.ts compares the two) for a well-formed packet, and answers undefined for
 * anything else — a will, MQTT 5, the bridge bit, a reserved bit set, a length that does not add up, trailing bytes — so
 * that mqtt-packet decides every unusual or hostile packet and its error message stays the one clients see.
 */
import type { IConnectPacket, IDisconnectPacket, IPubackPacket, ISubscribePacket, Packet } from 'mqtt-packet';

/** Where the body of `frame` starts (after the fixed header's Remaining Length; the framer has checked it). */
function bodyStart(frame: Buffer): number {
  let at = 1;
  while (frame[at] & 0x80) at++;
  return at + 1;
}

/** A length-prefixed UTF-8 string at `at` within `frame` ([MQTT-1.5.3]), or undefined if it runs past the end. */
function stringAt(frame: Buffer, at: number): { value: string; end: number } | undefined {
  if (at + 2 > frame.length) return undefined;
  const end = at + 2 + frame.readUInt16BE(at);
  if (end > frame.length) return undefined;
  return { value: frame.toString('utf8', at + 2, end), end };
}

/** The fields mqtt-packet's Packet starts with. */
function base(cmd: string, length: number) {
  return { cmd, retain: false, qos: 0, dup: false, length, topic: null, payload: null };
}

function decodeConnect(frame: Buffer): IConnectPacket | undefined {
  const body = bodyStart(frame);
  const protocol = stringAt(frame, body);
  if (!protocol || (protocol.value !== 'MQTT' && protocol.value !== 'MQIsdp')) return undefined;
  let at = protocol.end;
  if (at + 4 > frame.length) return undefined;
  const version = frame[at];
  const flags = frame[at + 1];
  if ((version !== 3 && version !== 4) || (flags & 0x3d) !== 0) return undefined; // no bridge bit, reserved, will, will QoS/retain
  const keepalive = frame.readUInt16BE(at + 2);
  const clientId = stringAt(frame, at + 4);
  if (!clientId) return undefined;
  at = clientId.end;
  const packet = { ...base('connect', frame.length - body), protocolId: protocol.value, protocolVersion: version, clean: (flags & 0x02) !== 0, keepalive, clientId: clientId.value } as IConnectPacket;
  if (flags & 0x80) {
    const username = stringAt(frame, at);
    if (!username) return undefined;
    packet.username = username.value;
    at = username.end;
  }
  if (flags & 0x40) {
    if (at + 2 > frame.length) return undefined;
    const end = at + 2 + frame.readUInt16BE(at);
    if (end > frame.length) return undefined;
    packet.password = Buffer.from(frame.subarray(at + 2, end)); // a copy: the frame's bytes are reused
    at = end;
  }
  return at === frame.length ? packet : undefined;
}

function decodeSubscribe(frame: Buffer): ISubscribePacket | undefined {
  const body = bodyStart(frame);
  if (body + 2 >= frame.length) return undefined;
  const subscriptions: { topic: string; qos: 0 | 1 | 2 }[] = [];
  let at = body + 2;
  while (at < frame.length) {
    const topic = stringAt(frame, at);
    if (!topic || topic.end >= frame.length) return undefined;
    const options = frame[topic.end];
    if (options > 2) return undefined; // bits 7-2 reserved, QoS 3
    subscriptions.push({ topic: topic.value, qos: options as 0 | 1 | 2 });
    at = topic.end + 1;
  }
  return { ...base('subscribe', frame.length - body), qos: 1, subscriptions, messageId: frame.readUInt16BE(body) } as ISubscribePacket;
}

/**
 * The packet in `frame` when it is one of the well-formed 3.x packets decoded here, else undefined (mqtt-packet then
 * decodes it). `bridgeMode`: the connection's CONNECT set the bridge bit (SUBSCRIBE options then read differently).
 */
export function decodeFast(frame: Buffer, version: number, bridgeMode: boolean): Packet | undefined {
  switch (frame[0]) {
    case 0x10:
      return decodeConnect(frame);
    case 0x82:
      return version !== 5 && !bridgeMode ? decodeSubscribe(frame) : undefined;
    case 0x40:
      return version !== 5 && frame.length === 4 && frame[1] === 2 ? ({ ...base('puback', 2), messageId: frame.readUInt16BE(2) } as IPubackPacket) : undefined;
    case 0xe0:
      return version !== 5 && frame.length === 2 ? (base('disconnect', 0) as IDisconnectPacket) : undefined;
    default:
      return undefined;
  }
}
