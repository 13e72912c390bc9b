/**
 * Packets pipelined over a real TCP socket, all in one chunk or one byte per chunk, through the hand decoders and
 * encoders (decode-fast.ts, encode.ts) and the batched write side (output.ts): a device session and a provision session
 * get every answer in order (CONNACK, SUBACK, PINGRESP, PUBACK, the provisioning response), and a DISCONNECT sent with
 * a PINGREQ in one chunk closes the connection at once, after the PINGRESP has left.
 */
import assert from 'node:assert/strict';
import { after, before, it } from 'node:test';
import mqttPacket from 'mqtt-packet';
import type { Config } from '../../../src/config.ts';
import { startMqttTransport, type MqttTransport } from '../../../src/transports/mqtt/index.ts';
import { FakeCore, silentLogger } from './fake-core.ts';
import { WireClient } from './wire-client.ts';

let core: FakeCore;
let transport: MqttTransport;
before(async () => {
  core = new FakeCore();
  core.addDevice('GOOD');
  transport = await startMqttTransport({ core: core.asCore(), config: {} as Config, logger: silentLogger, host: '127.0.0.1', port: 0 });
});
after(() => transport.close());

const g = (p: Record<string, unknown>, v = 4) => mqttPacket.generate(p as never, { protocolVersion: v });

for (const mode of ['one chunk', 'byte by byte', 'provision one chunk', 'provision byte by byte']) {
  it(`${mode.startsWith('provision') ? 'a provision session' : 'a device session'}, ${mode.replace('provision ', '')}: every answer in order, then DISCONNECT closes`, async () => {
    const client = await WireClient.tcp(transport.port, 4);
    const prov = mode.startsWith('provision');
    const bytes = Buffer.concat([
      g({ cmd: 'connect', protocolVersion: 4, protocolId: 'MQTT', clientId: prov ? 'provision' : 'c1', clean: true, keepalive: 30, username: prov ? 'provision' : 'GOOD' }),
      g({ cmd: 'subscribe', messageId: 7, subscriptions: [{ topic: prov ? '/provision/response' : 'v1/devices/me/attributes', qos: 1 }] }),
      g({ cmd: 'pingreq' }),
      g({ cmd: 'publish', topic: prov ? '/provision/request' : 'v1/devices/me/telemetry', payload: prov ? '{"provisionDeviceKey":"key","provisionDeviceSecret":"secret"}' : '{"a":1}', qos: 1, messageId: 9, retain: false, dup: false }),
    ]);
    if (mode.includes('byte')) {
      for (const b of bytes) {
        client.raw(Buffer.from([b]));
        await new Promise((r) => setImmediate(r)); // one TCP segment per byte (no coalescing in the client's buffer)
      }
    } else client.raw(bytes);
    assert.equal((await client.next('connack')).returnCode, 0);
    assert.deepEqual((await client.next('suback')).granted, [1]);
    await client.next('pingresp');
    assert.equal((await client.next('puback')).messageId, 9);
    if (prov) {
      const response = await client.next('publish');
      assert.equal(response.topic, '/provision/response');
      assert.equal(JSON.parse(String(response.payload)).status, 'SUCCESS');
      client.send({ cmd: 'puback', messageId: response.messageId });
    }
    client.raw(Buffer.concat([g({ cmd: 'pingreq' }), g({ cmd: 'disconnect' })]));
    const rest = await client.waitClosed();
    assert.deepEqual(rest.map((p) => p.cmd), ['pingresp']);
  });
}
