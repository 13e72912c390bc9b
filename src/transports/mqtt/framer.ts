/**
 * Splits an MQTT byte stream into whole packets (fixed header + Remaining Length, MQTT 3.1.1 §2.2 and 5.0 §2.1).
 * A packet's declared size is checked against the limit as soon as its header is complete, before its body is
 * buffered. Whole packets only ever reach the decoder, so mqtt-packet's parser never holds a partial packet and a
 * PUBLISH can be decoded in place (see decodePublish).
 */
import type { IPublishPacket } from 'mqtt-packet';
import { isMqttUtf8 } from './utf8.ts';

/** What the framer reports to its connection. */
export interface FrameSink {
  /**
   * One whole packet: bytes [start, end) of `buf`, valid until the next chunk arrives (no view made per packet: the
   * PUBLISH hot path takes its payload's view straight from `buf`, issue 17).
   */
  onFrame(buf: Buffer, start: number, end: number): void;
  /** The stream is not MQTT: a Remaining Length longer than four bytes. */
  onMalformed(why: string): void;
  /** A packet declares more than `maxPacketSize` bytes in all. */
  onTooLarge(): void;
  /** Stops framing (the connection has closed). */
  readonly closed: boolean;
}

/** The parts of a framer holding no incomplete packet (shared: never pushed to, as partsLength is then 0). */
const NO_PARTS: readonly Buffer[] = [];

/** Frames one connection's stream. */
export class MqttFramer {
  /** Bytes of an incomplete packet, in arrival order. */
  private parts = NO_PARTS as Buffer[];
  private partsLength = 0;
  /** Size of the incomplete packet once its header is known (0: header still incomplete). */
  private expected = 0;

  constructor(
    private readonly sink: FrameSink,
    private readonly maxPacketSize: number,
  ) {}

  /** Feeds received bytes; every whole packet in them reaches `onFrame` in order. */
  push(chunk: Buffer): void {
    let buf = chunk;
    if (this.partsLength > 0) {
      this.parts.push(chunk);
      this.partsLength += chunk.length;
      if (this.expected > 0 && this.partsLength < this.expected) return;
      buf = Buffer.concat(this.parts, this.partsLength);
      this.parts = NO_PARTS as Buffer[];
      this.partsLength = 0;
    }
    this.expected = 0;
    let offset = 0;
    while (offset < buf.length && !this.sink.closed) {
      const size = this.frameSize(buf, offset);
      if (size < 0) return; // refused: the sink has been told
      if (size === 0 || offset + size > buf.length) {
        this.keep(buf.subarray(offset), size);
        return;
      }
      this.sink.onFrame(buf, offset, offset + size);
      offset += size;
    }
  }

  private keep(rest: Buffer, size: number): void {
    this.parts = [rest];
    this.partsLength = rest.length;
    this.expected = size;
  }

  /** Whole size of the packet at `offset`; 0 when its header is not complete yet; -1 after a refusal. */
  private frameSize(buf: Buffer, offset: number): number {
    let remaining = 0;
    let multiplier = 1;
    for (let i = 1; i <= 4; i++) {
      if (offset + i >= buf.length) return 0;
      const byte = buf[offset + i];
      remaining += (byte & 0x7f) * multiplier;
      if ((byte & 0x80) === 0) {
        const size = 1 + i + remaining;
        if (size > this.maxPacketSize) {
          this.sink.onTooLarge();
          return -1;
        }
        return size;
      }
      multiplier *= 128;
    }
    this.sink.onMalformed('Invalid variable byte integer'); // MQTT 3.1.1 §2.2.3: at most four bytes
    return -1;
  }
}

/** Whether bytes [from, to) of `buf` are the ASCII text `text` (then decoding them would give `text` again). */
export function sameAscii(buf: Buffer, from: number, to: number, text: string): boolean {
  if (to - from !== text.length) return false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c >= 0x80 || buf[from + i] !== c) return false;
  }
  return true;
}

/** Why a packet whose topic name or filter is ill-formed UTF-8 or holds U+0000 is malformed. */
export const TOPIC_NOT_UTF8 = 'Topic is not well-formed UTF-8 or contains U+0000';

/**
 * Decodes an MQTT 3.1 / 3.1.1 PUBLISH frame (bytes [start, end) of `buf`) into the packet mqtt-packet would produce,
 * without copying the payload.
 * Returns an error message for a malformed frame. (MQTT 5 PUBLISH carries properties and goes through mqtt-packet.)
 * `lastTopic`: the connection's previous PUBLISH topic, reused when the bytes are the same ASCII text (a device
 * publishes to one topic again and again: no string decoded and made a message, issue 17). A topic that is decoded is
 * first checked to be well-formed UTF-8 without U+0000; a reused one was checked when it was first seen.
 */
export function decodePublish(buf: Buffer, lastTopic?: string, start = 0, end = buf.length): IPublishPacket | string {
  const first = buf[start];
  const qos = (first >> 1) & 3;
  if (qos === 3) return 'Packet must not have both QoS bits set to 1'; // MQTT 3.1.1 §3.3.1.2
  let pos = start + 2;
  while (buf[pos - 1] & 0x80) pos++;
  const length = end - pos;
  if (pos + 2 > end) return 'Cannot parse topic';
  const topicEnd = pos + 2 + ((buf[pos] << 8) | buf[pos + 1]);
  if (topicEnd > end) return 'Cannot parse topic';
  let topic: string;
  if (lastTopic !== undefined && sameAscii(buf, pos + 2, topicEnd, lastTopic)) topic = lastTopic; // checked when first seen
  else if (!isMqttUtf8(buf, pos + 2, topicEnd)) return TOPIC_NOT_UTF8; // [MQTT-1.5.3-1], [MQTT-1.5.3-2]
  else topic = buf.toString('utf8', pos + 2, topicEnd);
  pos = topicEnd;
  let messageId: number | undefined;
  if (qos > 0) {
    if (pos + 2 > end) return 'Cannot parse messageId';
    messageId = (buf[pos] << 8) | buf[pos + 1];
    pos += 2;
  }
  return { cmd: 'publish', topic, payload: buf.subarray(pos, end), qos: qos as 0 | 1 | 2, dup: (first & 8) !== 0, retain: (first & 1) !== 0, messageId, length };
}
