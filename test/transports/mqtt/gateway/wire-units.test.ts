/**
 * Unit checks under the gateway API: the MQTT 5 PUBACK with a Reason String as a real codec (mqtt-packet) decodes it,
 * and the gateway payload parsers, fed seeded random and mutated payloads, only ever refuse with a FleetgateError.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import mqtt, { type Packet } from 'mqtt-packet';
import { FleetgateError } from '../../../../src/core/errors.ts';
import * as parse from '../../../../src/core/gateway/gateway-json.ts';
import { OrderedAcks, REASON_STRING_MAX } from '../../../../src/transports/mqtt/acks.ts';
import { Rng } from '../../../fuzz/rng.ts';

/** PUBACKs an OrderedAcks writes, decoded by mqtt-packet as a v5 client would. */
async function pubacks(version: 4 | 5, fill: (acks: OrderedAcks) => void, maxSize?: number): Promise<(Packet & Record<string, any>)[]> {
  const written: Buffer[] = [];
  const acks = new OrderedAcks({ version, clientMaxPacketSize: maxSize, write: (b: Buffer) => written.push(b) });
  fill(acks);
  await new Promise((r) => process.nextTick(r));
  const parser = mqtt.parser({ protocolVersion: version });
  const out: (Packet & Record<string, any>)[] = [];
  parser.on('packet', (p: Packet) => out.push(p as Packet & Record<string, any>));
  parser.parse(Buffer.concat(written));
  return out;
}

describe('PUBACK with a Reason String', () => {
  test('MQTT 5: the reason code and the Reason String decode; a success stays 4 bytes', async () => {
    const [refused, ok] = await pubacks(5, (acks) => {
      acks.complete(acks.enqueue(7), 0x83, 'v1/gateway/telemetry: "Dev" must map to an array of samples');
      acks.complete(acks.enqueue(8), 0, 'ignored on success');
    });
    assert.equal(refused.reasonCode, 0x83);
    assert.equal(refused.properties?.reasonString, 'v1/gateway/telemetry: "Dev" must map to an array of samples');
    assert.equal(ok.messageId, 8);
    assert.equal(ok.reasonCode ?? 0, 0);
  });

  test('a long or multi-byte reason is cut at a character boundary to at most 100 bytes', async () => {
    const [ack] = await pubacks(5, (acks) => acks.complete(acks.enqueue(1), 0x97, 'Gerät "Zähler" ' + 'é'.repeat(200)));
    const text: string = ack.properties?.reasonString;
    assert.ok(Buffer.byteLength(text) <= REASON_STRING_MAX);
    assert.ok(text.startsWith('Gerät "Zähler" é'));
    assert.ok(!text.includes('\ufffd'));
  });

  test('the Reason String is left out when it would pass the client\'s Maximum Packet Size; MQTT 3.1.1 gets a plain PUBACK', async () => {
    const [small] = await pubacks(5, (acks) => acks.complete(acks.enqueue(2), 0x99, 'x'.repeat(50)), 20);
    assert.equal(small.reasonCode, 0x99);
    assert.equal(small.properties?.reasonString, undefined);
    const [v3] = await pubacks(4, (acks) => acks.complete(acks.enqueue(3), 0x83, 'not on 3.1.1'));
    assert.equal(v3.cmd, 'puback');
    assert.equal(v3.messageId, 3);
  });
});

describe('gateway payload parsers under random input', () => {
  const limits = { maxDevicesPerMessage: 5, maxNameLength: 16 };
  const seeds = [
    '{"A":[{"ts":1,"values":{"t":1}}],"B":[{"h":2}]}',
    '{"device":"A","type":"T"}',
    '{"id":1,"device":"A","client":true,"keys":["a","b"]}',
    '{"device":"A","id":3,"data":{"ok":true}}',
    '{"A":{"fw":"1.0"}}',
  ];
  const parsers: ((b: Buffer) => unknown)[] = [
    (b) => parse.parseTelemetryMessage(b, limits, 1),
    (b) => parse.parseAttributesMessage(b, limits),
    (b) => parse.parseConnect(b, limits),
    (b) => parse.parseDisconnect(b, limits),
    (b) => parse.parseAttributeRequest(b, limits),
    (b) => parse.parseRpcReply(b, limits),
  ];
  const tokens = ['{', '}', '[', ']', ',', ':', '"', 'null', 'true', '1e999', '-0', '1.0', '"ts"', '"values"', '"device"', '"id"', '"data"', '"keys"', '\u0000', ' '];

  test('5,000 mutated payloads: every parser answers or throws a FleetgateError, never anything else', () => {
    const rng = new Rng(2026);
    for (let i = 0; i < 5000; i++) {
      let text = rng.pick(seeds);
      for (let m = 0, n = 1 + rng.int(4); m < n; m++) {
        const at = rng.int(text.length + 1);
        text = rng.chance(0.5) ? text.slice(0, at) + rng.pick(tokens) + text.slice(at) : text.slice(0, at) + text.slice(at + 1 + rng.int(3));
      }
      const payload = rng.chance(0.05) ? rng.bytes(rng.int(40)) : Buffer.from(text);
      for (const p of parsers) {
        try {
          p(payload);
        } catch (err) {
          assert.ok(err instanceof FleetgateError, `${String(err)} for ${JSON.stringify(payload.toString())}`);
          assert.ok(['MALFORMED_PAYLOAD', 'INVALID_ARGUMENT', 'QUOTA_EXCEEDED'].includes(err.code), err.code);
        }
      }
    }
  });
});
