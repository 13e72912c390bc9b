/**
 * The hand decoders of CONNECT, SUBSCRIBE, PUBACK and DISCONNECT (3.x): a well-formed packet decodes to exactly what
 * mqtt-packet's parser makes of it, and every packet they do not take — a will, MQTT 5, the bridge bit, reserved bits,
 * bad lengths, thousands of mutated packets — is left to mqtt-packet (never decoded differently, never accepted where
 * mqtt-packet refuses).
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import mqttPacket, { type Packet } from 'mqtt-packet';
import { decodeFast } from '../../../src/transports/mqtt/decode-fast.ts';
import { decodePacket } from '../../../src/transports/mqtt/decode.ts';
import { Rng } from '../../fuzz/rng.ts';

/** What mqtt-packet's own parser makes of `bytes`, as a plain object (or its error). */
function parsedByMqttPacket(bytes: Buffer, version: number, bridgeMode = false): Record<string, unknown> | Error {
  const parser = mqttPacket.parser({ protocolVersion: version }) as ReturnType<typeof mqttPacket.parser> & { settings: object };
  if (bridgeMode) parser.settings = { protocolVersion: version, bridgeMode };
  let out: Record<string, unknown> | Error = new Error('no packet');
  parser.on('packet', (p: Packet) => (out = { ...p }));
  parser.on('error', (e: Error) => (out = e));
  try {
    parser.parse(bytes);
  } catch (err) {
    out = err as Error;
  }
  return out;
}

const generate = (p: Record<string, unknown>, version = 4) => mqttPacket.generate(p as unknown as Packet, { protocolVersion: version });

const connects = [
  { cmd: 'connect', protocolId: 'MQTT', protocolVersion: 4, clientId: 'c1', clean: true, keepalive: 0, username: 'provision' },
  { cmd: 'connect', protocolId: 'MQTT', protocolVersion: 4, clientId: '', clean: true, keepalive: 60, username: 'A1_TEST_TOKEN', password: Buffer.from('secret') },
  { cmd: 'connect', protocolId: 'MQTT', protocolVersion: 4, clientId: 'dev-ünï-🛰', clean: false, keepalive: 65535 },
  { cmd: 'connect', protocolId: 'MQIsdp', protocolVersion: 3, clientId: 'old', clean: true, keepalive: 30, username: 'u', password: Buffer.from('') },
  { cmd: 'connect', protocolId: 'MQTT', protocolVersion: 4, clientId: 'x'.repeat(300), clean: true, keepalive: 10, username: 'y'.repeat(200), password: Buffer.alloc(70, 1) },
];
const subscribes = [
  { cmd: 'subscribe', messageId: 1, subscriptions: [{ topic: '/provision/response', qos: 1 }] },
  { cmd: 'subscribe', messageId: 65535, subscriptions: [{ topic: 'v1/devices/me/attributes', qos: 0 }, { topic: 'v1/devices/me/rpc/request/+', qos: 2 }, { topic: 'ü/🛰/#', qos: 1 }] },
];
const others = [
  { cmd: 'puback', messageId: 1 },
  { cmd: 'puback', messageId: 65535 },
  { cmd: 'disconnect' },
];

describe('hand-decoded MQTT 3.x packets', () => {
  it('a well-formed CONNECT, SUBSCRIBE, PUBACK or DISCONNECT decodes to exactly what mqtt-packet makes of it', () => {
    for (const p of [...connects, ...subscribes, ...others]) {
      const bytes = generate(p, (p as { protocolVersion?: number }).protocolVersion ?? 4);
      const fast = decodeFast(bytes, 4, false);
      assert.ok(fast, `${p.cmd} is decoded by hand`);
      assert.deepEqual({ ...fast }, parsedByMqttPacket(bytes, 4), JSON.stringify(p).slice(0, 120));
      assert.deepEqual({ ...(decodePacket(bytes, 4) as object) }, parsedByMqttPacket(bytes, 4));
    }
  });

  it('leaves wills, MQTT 5, the bridge bit and reserved bits to mqtt-packet', () => {
    const will = generate({ ...connects[0], will: { topic: 'w', payload: Buffer.from('x'), qos: 1, retain: false } });
    assert.equal(decodeFast(will, 4, false), undefined);
    const v5 = generate({ ...connects[0], protocolVersion: 5 }, 5);
    assert.equal(decodeFast(v5, 5, false), undefined);
    const bridge = Buffer.from(generate(connects[0]));
    bridge[8] |= 0x80; // protocol level with the bridge bit
    assert.equal(decodeFast(bridge, 4, false), undefined);
    const reserved = Buffer.from(generate(connects[0]));
    reserved[9] |= 0x01; // connect flags: reserved bit
    assert.equal(decodeFast(reserved, 4, false), undefined);
    assert.ok(decodePacket(reserved, 4) instanceof Error, 'mqtt-packet refuses it');
    const subscribe = generate(subscribes[0]);
    assert.equal(decodeFast(subscribe, 5, false), undefined);
    assert.equal(decodeFast(subscribe, 4, true), undefined);
    const qos3 = Buffer.from(subscribe);
    qos3[qos3.length - 1] = 3;
    assert.equal(decodeFast(qos3, 4, false), undefined);
    assert.equal(decodeFast(Buffer.from([0x82, 0x02, 0x00, 0x01]), 4, false), undefined, 'SUBSCRIBE without filters');
    assert.equal(decodeFast(Buffer.from([0x40, 0x03, 0x00, 0x01, 0x00]), 4, false), undefined);
    assert.equal(decodeFast(Buffer.from([0xe0, 0x01, 0x00]), 4, false), undefined);
    assert.equal(decodeFast(generate({ cmd: 'disconnect', reasonCode: 0 }, 5), 5, false), undefined);
  });

  it('never decodes a mutated packet differently from mqtt-packet (20,000 seeded mutations)', () => {
    const rng = new Rng(17);
    const seeds = [...connects, ...subscribes, ...others].map((p) => generate(p, (p as { protocolVersion?: number }).protocolVersion ?? 4));
    let taken = 0;
    for (let i = 0; i < 20_000; i++) {
      const bytes = Buffer.from(rng.pick(seeds));
      let body = 1;
      while (bytes[body] & 0x80) body++;
      body++;
      for (let n = 1 + rng.int(3); n > 0; n--) {
        const at = body + rng.int(Math.max(1, bytes.length - body)); // the fixed header is kept: the frame stays whole, as the framer makes it
        if (at < bytes.length) bytes[at] = rng.chance(0.5) ? rng.int(256) : bytes[at] ^ (1 << rng.int(8));
      }
      if (rng.chance(0.2)) bytes[0] = rng.pick([0x10, 0x11, 0x82, 0x80, 0x40, 0x42, 0xe0, 0xe2]);
      const fast = decodeFast(bytes, 4, false);
      if (fast === undefined) continue;
      taken++;
      const reference = parsedByMqttPacket(bytes, 4);
      assert.ok(!(reference instanceof Error), `decoded by hand but refused by mqtt-packet: ${bytes.toString('hex')} (${(reference as Error).message})`);
      assert.deepEqual({ ...fast }, reference, bytes.toString('hex'));
    }
    assert.ok(taken > 1000, `enough mutated packets were still well-formed to compare (${taken})`);
  });
});
