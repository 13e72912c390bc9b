/**
 * A Reason String longer than 124 bytes (a long device name in it) needs Variable Byte Integer lengths in the PUBACK
 * (MQTT 5.0 §1.5.5, §2.2.2.1): MQTT.js parses the PUBACK and sees the whole reason, and the connection goes on.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { MqttClient } from 'mqtt';
import { createDevice, mqttjs, startTestServer, type TestServer } from '../e2e-support.ts';
import { createGateway, publishAck } from './gateway-support.ts';

describe('MQTT 5 PUBACK with a long Reason String', () => {
  let server: TestServer;
  let client: MqttClient | undefined;

  before(async () => {
    server = await startTestServer({ logLevel: 'warn' });
  });

  after(async () => {
    await client?.endAsync(true);
    await server.close();
  });

  test('a refusal naming a 200-character device reaches MQTT.js whole, and the connection keeps working', async () => {
    const name = `direct-${'ü'.repeat(96)}-end`; // 200 characters, 296 bytes of UTF-8
    await createDevice(server, name);
    const gateway = await createGateway(server, 'gw-long-reason');
    client = await mqttjs(server, { username: gateway.token, protocolVersion: 5 });
    const errors: Error[] = [];
    client.on('error', (err) => errors.push(err));
    const ack = await publishAck(client, 'v1/gateway/telemetry', { [name]: [{ t: 1 }] });
    assert.equal(ack.reasonCode, 0x87);
    assert.equal(ack.reasonString, `Device "${name}" exists and is not a sub-device of this gateway`);
    assert.equal((await publishAck(client, 'v1/gateway/connect', { device: 'sub-1' })).reasonCode, 0, 'the connection still works');
    assert.deepEqual(errors, []);
  });
});
