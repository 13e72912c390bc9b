/**
 * Every refusal of the gateway API (issue 14 item 5), with MQTT.js on MQTT 5 (PUBACK reason code + Reason String,
 * connection kept) and MQTT 3.1.1 (as ThingsBoard: the connection closes, or a non-gateway's message is dropped), and
 * in every case nothing of the refused message written.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { MqttClient } from 'mqtt';
import { createDevice, mqttjs, startTestServer, TENANT, type TestServer } from '../e2e-support.ts';
import { collect, createGateway, eventually, publishAck } from './gateway-support.ts';

describe('MQTT gateway API: bad input and limits', () => {
  let server: TestServer;
  const clients: MqttClient[] = [];
  let serial = 0;

  const exists = async (name: string) => (await server.store.findDeviceByName(TENANT, name)) !== undefined;
  const gatewayClient = async (version: 4 | 5 = 5) => {
    const gateway = await createGateway(server, `gw-${++serial}`);
    const client = await mqttjs(server, { username: gateway.token, protocolVersion: version });
    clients.push(client);
    return { client, gateway };
  };
  const closed = (client: MqttClient) => new Promise<void>((resolve) => (client.disconnected ? resolve() : client.once('close', () => resolve())));

  before(async () => {
    server = await startTestServer({
      logLevel: 'warn',
      gatewayMaxSubDevices: 3,
      gatewayMaxDevicesPerMessage: 5,
      gatewayMaxDeviceNameLength: 16,
      deviceMessageRate: '1:2',
    });
  });

  after(async () => {
    await Promise.allSettled(clients.map((c) => c.endAsync(true)));
    await server.close();
  });

  test('a device that is not a gateway: MQTT 5 PUBACK 0x87 with the reason, connection kept', async () => {
    const { token } = await createDevice(server, 'plain-v5');
    const client = await mqttjs(server, { username: token, protocolVersion: 5 });
    clients.push(client);
    const ack = await publishAck(client, 'v1/gateway/telemetry', { 'not-created-1': [{ t: 1 }] });
    assert.equal(ack.reasonCode, 0x87);
    assert.match(ack.reasonString ?? '', /not a gateway/);
    assert.equal(await exists('not-created-1'), false);
    assert.equal((await publishAck(client, 'v1/devices/me/telemetry', { t: 1 })).reasonCode, 0, 'the connection still works');
  });

  test('a device that is not a gateway on MQTT 3.1.1: dropped without PUBACK as ThingsBoard, connection kept', async () => {
    const { token } = await createDevice(server, 'plain-v3');
    const client = await mqttjs(server, { username: token, protocolVersion: 4 });
    clients.push(client);
    assert.deepEqual(await client.subscribeAsync('v1/gateway/rpc', { qos: 1 }), [{ topic: 'v1/gateway/rpc', qos: 1 }], 'spec §1.6: SUBSCRIBE granted');
    let gatewayAcked = false;
    void publishAck(client, 'v1/gateway/telemetry', { 'not-created-2': [{ t: 1 }] }).then(() => (gatewayAcked = true), () => {});
    // PUBACKs go out in arrival order: once the later publish is acknowledged, the earlier one never will be.
    assert.equal((await publishAck(client, 'v1/devices/me/telemetry', { t: 1 })).reasonCode, 0);
    await new Promise((r) => setImmediate(r));
    assert.equal(gatewayAcked, false);
    assert.equal(await exists('not-created-2'), false);
  });

  test('malformed JSON: MQTT 5 PUBACK 0x99 with the parser error; MQTT 3.1.1 closed; nothing created', async () => {
    const { client } = await gatewayClient(5);
    const ack = await publishAck(client, 'v1/gateway/telemetry', '{"bad-json-1": [{"t":1}]');
    assert.equal(ack.reasonCode, 0x99);
    assert.match(ack.reasonString ?? '', /Invalid JSON/);
    assert.equal((await publishAck(client, 'v1/gateway/connect', '{"device":')).reasonCode, 0x99);
    assert.equal(await exists('bad-json-1'), false);
    // QoS 0: nothing to acknowledge, the connection goes on.
    client.publish('v1/gateway/telemetry', 'not json', { qos: 0 });
    assert.equal((await publishAck(client, 'v1/gateway/connect', { device: 'after-qos0' })).reasonCode, 0);

    const v3 = (await gatewayClient(4)).client;
    const gone = closed(v3);
    await assert.rejects(publishAck(v3, 'v1/gateway/telemetry', '{"bad-json-2": [{"t":1}]'));
    await gone;
    assert.equal(await exists('bad-json-2'), false);
  });

  test('a wrong shape refuses the whole message: nothing half-written (0x83 naming the device)', async () => {
    const { client } = await gatewayClient(5);
    const ack = await publishAck(client, 'v1/gateway/telemetry', { 'good-1': [{ t: 1 }], 'bad-1': { t: 2 } });
    assert.equal(ack.reasonCode, 0x83);
    assert.match(ack.reasonString ?? '', /bad-1.*array/);
    assert.equal(await exists('good-1'), false);
    for (const [topic, body, why] of [
      ['v1/gateway/connect', { type: 'x' }, /"device" must be a string/],
      ['v1/gateway/connect', { device: '  ' }, /Device name is empty/],
      ['v1/gateway/attributes', { 'good-2': { a: 1 }, 'bad-2': [1] }, /bad-2/],
      ['v1/gateway/attributes/request', { id: 1, device: 'x', keys: ['a'] }, /"client"/],
      ['v1/gateway/rpc', { device: 'x', id: 1 }, /"data" is required/],
      ['v1/gateway/telemetry', [1, 2], /JSON object/],
      ['v1/gateway/telemetry', {}, /no device entry/],
    ] as const) {
      const refused = await publishAck(client, topic, body);
      assert.equal(refused.reasonCode, 0x83, `${topic} ${JSON.stringify(body)}`);
      assert.match(refused.reasonString ?? '', why);
    }
    assert.equal(await exists('good-2'), false);

    const v3 = (await gatewayClient(4)).client;
    const gone = closed(v3);
    await assert.rejects(publishAck(v3, 'v1/gateway/telemetry', { 'good-3': [{ t: 1 }], 'bad-3': 5 }));
    await gone;
    assert.equal(await exists('good-3'), false);
  });

  test('a gateway may not speak for a device that is not its sub-device (fleetgate; ThingsBoard adopts it)', async () => {
    const direct = await createDevice(server, 'direct-1');
    const { client: first } = await gatewayClient(5);
    assert.equal((await publishAck(first, 'v1/gateway/connect', { device: 'owned-1' })).reasonCode, 0);
    const { client } = await gatewayClient(5);
    for (const name of ['direct-1', 'owned-1', 'gw-1']) {
      const ack = await publishAck(client, 'v1/gateway/telemetry', { 'fresh-1': [{ t: 1 }], [name]: [{ t: 1 }] });
      assert.equal(ack.reasonCode, 0x87, name);
      assert.match(ack.reasonString ?? '', new RegExp(`"${name}" exists and is not a sub-device of this gateway`));
    }
    assert.equal(await exists('fresh-1'), false, 'the other device of the refused message was not created');
    assert.deepEqual(await server.core.timeseries.keys(direct.device.id), []);
    const owned = await server.core.devices.findByName(TENANT, 'owned-1');
    assert.deepEqual(await server.core.timeseries.keys(owned.id), []);
    assert.notEqual(owned.additionalInfo?.lastConnectedGateway, undefined);
  });

  test('an unknown sub-device in an attribute request or an RPC reply: 0x83, nothing created', async () => {
    const { client } = await gatewayClient(5);
    const request = await publishAck(client, 'v1/gateway/attributes/request', { id: 1, device: 'ghost-1', client: true, key: 'a' });
    assert.equal(request.reasonCode, 0x83);
    assert.match(request.reasonString ?? '', /"ghost-1" is not a sub-device of this gateway/);
    const reply = await publishAck(client, 'v1/gateway/rpc', { device: 'ghost-2', id: 5, data: { ok: true } });
    assert.equal(reply.reasonCode, 0x83);
    assert.equal(await exists('ghost-1'), false);
    assert.equal(await exists('ghost-2'), false);
  });

  test('limits: devices per message, sub-devices per gateway, name length (0x97, 0x97, 0x83), nothing created', async () => {
    const { client, gateway } = await gatewayClient(5);
    const six = Object.fromEntries(Array.from({ length: 6 }, (_, i) => [`many-${i}`, [{ t: 1 }]]));
    const tooMany = await publishAck(client, 'v1/gateway/telemetry', six);
    assert.equal(tooMany.reasonCode, 0x97);
    assert.match(tooMany.reasonString ?? '', /6 devices in one message, more than the limit of 5/);
    assert.equal(await exists('many-0'), false);

    const four = Object.fromEntries(Array.from({ length: 4 }, (_, i) => [`sub-${i}`, [{ t: 1 }]]));
    const overQuota = await publishAck(client, 'v1/gateway/telemetry', four);
    assert.equal(overQuota.reasonCode, 0x97);
    assert.match(overQuota.reasonString ?? '', /limit of 3/);
    assert.equal(await server.store.countSubDevices(gateway.id), 0);
    const three = Object.fromEntries(Array.from({ length: 3 }, (_, i) => [`sub-${i}`, [{ t: 1 }]]));
    assert.equal((await publishAck(client, 'v1/gateway/telemetry', three)).reasonCode, 0);
    assert.equal((await publishAck(client, 'v1/gateway/connect', { device: 'sub-3' })).reasonCode, 0x97);
    assert.equal(await server.store.countSubDevices(gateway.id), 3);

    const long = await publishAck(client, 'v1/gateway/connect', { device: 'x'.repeat(17) });
    assert.equal(long.reasonCode, 0x83);
    assert.match(long.reasonString ?? '', /longer than 16 characters/);
  });

  test('a sub-device over its message rate: MQTT 5 PUBACK 0x97 naming it plus a reason-150 notice; the gateway stays', async () => {
    const { client } = await gatewayClient(5);
    const notices = collect(client, 'v1/gateway/disconnect');
    assert.equal((await publishAck(client, 'v1/gateway/telemetry', { 'rate-1': [{ t: 1 }] })).reasonCode, 0);
    const limited = await publishAck(client, 'v1/gateway/telemetry', { 'rate-1': [{ t: 2 }], 'rate-2': [{ t: 2 }] });
    assert.equal(limited.reasonCode, 0x97);
    assert.match(limited.reasonString ?? '', /"rate-1" is over its message rate limit/);
    assert.equal(await exists('rate-2'), false, 'the refused message created nothing');
    assert.deepEqual((await notices.waitFor(1))[0], { device: 'rate-1', reason: 150 });
    assert.equal((await publishAck(client, 'v1/gateway/telemetry', { 'rate-2': [{ t: 3 }] })).reasonCode, 0, 'the other sub-device goes on');
    const rate2 = await server.core.devices.findByName(TENANT, 'rate-2');
    assert.deepEqual((await server.core.timeseries.latest(rate2.id)).t.map((p) => p.value), [{ type: 'LONG', value: 3 }]);
  });

  test('a sub-device over its message rate on MQTT 3.1.1: the message waits for the rate instead of closing the gateway', async () => {
    const { client } = await gatewayClient(4);
    assert.equal((await publishAck(client, 'v1/gateway/telemetry', { 'slow-1': [{ ts: 1, values: { n: 1 } }] })).reasonCode, 0);
    assert.equal((await publishAck(client, 'v1/gateway/telemetry', { 'slow-1': [{ ts: 2, values: { n: 2 } }] })).reasonCode, 0);
    assert.equal(client.connected, true);
    const slow = await server.core.devices.findByName(TENANT, 'slow-1');
    assert.deepEqual((await server.core.timeseries.get(slow.id, { keys: ['n'], startTs: 0, endTs: 10 })).n.map((p) => p.ts), [2, 1]);
  });

  test('claim and unknown gateway topics: 0x90 with the reason; v1/gateway/# cannot be subscribed', async () => {
    const { client } = await gatewayClient(5);
    const claim = await publishAck(client, 'v1/gateway/claim', { 'claim-1': { secretKey: 'x', durationMs: 60000 } });
    assert.equal(claim.reasonCode, 0x90);
    assert.match(claim.reasonString ?? '', /claiming is not supported/);
    assert.equal((await publishAck(client, 'v1/gateway/rpc/response', { device: 'x', id: 1, data: {} })).reasonCode, 0x90);
    assert.equal((await publishAck(client, 'v1/gatewayX', {})).reasonCode, 0x90);
    await assert.rejects(client.subscribeAsync('v1/gateway/#', { qos: 1 }), /Topic Filter invalid/);
    assert.equal(await exists('claim-1'), false);
    await eventually('connection still open', () => client.connected);
  });
});
