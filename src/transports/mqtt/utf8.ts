/**
 * Topic names and filters must be well-formed UTF-8 without U+0000: MQTT 3.1.1 [MQTT-1.5.3-1], [MQTT-1.5.3-2] (the
 * server closes the connection) and MQTT 5.0 [MQTT-1.5.4-1], [MQTT-1.5.4-2] (a Malformed Packet: DISCONNECT 0x81).
 * mqtt-packet and Buffer#toString decode ill-formed bytes to U+FFFD without a word, so the bytes are checked here,
 * before decoding. (TB: Netty's MqttDecoder decodes the same way and never refuses; fleetgate follows the spec.)
 */
import { isUtf8 } from 'node:buffer';

/** Whether bytes [from, to) of `buf` are well-formed UTF-8 holding no U+0000 (an ASCII string costs one pass). */
export function isMqttUtf8(buf: Buffer, from: number, to: number): boolean {
  let ascii = true;
  for (let i = from; i < to; i++) {
    const b = buf[i];
    if (b === 0) return false; // U+0000; well-formed UTF-8 has no other 0x00 byte
    if (b >= 0x80) ascii = false;
  }
  return ascii || isUtf8(buf.subarray(from, to)); // rejects overlong forms, surrogates and code points past U+10FFFF
}

/** Where the variable header of the packet in [start, end) begins (after its Remaining Length; the framer checked it). */
function variableHeader(buf: Buffer, start: number): number {
  let at = start + 1;
  while (buf[at] & 0x80) at++;
  return at + 1;
}

/** Skips a v5 Property Length and its properties at `at`; -1 when it runs past `end` (mqtt-packet then reports it). */
function skipProperties(buf: Buffer, at: number, end: number): number {
  let length = 0;
  for (let shift = 0; shift < 28; shift += 7) {
    if (at >= end) return -1;
    const byte = buf[at++];
    length += (byte & 0x7f) * 2 ** shift;
    if ((byte & 0x80) === 0) return at + length <= end ? at + length : -1;
  }
  return -1;
}

/**
 * Whether the topic of the PUBLISH frame [start, end) is an acceptable MQTT string. A frame too short to hold its topic
 * passes: the decoder reports it as malformed in its own words.
 */
export function publishTopicWellFormed(buf: Buffer, start: number, end: number): boolean {
  const at = variableHeader(buf, start);
  if (at + 2 > end) return true;
  const topicEnd = at + 2 + buf.readUInt16BE(at);
  return topicEnd > end || isMqttUtf8(buf, at + 2, topicEnd);
}

/**
 * Whether every topic filter of the SUBSCRIBE or UNSUBSCRIBE frame [start, end) is an acceptable MQTT string (v5: after
 * the properties). A frame whose structure does not add up passes: the decoder reports it in its own words.
 */
export function filtersWellFormed(buf: Buffer, start: number, end: number, version: number): boolean {
  const subscribe = buf[start] >> 4 === 8; // each filter is followed by its options byte
  let at = variableHeader(buf, start) + 2; // packet identifier
  if (version === 5) {
    at = skipProperties(buf, at, end);
    if (at < 0) return true;
  }
  while (at + 2 <= end) {
    const filterEnd = at + 2 + buf.readUInt16BE(at);
    if (filterEnd > end) return true;
    if (!isMqttUtf8(buf, at + 2, filterEnd)) return false;
    at = filterEnd + (subscribe ? 1 : 0);
  }
  return true;
}

/**
 * Whether the topic names and filters of a frame that mqtt-packet decodes (a v5 PUBLISH, SUBSCRIBE, UNSUBSCRIBE; other
 * packets carry none) are acceptable MQTT strings.
 */
export function topicsWellFormed(buf: Buffer, start: number, end: number, version: number): boolean {
  const type = buf[start] >> 4;
  if (type === 3) return publishTopicWellFormed(buf, start, end);
  if (type === 8 || type === 10) return filtersWellFormed(buf, start, end, version);
  return true;
}
