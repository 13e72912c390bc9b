/**
 * The MQTT 3.x telemetry hot path (issue 17): a PUBLISH to the connection's last topic, a telemetry topic, is handled
 * straight from its frame (publish.ts handleTelemetryFrame) and its payload read from the frame's bytes
 * (core/telemetry-json-bytes.ts). Over real TCP against a whole server on SQLite: two devices pipelining frames into
 * one chunk and byte by byte, topics and QoS levels mixed, payloads the byte reader leaves to the general path among
 * them — every point is stored for the device that sent it with its own values, PUBACKs come in order, and a
 * malformed frame after telemetry still closes the connection.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import mqttPacket from 'mqtt-packet';
import { createDevice, startTestServer, type TestServer } from './e2e-support.ts';
import { WireClient } from './wire-client.ts';

let server: TestServer;
before(async () => {
  server = await startTestServer({ logLevel: 'warn' });
});
after(() => server.close());

const TELEMETRY = 'v1/devices/me/telemetry';
const publish = (topic: string, payload: string, qos: 0 | 1 | 2, messageId?: number) =>
  mqttPacket.generate({ cmd: 'publish', topic, payload: Buffer.from(payload), qos, messageId, retain: false, dup: false } as never, { protocolVersion: 4 });

/** Connects a device session over TCP. */
async function deviceClient(name: string): Promise<{ client: WireClient; deviceId: string }> {
  const { device, token } = await createDevice(server, name);
  const client = await WireClient.tcp(server.mqttPort, 4);
  assert.equal((await client.connect({ clientId: name, username: token })).returnCode, 0);
  return { client, deviceId: device.id };
}

/** A device's stored values of `key`, oldest first. */
async function stored(deviceId: string, key: string): Promise<{ ts: number; value: unknown }[]> {
  const series = await server.core.timeseries.get(deviceId, { keys: [key], startTs: 0, endTs: 2 ** 52, limit: 10_000, orderBy: 'ASC' });
  return (series[key] ?? []).map(({ ts, value }) => ({ ts, value: value.value }));
}

describe('MQTT 3.x telemetry read from its frames', () => {
  for (const mode of ['one chunk', 'byte by byte']) {
    it(`two devices pipelining mixed topics and QoS (${mode}): each device's own points, PUBACKs in order`, async () => {
      const devices = await Promise.all(['a', 'b'].map((tag) => deviceClient(`frames-${mode.replace(/ /g, '-')}-${tag}`)));
      const sends = devices.map(({ client }, d) => {
        const frames: Buffer[] = [];
        const acked: number[] = [];
        for (let i = 0; i < 60; i++) {
          const ts = 1_000 + i;
          const qos = (i % 7 === 3 ? 0 : i % 11 === 5 ? 2 : 1) as 0 | 1 | 2;
          const id = i + 1;
          if (qos > 0) acked.push(id);
          if (i % 10 === 9) frames.push(publish('v1/devices/me/attributes', `{"attr${d}":${i}}`, qos, qos > 0 ? id : undefined));
          else if (i % 13 === 6) frames.push(publish(TELEMETRY, `{"ts":${ts},"values":{"n":${d * 1000 + i}.0,"obj":{"d":${d}}}}`, qos, qos > 0 ? id : undefined)); // the general path
          else frames.push(publish(TELEMETRY, `{"ts":${ts},"values":{"n":${d * 1000 + i},"t":${d}.5}}`, qos, qos > 0 ? id : undefined));
        }
        return { client, bytes: Buffer.concat(frames), acked };
      });
      if (mode === 'one chunk') for (const { client, bytes } of sends) client.raw(bytes);
      else {
        // Both devices' bytes interleaved, one byte a write: frames cut at every place, the devices' turns mixed.
        const longest = Math.max(...sends.map((s) => s.bytes.length));
        for (let at = 0; at < longest; at++) {
          for (const { client, bytes } of sends) if (at < bytes.length) client.raw(bytes.subarray(at, at + 1));
          if (at % 64 === 0) await new Promise((r) => setImmediate(r));
        }
      }
      for (const { client, acked } of sends) {
        const ids: number[] = [];
        for (const _ of acked) ids.push((await client.next('puback')).messageId as number);
        assert.deepEqual(ids, acked, 'PUBACKs in arrival order');
      }
      for (const [d, { deviceId }] of devices.entries()) {
        const expected = Array.from({ length: 60 }, (_, i) => i).filter((i) => i % 10 !== 9);
        assert.deepEqual(
          await stored(deviceId, 'n'),
          expected.map((i) => ({ ts: 1_000 + i, value: d * 1000 + i })),
          `device ${d}: every telemetry point, its own values`,
        );
        assert.deepEqual(
          (await stored(deviceId, 't')).map((p) => p.value),
          expected.filter((i) => i % 13 !== 6).map(() => d + 0.5),
        );
        assert.deepEqual((await stored(deviceId, 'obj')).map((p) => p.value), expected.filter((i) => i % 13 === 6).map(() => `{"d":${d}}`));
      }
      for (const { client } of devices) client.end();
    });
  }

  it('a malformed payload on the hot path still closes a 3.x connection, and nothing of it is stored', async () => {
    const { client, deviceId } = await deviceClient('frames-malformed');
    assert.equal((await client.publish(TELEMETRY, '{"ts":5,"values":{"m":1}}', 1, 1))?.messageId, 1);
    client.raw(publish(TELEMETRY, '{"ts":6,"values":{"m":2}', 1, 2)); // cut short: the general path answers MALFORMED
    const rest = await client.waitClosed();
    assert.deepEqual(rest.filter((p) => p.cmd === 'puback'), []);
    assert.deepEqual(await stored(deviceId, 'm'), [{ ts: 5, value: 1 }]);
  });

  it('a QoS 3 PUBLISH to the telemetry topic is a malformed packet, as before', async () => {
    const { client } = await deviceClient('frames-qos3');
    assert.equal((await client.publish(TELEMETRY, '{"q":1}', 1, 1))?.messageId, 1);
    const frame = publish(TELEMETRY, '{"q":2}', 1, 2);
    frame[0] |= 0x06; // both QoS bits set
    client.raw(frame);
    await client.waitClosed();
  });
});
