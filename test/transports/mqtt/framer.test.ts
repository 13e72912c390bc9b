/**
 * The MQTT framer and the in-place PUBLISH decoder: whole packets come out whatever the chunking, sizes are
 * refused from the header alone, and a 3.x PUBLISH decodes to exactly what mqtt-packet's parser produces.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import mqttPacket, { type IPublishPacket, type Packet } from 'mqtt-packet';
import { decodePublish, MqttFramer, type FrameSink } from '../../../src/transports/mqtt/framer.ts';

class Collect implements FrameSink {
  frames: Buffer[] = [];
  malformed: string[] = [];
  tooLarge = 0;
  closed = false;
  onFrame(buf: Buffer, start: number, end: number): void {
    this.frames.push(Buffer.from(buf.subarray(start, end)));
  }
  onMalformed(why: string): void {
    this.malformed.push(why);
    this.closed = true;
  }
  onTooLarge(): void {
    this.tooLarge++;
    this.closed = true;
  }
}

const publish = (topic: string, payload: Buffer | string, qos: 0 | 1, messageId?: number, flags: { dup?: boolean; retain?: boolean } = {}): Buffer =>
  mqttPacket.generate({ cmd: 'publish', topic, payload, qos, messageId, dup: flags.dup ?? false, retain: flags.retain ?? false });

/** What mqtt-packet's own parser makes of `bytes` (protocol 3.1.1). */
function parsedByMqttPacket(bytes: Buffer): Packet | Error {
  const parser = mqttPacket.parser({ protocolVersion: 4 });
  let out: Packet | Error = new Error('no packet');
  parser.on('packet', (p: Packet) => (out = p));
  parser.on('error', (e: Error) => (out = e));
  parser.parse(bytes);
  return out;
}

describe('MqttFramer', () => {
  const packets = [
    publish('v1/devices/me/telemetry', '{"temperature":21.5}', 1, 7),
    mqttPacket.generate({ cmd: 'pingreq' }),
    publish('v1/devices/me/attributes', Buffer.alloc(300, 0x61), 0), // a two-byte Remaining Length
    publish('v1/devices/me/telemetry', '', 1, 65535),
  ];
  const stream = Buffer.concat(packets);

  it('yields the same whole packets however the stream is cut', () => {
    for (const cut of [1, 2, 3, 5, 64, stream.length]) {
      const sink = new Collect();
      const framer = new MqttFramer(sink, 65536);
      for (let i = 0; i < stream.length; i += cut) framer.push(stream.subarray(i, i + cut));
      assert.deepEqual(sink.frames, packets, `chunks of ${cut} bytes`);
    }
  });

  it('refuses a packet whose header declares more than the limit before its body arrives', () => {
    const sink = new Collect();
    const framer = new MqttFramer(sink, 1024);
    const big = publish('t', Buffer.alloc(2000), 0);
    framer.push(big.subarray(0, 4)); // fixed header only
    assert.equal(sink.tooLarge, 1);
    assert.equal(sink.frames.length, 0);
  });

  it('accepts a packet of exactly the limit', () => {
    const exact = publish('t', Buffer.alloc(100), 0);
    const sink = new Collect();
    new MqttFramer(sink, exact.length).push(exact);
    assert.equal(sink.frames.length, 1);
    assert.equal(sink.tooLarge, 0);
  });

  it('calls a Remaining Length of five bytes malformed', () => {
    const sink = new Collect();
    new MqttFramer(sink, Number.MAX_SAFE_INTEGER).push(Buffer.from([0x30, 0xff, 0xff, 0xff, 0xff, 0x01]));
    assert.deepEqual(sink.malformed, ['Invalid variable byte integer']);
  });

  it('stops framing once the sink has closed', () => {
    const sink = new Collect();
    const framer = new MqttFramer(sink, 65536);
    sink.closed = true;
    framer.push(stream);
    assert.equal(sink.frames.length, 0);
  });
});

describe('decodePublish', () => {
  const cases: [string, Buffer][] = [
    ['QoS 1', publish('v1/devices/me/telemetry', '{"a":1}', 1, 513)],
    ['QoS 0', publish('v1/devices/me/telemetry', '{"a":1}', 0)],
    ['dup and retain', publish('v1/devices/me/rpc/response/3', 'ok', 1, 9, { dup: true, retain: true })],
    ['empty payload', publish('v1/devices/me/telemetry', '', 1, 1)],
    ['UTF-8 topic', publish('v1/devices/me/tëlemetry/✓', 'x', 0)],
    ['large payload', publish('t', Buffer.alloc(70_000, 1), 1, 2)],
  ];
  for (const [name, bytes] of cases) {
    it(`decodes a ${name} PUBLISH as mqtt-packet does`, () => {
      const expected = parsedByMqttPacket(bytes) as IPublishPacket;
      const actual = decodePublish(bytes) as IPublishPacket;
      assert.equal(typeof actual, 'object');
      for (const field of ['cmd', 'topic', 'qos', 'dup', 'retain', 'length'] as const) assert.equal(actual[field], expected[field], field);
      assert.equal(actual.messageId, expected.qos > 0 ? expected.messageId : undefined);
      assert.deepEqual(Buffer.from(actual.payload as Buffer), Buffer.from(expected.payload as Buffer));
    });
  }

  it('decodes a PUBLISH inside a larger buffer (bytes [start, end)) as the same PUBLISH alone', () => {
    const alone = publish('v1/devices/me/telemetry', '{"ts":1,"values":{"a":2}}', 1, 300);
    const inside = Buffer.concat([Buffer.from([0xc0, 0x00]), alone, publish('t', 'next', 1, 2)]);
    const actual = decodePublish(inside, undefined, 2, 2 + alone.length) as IPublishPacket;
    const expected = decodePublish(alone) as IPublishPacket;
    assert.deepEqual({ ...actual, payload: Buffer.from(actual.payload as Buffer) }, { ...expected, payload: Buffer.from(expected.payload as Buffer) });
    assert.equal(decodePublish(inside, undefined, 2, 2 + alone.length - 30), 'Cannot parse topic', 'the end bounds the topic');
  });

  it('reuses the previous topic only when the bytes are that same ASCII text', () => {
    const last = 'v1/devices/me/telemetry';
    const same = decodePublish(publish(last, '{"a":1}', 1, 7), last) as IPublishPacket;
    assert.equal(same.topic, last);
    const topics = ['v1/devices/me/telemetrx', 'v1/devices/me/telemetr', 'v1/devices/me/telemetryy', 'v1/devices/me/attributes', 'v1/devices/me/tëlemetry', 'v1/devices/me/t\u00c3\u00ablemetry'];
    for (const topic of topics) {
      for (const previous of [last, 'v1/devices/me/tëlemetry', 'v1/devices/me/t\u00c3\u00ablemetry']) {
        const bytes = publish(topic, 'x', 1, 3);
        const actual = decodePublish(bytes, previous) as IPublishPacket;
        assert.equal(actual.topic, (parsedByMqttPacket(bytes) as IPublishPacket).topic, `${topic} after ${previous}`);
      }
    }
  });

  it('rejects both QoS bits set and a truncated topic, as mqtt-packet does, and a missing packet id', () => {
    const qos3 = Buffer.from(publish('t', 'x', 1, 1));
    qos3[0] |= 0x06;
    assert.equal(decodePublish(qos3), 'Packet must not have both QoS bits set to 1');
    assert.ok(parsedByMqttPacket(qos3) instanceof Error);
    const shortTopic = Buffer.from([0x30, 0x03, 0x00, 0x09, 0x61]); // declares a 9-byte topic, holds 1
    assert.equal(decodePublish(shortTopic), 'Cannot parse topic');
    assert.ok(parsedByMqttPacket(shortTopic) instanceof Error);
    const noId = Buffer.from([0x32, 0x03, 0x00, 0x01, 0x74]); // QoS 1, topic "t", no packet id
    assert.equal(decodePublish(noId), 'Cannot parse messageId'); // mqtt-packet reads -1 (or the next packet's bytes)
  });
});
