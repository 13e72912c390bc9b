/**
 * The hand-encoded 3.x packets (CONNACK, SUBACK, PUBLISH) are byte for byte what mqtt-packet generates, across the
 * Remaining Length boundaries, multi-byte UTF-8 and every flag; anything else is left to mqtt-packet.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import mqttPacket, { type Packet } from 'mqtt-packet';
import { encodeFast } from '../../../src/transports/mqtt/encode.ts';

const same = (packet: Packet, version: 3 | 4 = 4) => {
  const fast = encodeFast(packet);
  assert.ok(fast, `${packet.cmd} is encoded by hand`);
  assert.deepEqual(fast, mqttPacket.generate(packet, { protocolVersion: version }), JSON.stringify(packet).slice(0, 200));
};

describe('hand-encoded MQTT 3.x packets', () => {
  it('CONNACK: every return code, with and without session present', () => {
    for (const sessionPresent of [false, true]) for (let returnCode = 0; returnCode <= 5; returnCode++) same({ cmd: 'connack', returnCode, sessionPresent });
  });

  it('SUBACK: one or many granted codes, failures (0x80) and any packet id', () => {
    for (const messageId of [1, 2, 255, 256, 65535]) {
      same({ cmd: 'suback', messageId, granted: [1] });
      same({ cmd: 'suback', messageId, granted: [0, 1, 2, 0x80, 1] });
    }
    same({ cmd: 'suback', messageId: 7, granted: Array.from({ length: 125 }, (_, i) => i % 2) });
  });

  it('PUBLISH: QoS 0 and 1, dup and retain, string and Buffer payloads across every Remaining Length size', () => {
    const sizes = [0, 1, 100, 121, 122, 123, 124, 125, 126, 127, 128, 200, 16_250, 16_380, 16_383, 16_384, 16_400, 70_000, 2_097_200];
    for (const size of sizes) {
      for (const qos of [0, 1] as const) {
        const topic = '/provision/response';
        const payload = Buffer.alloc(size, 0x61);
        same({ cmd: 'publish', topic, payload, qos, messageId: qos ? 1 : undefined, retain: false, dup: false });
        same({ cmd: 'publish', topic, payload: payload.toString('latin1'), qos, messageId: qos ? 65535 : undefined, retain: true, dup: true });
      }
    }
    same({ cmd: 'publish', topic: 'v1/devices/me/attributes/response/1', payload: '{"shared":{"név":"Ünnep ✓ 🛰"}}', qos: 1, messageId: 300, retain: false, dup: false });
    same({ cmd: 'publish', topic: 'tópico/ünïcode/🛰', payload: Buffer.from([0, 1, 2, 255]), qos: 0, retain: false, dup: false });
    same({ cmd: 'publish', topic: 't', payload: 'x', qos: 0, messageId: 9, retain: false, dup: false }, 3);
  });

  it('leaves to mqtt-packet what it does not encode: properties, QoS 2, odd codes, other packets', () => {
    assert.equal(encodeFast({ cmd: 'publish', topic: 't', payload: 'x', qos: 2, messageId: 1, retain: false, dup: false }), undefined);
    assert.equal(encodeFast({ cmd: 'publish', topic: 't', payload: 'x', qos: 1, messageId: 0, retain: false, dup: false }), undefined);
    assert.equal(encodeFast({ cmd: 'publish', topic: 't', payload: 'x', qos: 0, retain: false, dup: false, properties: { topicAlias: 1 } }), undefined);
    assert.equal(encodeFast({ cmd: 'suback', messageId: 1, granted: [] }), undefined);
    assert.equal(encodeFast({ cmd: 'suback', messageId: 1, granted: [0x8f] }), undefined);
    assert.equal(encodeFast({ cmd: 'connack', returnCode: 0x86, sessionPresent: false }), undefined);
    assert.equal(encodeFast({ cmd: 'connack', reasonCode: 0, sessionPresent: false }), undefined);
    assert.equal(encodeFast({ cmd: 'pingresp' }), undefined);
    assert.equal(encodeFast({ cmd: 'unsuback', messageId: 1, granted: [] }), undefined);
  });
});
