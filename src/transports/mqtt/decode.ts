/**
 * Decodes whole MQTT packets with mqtt-packet's parser, one parser for the whole process instead of one per connection
 * (a parser is an EventEmitter holding a BufferList stream and, after a CONNECT, that whole CONNECT packet: about 1.5 KB
 * a connection). Sharing is safe because the framer hands over only whole packets and the parser answers synchronously:
 * each call leaves the parser empty for the next connection. The well-formed 3.x packets of every session are decoded by
 * hand first (decode-fast.ts).
 */
import mqtt, { type Packet } from 'mqtt-packet';
import { decodeFast } from './decode-fast.ts';

type Parser = ReturnType<typeof mqtt.parser> & {
  settings: { protocolVersion?: number; bridgeMode?: boolean };
  _list: { length: number };
};

let decoded: Packet | undefined;
let failure: Error | undefined;

function newParser(): Parser {
  const p = mqtt.parser() as Parser;
  p.on('packet', (packet: Packet) => {
    decoded = packet;
  });
  p.on('error', (err: Error) => {
    failure ??= err;
  });
  return p;
}

let parser = newParser();

/** Parser settings per protocol version: what mqtt-packet keeps from a CONNECT and reads for later packets. */
const SETTINGS = new Map<number, { protocolVersion: number; bridgeMode?: boolean }>();
for (const v of [3, 4, 5]) {
  SETTINGS.set(v, { protocolVersion: v });
  SETTINGS.set(v + 128, { protocolVersion: v, bridgeMode: true });
}

/**
 * Decodes one whole packet of a connection speaking `version` (`bridgeMode`: its CONNECT set the bridge bit); a
 * CONNECT is decoded whatever `version` says. Returns the packet, or the parser's error for a malformed one.
 */
export function decodePacket(frame: Buffer, version: number, bridgeMode = false): Packet | Error {
  const fast = decodeFast(frame, version, bridgeMode);
  if (fast) return fast;
  parser.settings = SETTINGS.get(bridgeMode ? version + 128 : version) ?? { protocolVersion: version };
  decoded = undefined;
  failure = undefined;
  try {
    parser.parse(frame);
  } catch (err) {
    failure ??= err instanceof Error ? err : new Error(String(err));
  }
  // A malformed packet may leave bytes, a half-built packet or a read position behind: the next caller gets a new parser.
  if (failure || parser._list.length > 0) parser = newParser();
  parser.settings = SETTINGS.get(4)!;
  const packet = decoded;
  decoded = undefined;
  if (failure) {
    const err = failure;
    failure = undefined;
    return err;
  }
  return packet ?? new Error('Packet not complete');
}
