/**
 * Device-session topics over an in-memory duplex (spec §8.2): PUBACK after commit, attribute
 * requests, shared-attribute and RPC pushes, client RPC, v2 topics, unknown topics, QoS and aliases.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { connectInMemory, FakeCore } from './fake-core.ts';
import { settle } from './wire-client.ts';

async function deviceClient(version: 4 | 5 = 4, token = 'T1', core = new FakeCore()) {
  if (!core.devices.has(token)) core.addDevice(token);
  const { client, conn } = connectInMemory(core, version);
  await client.connect({ username: token });
  return { core, client, conn };
}

describe('MQTT device topics over an in-memory duplex', () => {
  it('acknowledges telemetry only after core committed it', async () => {
    const { core, client } = await deviceClient();
    let commit!: () => void;
    core.commitGate = new Promise((resolve) => (commit = resolve));
    client.send({ cmd: 'publish', topic: 'v1/devices/me/telemetry', payload: '{"temperature":21}', qos: 1, messageId: 3, retain: false, dup: false });
    await settle();
    assert.equal(client.received.length, 0, 'no PUBACK before the commit');
    commit();
    assert.equal((await client.next('puback')).messageId, 3);
    assert.deepEqual(core.telemetry, [{ deviceId: 'id-T1', json: '{"temperature":21}' }]);
  });

  it('sends PUBACKs in the order the PUBLISH packets arrived [MQTT-4.6.0-2]', async () => {
    const { core, client } = await deviceClient();
    let commit!: () => void;
    core.commitGate = new Promise((resolve) => (commit = resolve));
    client.send({ cmd: 'publish', topic: 'v1/devices/me/telemetry', payload: '{"a":1}', qos: 1, messageId: 1, retain: false, dup: false });
    client.send({ cmd: 'publish', topic: 'v1/devices/me/attributes', payload: '{"b":2}', qos: 1, messageId: 2, retain: false, dup: false });
    await settle();
    assert.equal(client.received.length, 0, 'the attributes ack waits behind the telemetry ack');
    commit();
    assert.equal((await client.next('puback')).messageId, 1);
    assert.equal((await client.next('puback')).messageId, 2);
  });

  it('closes a 3.1.1 connection on invalid telemetry JSON and answers 0x99 on 5 (spec §8.2)', async () => {
    const v3 = await deviceClient(4);
    v3.client.send({ cmd: 'publish', topic: 'v1/devices/me/telemetry', payload: '{bad', qos: 1, messageId: 1, retain: false, dup: false });
    assert.deepEqual(await v3.client.waitClosed(), []);
    const v5 = await deviceClient(5);
    assert.equal((await v5.client.publish('v1/devices/me/telemetry', '{bad'))!.reasonCode, 0x99);
    assert.equal((await v5.client.publish('v1/devices/me/telemetry', '{"ok":1}', 1, 2))!.reasonCode, 0);
  });

  it('answers an unknown topic with PUBACK 0x90 on 5 and a plain PUBACK on 3.1.1, keeping the connection', async () => {
    const v5 = await deviceClient(5);
    assert.equal((await v5.client.publish('v1/devices/me/nothing', '{}'))!.reasonCode, 0x90);
    const v3 = await deviceClient(4);
    assert.equal((await v3.client.publish('some/topic', '{}'))!.messageId, 1);
    v3.client.send({ cmd: 'pingreq' });
    await v3.client.next('pingresp');
  });

  it('saves client attributes', async () => {
    const { core, client } = await deviceClient();
    await client.publish('v1/devices/me/attributes', '{"fw":"1.0"}');
    assert.deepEqual(core.clientAttributes, [{ deviceId: 'id-T1', json: '{"fw":"1.0"}' }]);
  });

  it('answers attribute requests on the response topic, all keys when none are named', async () => {
    const { core, client } = await deviceClient();
    core.attributes = { client: { fw: '1.0' }, shared: {} };
    await client.subscribe([['v1/devices/me/attributes/response/+', 1]]);
    await client.publish('v1/devices/me/attributes/request/42', '{}');
    const response = await client.next('publish');
    assert.equal(response.topic, 'v1/devices/me/attributes/response/42');
    assert.equal(response.payload.toString(), '{"client":{"fw":"1.0"}}'); // empty parts omitted
    await client.publish('v1/devices/me/attributes/request/43', '{"sharedKeys":"a, b"}', 1, 2);
    await client.next('publish');
    assert.deepEqual(core.attributeQueries, [
      [undefined, undefined],
      [[], ['a', 'b']],
    ]);
  });

  it('answers the compact v2 topics in kind', async () => {
    const { core, client } = await deviceClient();
    await client.publish('v2/t', '{"a":1}');
    assert.equal(core.telemetry.length, 1);
    core.attributes = { shared: { s: 1 } };
    await client.publish('v2/a/req/5', '{"sharedKeys":"s"}', 1, 2);
    const response = await client.next('publish');
    assert.equal(response.topic, 'v2/a/res/5');
    assert.equal(response.payload.toString(), '{"shared":{"s":1}}');
  });

  it('pushes shared attribute updates and deletions to subscribers of v1/devices/me/attributes', async () => {
    const { core, client } = await deviceClient();
    assert.deepEqual((await client.subscribe([['v1/devices/me/attributes', 1]])).granted, [1]);
    assert.equal(core.pushAttributes('id-T1', { target: 22 }), 1);
    const update = await client.next('publish');
    assert.equal(update.topic, 'v1/devices/me/attributes');
    assert.equal(update.qos, 1);
    assert.equal(update.payload.toString(), '{"target":22}');
    client.send({ cmd: 'puback', messageId: update.messageId });
    core.pushAttributes('id-T1', { deleted: ['target'] });
    assert.equal((await client.next('publish')).payload.toString(), '{"deleted":["target"]}');
  });

  it('stops attribute pushes after UNSUBSCRIBE', async () => {
    const { core, client } = await deviceClient(5);
    await client.subscribe([['v1/devices/me/attributes', 0]]);
    client.send({ cmd: 'unsubscribe', messageId: 2, unsubscriptions: ['v1/devices/me/attributes', 'v1/devices/me/attributes', 'x/y'] });
    assert.deepEqual((await client.next('unsuback')).granted, [0x00, 0x11, 0x8f]);
    assert.equal(core.pushAttributes('id-T1', { a: 1 }), 0);
  });

  it('delivers server RPC, resolves delivery on PUBACK, and forwards the reply', async () => {
    const { core, client } = await deviceClient();
    await client.subscribe([['v1/devices/me/rpc/request/+', 1]]);
    const [delivered] = core.pushRpc('id-T1', { requestId: 7, method: 'setGpio', params: { pin: 4 } });
    let done = false;
    void delivered.then(() => (done = true));
    const request = await client.next('publish');
    assert.equal(request.topic, 'v1/devices/me/rpc/request/7');
    assert.equal(request.payload.toString(), '{"method":"setGpio","params":{"pin":4}}');
    await settle();
    assert.equal(done, false, 'not delivered before PUBACK');
    client.send({ cmd: 'puback', messageId: request.messageId });
    await delivered;
    await client.publish('v1/devices/me/rpc/response/7', '{"ok":true}', 1, 9);
    assert.deepEqual(core.rpcReplies, [{ deviceId: 'id-T1', requestId: 7, payload: '{"ok":true}' }]);
  });

  it('rejects pending RPC deliveries when the connection closes', async () => {
    const { core, client } = await deviceClient();
    await client.subscribe([['v1/devices/me/rpc/request/+', 1]]);
    const [delivered] = core.pushRpc('id-T1', { requestId: 1, method: 'm', params: {} });
    await client.next('publish');
    client.destroy();
    await assert.rejects(delivered);
  });

  it('pushes to every session of a device that holds several', async () => {
    const core = new FakeCore();
    const a = await deviceClient(4, 'T1', core);
    const b = await deviceClient(5, 'T1', core);
    await a.client.subscribe([['v1/devices/me/attributes', 0]]);
    await b.client.subscribe([['v1/devices/me/attributes', 1]]);
    assert.equal(core.pushAttributes('id-T1', { x: 1 }), 2);
    assert.equal((await a.client.next('publish')).qos, 0);
    assert.equal((await b.client.next('publish')).qos, 1);
  });

  it('answers the client-side RPC getSessionLimits', async () => {
    const { client } = await deviceClient();
    await client.subscribe([['v1/devices/me/rpc/response/+', 1]]);
    await client.publish('v1/devices/me/rpc/request/1', '{"method":"getSessionLimits","params":{}}');
    const reply = await client.next('publish');
    assert.equal(reply.topic, 'v1/devices/me/rpc/response/1');
    assert.deepEqual(JSON.parse(reply.payload.toString()), { maxPayloadSize: 65536, maxInflightMessages: 100, rateLimits: { messages: '', telemetryMessages: '', telemetryDataPoints: '' } });
  });

  it('answers other client-side RPC with {"error":"timeout"} after the client RPC timeout', async () => {
    const core = new FakeCore();
    core.addDevice('T1');
    const { client } = connectInMemory(core, 4, { clientRpcTimeoutMs: 20 });
    await client.connect({ username: 'T1' });
    await client.publish('v2/r/req/3', '{"method":"getTime","params":{}}');
    const reply = await client.next('publish');
    assert.equal(reply.topic, 'v2/r/res/3');
    assert.equal(reply.payload.toString(), '{"error":"timeout"}');
  });

  it('grants at most QoS 1 and refuses unsupported filters with 0x80 / 0x8F', async () => {
    const v3 = await deviceClient(4);
    assert.deepEqual((await v3.client.subscribe([['v1/devices/me/attributes', 2], ['#', 1], ['v1/devices/me/rpc/request/+', 0]])).granted, [1, 0x80, 0]);
    const v5 = await deviceClient(5);
    assert.deepEqual((await v5.client.subscribe([['v1/devices/me/telemetry', 1]])).granted, [0x8f]);
  });

  it('answers a QoS 2 PUBLISH with PUBACK on 3.1.1 and DISCONNECT 0x9B on 5 (spec §5.2)', async () => {
    const v3 = await deviceClient(4);
    v3.client.send({ cmd: 'publish', topic: 'v1/devices/me/telemetry', payload: '{"a":1}', qos: 2, messageId: 5, retain: false, dup: false });
    assert.equal((await v3.client.next('puback')).messageId, 5);
    const v5 = await deviceClient(5);
    v5.client.send({ cmd: 'publish', topic: 'v1/devices/me/telemetry', payload: '{"a":1}', qos: 2, messageId: 5, retain: false, dup: false });
    assert.equal((await v5.client.next('disconnect')).reasonCode, 0x9b);
  });

  it('resolves inbound topic aliases and refuses invalid ones', async () => {
    const { core, client } = await deviceClient(5);
    await client.publish('v1/devices/me/telemetry', '{"a":1}', 1, 1, { topicAlias: 3 });
    await client.publish('', '{"a":2}', 1, 2, { topicAlias: 3 });
    assert.equal(core.telemetry.length, 2);
    client.send({ cmd: 'publish', topic: 'v1/devices/me/telemetry', payload: '{}', qos: 0, retain: false, dup: false, properties: { topicAlias: 11 } });
    assert.equal((await client.next('disconnect')).reasonCode, 0x94);
  });

  it('refuses a packet larger than the maximum packet size (v5 DISCONNECT 0x95)', async () => {
    const { client } = await deviceClient(5);
    client.send({ cmd: 'publish', topic: 'v1/devices/me/telemetry', payload: Buffer.alloc(70000, 0x20), qos: 0, retain: false, dup: false });
    assert.equal((await client.next('disconnect')).reasonCode, 0x95);
    await client.waitClosed();
  });

  it('refuses a packet whose declared length is too large before it arrives', async () => {
    const { client } = await deviceClient(4);
    client.raw(Buffer.from([0x30, 0xff, 0xff, 0xff, 0x7f])); // PUBLISH announcing 256 MB
    await client.waitClosed();
  });

  it('closes on a malformed packet (v5 DISCONNECT 0x81)', async () => {
    const { client } = await deviceClient(5);
    client.raw(Buffer.from([0x36, 0x00])); // PUBLISH with both QoS bits set
    assert.equal((await client.next('disconnect')).reasonCode, 0x81);
  });

  it('closes on a SUBSCRIBE without filters (v5 DISCONNECT 0x82) [MQTT-3.8.3-3]', async () => {
    const { client } = await deviceClient(5);
    client.raw(Buffer.from([0x82, 0x03, 0x00, 0x01, 0x00]));
    assert.equal((await client.next('disconnect')).reasonCode, 0x82);
  });
});
