/**
 * Provision-only sessions over an in-memory duplex (spec §5.2, §5.5).
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { decodeProvisionResponseProto, encodeProvisionRequestProto } from '../../../src/core/provisioning/protobuf.ts';
import { connectInMemory, FakeCore } from './fake-core.ts';

const GOOD = JSON.stringify({ deviceName: 'dev-1', provisionDeviceKey: 'key', provisionDeviceSecret: 'secret' });

async function provisionClient(version: 4 | 5 = 4, limits = {}) {
  const core = new FakeCore();
  const { client, conn } = connectInMemory(core, version, limits);
  await client.connect({ username: 'provision' });
  return { core, client, conn };
}

describe('MQTT provision sessions over an in-memory duplex', () => {
  it('answers a JSON request on /provision/response after the PUBACK, even without a subscription', async () => {
    const { client } = await provisionClient();
    client.send({ cmd: 'publish', topic: '/provision/request', payload: GOOD, qos: 1, messageId: 1, retain: false, dup: false });
    const first = await client.next();
    assert.equal(first.cmd, 'puback');
    const response = await client.next('publish');
    assert.equal(response.topic, '/provision/response');
    assert.equal(response.qos, 1); // spec §5.2: QoS 1 when not subscribed
    const body = JSON.parse(response.payload.toString());
    assert.equal(body.status, 'SUCCESS');
    assert.equal(body.credentialsType, 'ACCESS_TOKEN');
    assert.equal(body.credentialsValue, 'tok-1');
  });

  it('answers NOT_FOUND with the ThingsBoard body and keeps the session', async () => {
    const { client } = await provisionClient();
    await client.subscribe([['/provision/response', 0]]);
    await client.publish('/provision/request', JSON.stringify({ provisionDeviceKey: 'x', provisionDeviceSecret: 'y' }));
    const response = await client.next('publish');
    assert.equal(response.qos, 0); // the granted QoS
    assert.match(response.payload.toString(), /^\{"errorMsg":"Provision data was not found!","status":"NOT_FOUND"/);
    await client.publish('/provision/request', GOOD, 1, 2);
    assert.equal(JSON.parse((await client.next('publish')).payload.toString()).status, 'SUCCESS');
  });

  it('falls back to protobuf and answers in protobuf for the rest of the session (spec §5.2)', async () => {
    const { core, client } = await provisionClient();
    const proto = encodeProvisionRequestProto({ provisionDeviceKey: 'key', provisionDeviceSecret: 'secret', deviceName: 'p1', gateway: true });
    await client.publish('/provision/request', proto);
    const answer = decodeProvisionResponseProto((await client.next('publish')).payload);
    assert.equal(answer.status, 'SUCCESS');
    assert.equal(answer.credentialsValue, 'tok-1');
    assert.equal(core.provisionRequests[0].gateway, true);
    await client.publish('/provision/request', GOOD, 1, 2); // JSON now, still answered in protobuf
    assert.equal(decodeProvisionResponseProto((await client.next('publish')).payload).status, 'SUCCESS');
  });

  it('answers an empty payload with the protobuf NOT_FOUND bytes 08 02 (spec §5.5)', async () => {
    const { client } = await provisionClient();
    await client.publish('/provision/request', Buffer.alloc(0));
    assert.deepEqual([...(await client.next('publish')).payload], [0x08, 0x02]);
  });

  it('accepts JSON null as absent (DESIGN 1)', async () => {
    const { core, client } = await provisionClient();
    await client.publish('/provision/request', JSON.stringify({ provisionDeviceKey: 'key', provisionDeviceSecret: 'secret', deviceName: 'n', clientId: null }));
    assert.equal(JSON.parse((await client.next('publish')).payload.toString()).status, 'SUCCESS');
    assert.equal(core.provisionRequests[0].clientId, undefined);
  });

  it('refuses JSON without provisionDeviceKey: v5 PUBACK 0x83 then DISCONNECT 0x83; 3.1.1 close (spec §5.5)', async () => {
    const v5 = await provisionClient(5);
    assert.equal((await v5.client.publish('/provision/request', '{"provisionDeviceSecret":"s"}'))!.reasonCode, 0x83);
    assert.equal((await v5.client.next('disconnect')).reasonCode, 0x83);
    const v3 = await provisionClient(4);
    v3.client.send({ cmd: 'publish', topic: '/provision/request', payload: '{"provisionDeviceSecret":"s"}', qos: 1, messageId: 1, retain: false, dup: false });
    assert.deepEqual(await v3.client.waitClosed(), []);
  });

  it('refuses a bad credentialsType the same way (spec §5.5)', async () => {
    const v5 = await provisionClient(5);
    const body = JSON.stringify({ provisionDeviceKey: 'key', provisionDeviceSecret: 'secret', credentialsType: 'FOO' });
    assert.equal((await v5.client.publish('/provision/request', body))!.reasonCode, 0x83);
    assert.equal((await v5.client.next('disconnect')).reasonCode, 0x83);
  });

  it('answers bytes that are neither JSON nor protobuf with PUBACK 0x99 on 5 and keeps the session; 3.1.1 closes', async () => {
    const garbage = Buffer.from([0xff, 0xff, 0xff]);
    const v5 = await provisionClient(5);
    assert.equal((await v5.client.publish('/provision/request', garbage))!.reasonCode, 0x99);
    await v5.client.publish('/provision/request', GOOD, 1, 2);
    assert.equal(JSON.parse((await v5.client.next('publish')).payload.toString()).status, 'SUCCESS');
    const v3 = await provisionClient(4);
    v3.client.send({ cmd: 'publish', topic: '/provision/request', payload: garbage, qos: 1, messageId: 1, retain: false, dup: false });
    await v3.client.waitClosed();
  });

  it('closes the session on a PUBLISH to another topic: PUBACK 0x90 and DISCONNECT 0x90 on 5 (spec §9 K53)', async () => {
    const v5 = await provisionClient(5);
    assert.equal((await v5.client.publish('v1/devices/me/telemetry', '{"a":1}'))!.reasonCode, 0x90);
    assert.equal((await v5.client.next('disconnect')).reasonCode, 0x90);
    await v5.client.waitClosed();
    const v3 = await provisionClient(4);
    assert.equal((await v3.client.publish('/provision', GOOD))!.cmd, 'puback');
    await v3.client.waitClosed();
  });

  it('grants /provision/response at most QoS 1 and refuses other filters (spec §9 K51)', async () => {
    const v5 = await provisionClient(5);
    assert.deepEqual((await v5.client.subscribe([['/provision/response', 1], ['v1/devices/me/attributes', 1]])).granted, [1, 0x8f]);
    const v3 = await provisionClient(4);
    assert.deepEqual((await v3.client.subscribe([['/provision/response', 2], ['v1/devices/me/attributes', 0]])).granted, [1, 0x80]);
  });

  it('answers UNSUBSCRIBE with 0x00, 0x11 and 0x8F on 5', async () => {
    const { client } = await provisionClient(5);
    await client.subscribe([['/provision/response', 1]]);
    client.send({ cmd: 'unsubscribe', messageId: 3, unsubscriptions: ['/provision/response', '/provision/response', 'other'] });
    assert.deepEqual((await client.next('unsuback')).granted, [0x00, 0x11, 0x8f]);
  });

  it('closes itself a configured time after the first answer (60 s by default, spec §5.2)', async () => {
    const { client } = await provisionClient(4, { provisionSessionTtlMs: 30 });
    await client.publish('/provision/request', GOOD);
    await client.next('publish');
    await client.waitClosed();
  });
});
