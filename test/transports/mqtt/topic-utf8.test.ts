/**
 * Topic names and filters must be well-formed UTF-8 without U+0000 (MQTT 3.1.1 [MQTT-1.5.3-1], [MQTT-1.5.3-2]; MQTT 5.0
 * [MQTT-1.5.4-1], [MQTT-1.5.4-2]): a PUBLISH, SUBSCRIBE or UNSUBSCRIBE carrying one closes the connection (MQTT 5 first
 * gets DISCONNECT 0x81 Malformed Packet), nothing of it is stored, and the server goes on serving. A whole server with
 * SQLite, raw packets over TCP.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import mqttPacket, { type Packet } from 'mqtt-packet';
import { isMqttUtf8 } from '../../../src/transports/mqtt/utf8.ts';
import { createDevice, startTestServer, type TestServer } from './e2e-support.ts';
import { WireClient } from './wire-client.ts';

/** `packet` encoded, with the ASCII placeholder `marker` (in a topic) replaced by `bytes` of the same length. */
function withBytes(packet: Record<string, unknown>, version: 4 | 5, marker: string, bytes: number[]): Buffer {
  assert.equal(marker.length, bytes.length);
  const frame = mqttPacket.generate(packet as unknown as Packet, { protocolVersion: version });
  const at = frame.indexOf(marker);
  assert.ok(at > 0, 'the marker is in the frame');
  Buffer.from(bytes).copy(frame, at);
  return frame;
}

const ILL_FORMED: [string, number[]][] = [
  ['a byte that is never UTF-8', [0xff, 0x41]],
  ['a truncated sequence', [0xc3, 0x41]],
  ['an overlong "/"', [0xc0, 0xaf]],
  ['a surrogate', [0xed, 0xa0, 0x80]],
  ['a code point past U+10FFFF', [0xf4, 0x90, 0x80, 0x80]],
  ['U+0000', [0x00, 0x41]],
];

describe('isMqttUtf8', () => {
  it('accepts well-formed UTF-8 without U+0000 and refuses the rest', () => {
    for (const text of ['', 'v1/devices/me/telemetry', 'é/日本/😀', '\uFFFD', '\u0001']) assert.equal(isMqttUtf8(Buffer.from(text), 0, Buffer.byteLength(text)), true, JSON.stringify(text));
    for (const [what, bytes] of ILL_FORMED) assert.equal(isMqttUtf8(Buffer.from([0x61, ...bytes, 0x62]), 0, bytes.length + 2), false, what);
    assert.equal(isMqttUtf8(Buffer.from([0xff, 0x61, 0x62, 0xff]), 1, 3), true, 'only the range is read');
  });
});

describe('MQTT topics that are not well-formed UTF-8', () => {
  let server: TestServer;
  const clients: WireClient[] = [];

  before(async () => {
    server = await startTestServer({ logLevel: 'silent' });
  });

  after(async () => {
    for (const c of clients) c.destroy();
    await server.close();
  });

  let serial = 0;
  async function connected(version: 4 | 5): Promise<{ client: WireClient; deviceId: string }> {
    const { device, token } = await createDevice(server, `utf8-${version}-${++serial}`);
    const client = await WireClient.tcp(server.mqttPort, version);
    clients.push(client);
    const connack = await client.connect({ username: token });
    assert.equal(version === 5 ? connack.reasonCode : connack.returnCode, 0);
    return { client, deviceId: device.id };
  }

  /** The connection closes; on MQTT 5 its last packet is DISCONNECT 0x81; nothing else (no PUBACK, no SUBACK) came. */
  async function closedAsMalformed(client: WireClient, version: 4 | 5): Promise<void> {
    const left = await client.waitClosed();
    assert.deepEqual(
      left.map((p) => [p.cmd, (p as { reasonCode?: number }).reasonCode]),
      version === 5 ? [['disconnect', 0x81]] : [],
    );
  }

  async function stillServes(version: 4 | 5): Promise<void> {
    const { client, deviceId } = await connected(version);
    const ack = await client.publish('v1/devices/me/telemetry', '{"ok":1}', 1, 9);
    assert.equal(ack!.cmd, 'puback');
    assert.deepEqual(Object.keys(await server.core.timeseries.latest(deviceId)), ['ok']);
    client.destroy();
  }

  for (const version of [4, 5] as const) {
    for (const [what, bytes] of ILL_FORMED) {
      it(`v${version}: a PUBLISH whose topic holds ${what} closes the connection and stores nothing`, async () => {
        const { client, deviceId } = await connected(version);
        const marker = 'X'.repeat(bytes.length);
        // The device's last topic was the telemetry topic: the ill-formed one differs from it in a few bytes only.
        assert.equal((await client.publish('v1/devices/me/telemetry', '{"first":1}', 1, 1))!.cmd, 'puback');
        client.raw(withBytes({ cmd: 'publish', topic: `v1/devices/me/telemetry${marker}`, payload: '{"second":2}', qos: 1, messageId: 2, retain: false, dup: false }, version, marker, bytes));
        await closedAsMalformed(client, version);
        assert.deepEqual(Object.keys(await server.core.timeseries.latest(deviceId)), ['first']);
      });
    }

    it(`v${version}: a SUBSCRIBE with an ill-formed filter among good ones closes the connection without SUBACK`, async () => {
      const { client } = await connected(version);
      const subscribe = { cmd: 'subscribe', messageId: 3, subscriptions: [{ topic: 'v1/devices/me/rpc/request/+', qos: 1 }, { topic: 'v1/devices/me/attributesXX', qos: 1 }] };
      client.raw(withBytes(subscribe, version, 'XX', [0xc3, 0x28]));
      await closedAsMalformed(client, version);
    });

    it(`v${version}: an UNSUBSCRIBE with a filter holding U+0000 closes the connection without UNSUBACK`, async () => {
      const { client } = await connected(version);
      client.raw(withBytes({ cmd: 'unsubscribe', messageId: 4, unsubscriptions: ['v1/devices/me/attributesX'] }, version, 'X', [0x00]));
      await closedAsMalformed(client, version);
    });

    it(`v${version}: well-formed non-ASCII topics and filters are served as before (unknown topic: PUBACK, SUBACK failure)`, async () => {
      const { client } = await connected(version);
      const ack = await client.publish('v1/devices/me/ü\uFFFD', '{"a":1}', 1, 5);
      assert.equal(ack!.cmd, 'puback');
      if (version === 5) assert.equal(ack!.reasonCode, 0x90);
      const suback = await client.subscribe([['v1/devices/me/日本', 1]], 6);
      assert.deepEqual(suback.granted, [version === 5 ? 0x8f : 0x80]);
      assert.equal(client.closed, false);
      client.destroy();
    });

    it(`v${version}: the server still serves devices afterwards`, () => stillServes(version));
  }
});
