/**
 * ThingsBoard's MQTT gateway API on one node (SQLite, in-memory bus) with MQTT.js, ThingsBoard's own gateway tests
 * ported (gateway spec §6 items 1, 2, 6, 7, 9, 13, 14, 21): sub-devices created on first sight, data stored, attribute
 * requests answered, shared pushes and RPCs delivered through the gateway, pending RPCs kept across a reconnect.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { MqttClient } from 'mqtt';
import { adminClient, type AdminClient } from '../../../admin/admin-client.ts';
import { mqttjs, startTestServer, TENANT, type TestServer } from '../e2e-support.ts';
import { collect, createGateway, eventually, publishAck } from './gateway-support.ts';

describe('MQTT gateway API on one node', () => {
  let server: TestServer;
  let api: AdminClient;
  let gateway: { id: string; token: string };
  let gw: MqttClient;
  const clients: MqttClient[] = [];

  const device = (name: string) => server.core.devices.findByName(TENANT, name);
  const latest = async (name: string) => (await api.get(`/api/plugins/telemetry/DEVICE/${(await device(name)).id}/values/timeseries?useStrictDataTypes=true`)).json;
  const connect = async (version: 4 | 5 = 5) => {
    const client = await mqttjs(server, { username: gateway.token, protocolVersion: version });
    clients.push(client);
    return client;
  };

  before(async () => {
    server = await startTestServer({ logLevel: 'warn' });
    api = await adminClient(server);
    gateway = await createGateway(server, 'Gateway 1');
    gw = await connect();
  });

  after(async () => {
    await Promise.allSettled(clients.map((c) => c.endAsync(true)));
    await server.close();
  });

  test('testPushTelemetryGateway: two devices, two samples each, in one PUBLISH: both created, every point stored', async () => {
    const samples = (base: number) => [
      { ts: 10000, values: { key1: 'value1', key2: true, key3: 3.0, key4: 4, key5: { someNumber: 42 } } },
      { ts: 20000, values: { key1: `v${base}`, key2: false, key3: 3.5, key4: base, key5: { someArray: [1, 2] } } },
    ];
    const batchesBefore = server.core.committer.stats.batches;
    const ack = await publishAck(gw, 'v1/gateway/telemetry', { 'Device A': samples(1), 'Device B': samples(2) });
    assert.equal(ack.reasonCode, 0);
    assert.equal(server.core.committer.stats.batches - batchesBefore, 1, 'one group commit for the whole message, before its PUBACK');
    for (const [name, base] of [['Device A', 1], ['Device B', 2]] as const) {
      const d = await device(name);
      assert.equal(d.additionalInfo?.lastConnectedGateway, gateway.id);
      assert.equal(d.type, 'default');
      const series = (await api.get(`/api/plugins/telemetry/DEVICE/${d.id}/values/timeseries?keys=key1,key2,key3,key4,key5&startTs=0&endTs=30000&useStrictDataTypes=true`)).json;
      assert.deepEqual(series.key1, [{ ts: 20000, value: `v${base}` }, { ts: 10000, value: 'value1' }]);
      assert.deepEqual(series.key2, [{ ts: 20000, value: false }, { ts: 10000, value: true }]);
      assert.deepEqual(series.key4, [{ ts: 20000, value: base }, { ts: 10000, value: 4 }]);
      assert.equal(series.key3.length, 2);
      assert.equal(series.key5.length, 2);
    }
  });

  test('testGatewayConnect: connect with a type creates the device with the profile of that name', async () => {
    assert.equal((await publishAck(gw, 'v1/gateway/connect', { device: 'Thermostat 7', type: 'Thermostats' })).reasonCode, 0);
    const d = await device('Thermostat 7');
    assert.equal(d.type, 'Thermostats');
    const profile = await server.core.profiles.get(TENANT, d.profileId);
    assert.equal(profile.name, 'Thermostats');
    assert.equal(profile.isDefault, false);
    // spec §2.2: a second connect for an open name ignores the type.
    assert.equal((await publishAck(gw, 'v1/gateway/connect', { device: 'Thermostat 7', type: 'Other' })).reasonCode, 0);
    assert.equal((await device('Thermostat 7')).type, 'Thermostats');
  });

  test('sub-devices appear in the device list with their gateway', async () => {
    const page = (await api.get('/api/tenant/devices?pageSize=100&page=0')).json;
    const sub = page.data.find((d: any) => d.name === 'Device A');
    assert.equal(sub.additionalInfo.lastConnectedGateway, gateway.id);
    const gwRow = page.data.find((d: any) => d.name === 'Gateway 1');
    assert.equal(gwRow.additionalInfo.gateway, true);
  });

  test('testPushAttributesGateway: client attributes of two devices in one PUBLISH', async () => {
    const attrs = '{"attr1":"value1","attr2":true,"attr3":42.0,"attr4":73,"attr5":{"someNumber":42}}';
    assert.equal((await publishAck(gw, 'v1/gateway/attributes', `{"Device A":${attrs},"Device C":${attrs}}`)).reasonCode, 0);
    for (const name of ['Device A', 'Device C']) {
      const entries = await server.core.attributes.get((await device(name)).id, 'CLIENT_SCOPE');
      assert.deepEqual(entries.map((e) => e.key).sort(), ['attr1', 'attr2', 'attr3', 'attr4', 'attr5']);
      assert.deepEqual(entries.find((e) => e.key === 'attr3')!.value, { type: 'DOUBLE', value: 42 });
    }
  });

  test('testRequestAttributesValuesFromTheServerGateway: key -> value, keys -> values, unknown keys left out', async () => {
    const id = (await device('Device A')).id;
    await api.post(`/api/plugins/telemetry/DEVICE/${id}/attributes/SHARED_SCOPE`, { shared1: 'hello', shared2: 5 });
    const responses = collect(gw, 'v1/gateway/attributes/response');
    await new Promise<void>((resolve, reject) => gw.subscribe('v1/gateway/attributes/response', { qos: 1 }, (err) => (err ? reject(err) : resolve())));
    const ask = (body: object) => publishAck(gw, 'v1/gateway/attributes/request', body);
    assert.equal((await ask({ id: 1, device: 'Device A', client: true, keys: ['attr1', 'attr4', 'undefined'] })).reasonCode, 0);
    assert.equal((await ask({ id: 2, device: 'Device A', client: false, key: 'shared1' })).reasonCode, 0);
    assert.equal((await ask({ id: 3, device: 'Device A', client: false, keys: ['nothing'] })).reasonCode, 0);
    const answers = await responses.waitFor(3);
    const byId = new Map(answers.map((a) => [a.id, a]));
    assert.deepEqual(byId.get(1), { id: 1, device: 'Device A', values: { attr1: 'value1', attr4: 73 } });
    assert.deepEqual(byId.get(2), { id: 2, device: 'Device A', value: 'hello' });
    assert.deepEqual(byId.get(3), { id: 3, device: 'Device A' });
  });

  test('testJsonSubscribeToAttributesUpdatesFromTheServerGateway: shared updates and deletions as {"device","data"}', async () => {
    const pushes = collect(gw, 'v1/gateway/attributes');
    await publishAck(gw, 'v1/gateway/connect', { device: 'Pushed', type: 'Sensors' });
    const id = (await device('Pushed')).id;
    assert.equal((await api.post(`/api/plugins/telemetry/DEVICE/${id}/attributes/SHARED_SCOPE`, { sharedStr: 'value1', sharedJson: { a: 1 } })).status, 200);
    assert.equal((await api.delete(`/api/plugins/telemetry/DEVICE/${id}/SHARED_SCOPE?keys=sharedJson`)).status, 200);
    const [update, deletion] = await pushes.waitFor(2);
    assert.deepEqual(update, { device: 'Pushed', data: { sharedStr: 'value1', sharedJson: { a: 1 } } });
    assert.deepEqual(deletion, { device: 'Pushed', data: { deleted: ['sharedJson'] } });
  });

  test('testGatewayServerMqttOneWayRpc and TwoWayRpc: the admin API reaches the sub-device through the gateway', async () => {
    const rpcs = collect(gw, 'v1/gateway/rpc');
    const id = (await device('Device B')).id;
    const oneway = await api.post(`/api/plugins/rpc/oneway/${id}`, { method: 'toggle_gpio', params: { pin: 1 } });
    assert.equal(oneway.status, 200);
    assert.equal(oneway.text, '');
    const [first] = await rpcs.waitFor(1);
    assert.equal(first.device, 'Device B');
    assert.deepEqual({ method: first.data.method, params: first.data.params }, { method: 'toggle_gpio', params: { pin: 1 } });
    assert.equal(typeof first.data.id, 'number');

    const twoway = api.post(`/api/plugins/rpc/twoway/${id}`, { method: 'getState', params: {}, timeout: 20000 });
    const [, request] = await rpcs.waitFor(2);
    assert.equal(request.data.method, 'getState');
    assert.equal((await publishAck(gw, 'v1/gateway/rpc', { device: 'Device B', id: request.data.id, data: { success: true } })).reasonCode, 0);
    const answered = await twoway;
    assert.equal(answered.status, 200);
    assert.deepEqual(answered.json, { success: true });
  });

  test('a persistent RPC queued while the gateway is away is delivered when it reconnects and publishes, without naming that device', async () => {
    const id = (await device('Device C')).id;
    await gw.endAsync();
    await eventually('the gateway session closed', () => server.core.sessionRegistry.sessionsOf(id).length === 0);
    const queued = await api.post(`/api/rpc/twoway/${id}`, { method: 'later', params: { x: 1 }, persistent: true, timeout: 60000 });
    assert.equal(queued.status, 200, queued.text);
    const rpcId = queued.json.rpcId;
    gw = await connect(4);
    const rpcs = collect(gw, 'v1/gateway/rpc');
    await gw.subscribeAsync('v1/gateway/rpc', { qos: 1 });
    assert.equal(server.core.sessionRegistry.sessionsOf(id).length, 0, 'nothing is sent before the gateway shows it runs');
    await publishAck(gw, 'v1/gateway/telemetry', { 'Device A': [{ alive: 1 }] });
    const [delivered] = await rpcs.waitFor(1);
    assert.equal(delivered.device, 'Device C');
    assert.equal(delivered.data.method, 'later');
    assert.equal((await publishAck(gw, 'v1/gateway/rpc', { device: 'Device C', id: delivered.data.id, data: { done: 1 } })).reasonCode, 0);
    await eventually('the RPC is SUCCESSFUL', async () => (await api.get(`/api/rpc/persistent/${rpcId}`)).json?.status === 'SUCCESSFUL');
    assert.deepEqual((await api.get(`/api/rpc/persistent/${rpcId}`)).json.response, { done: 1 });
  });

  test('a disconnected sub-device gets no pushes until the gateway names it again', async () => {
    await publishAck(gw, 'v1/gateway/connect', { device: 'Quiet' });
    assert.equal((await publishAck(gw, 'v1/gateway/disconnect', { device: 'Quiet' })).reasonCode, 0);
    const id = (await device('Quiet')).id;
    assert.equal(server.core.sessionRegistry.sessionsOf(id).length, 0);
    assert.equal((await publishAck(gw, 'v1/gateway/disconnect', { device: 'Never seen' })).reasonCode, 0, 'spec §2.3: unknown names are acknowledged');
    await publishAck(gw, 'v1/gateway/telemetry', { Quiet: [{ t: 1 }] });
    assert.equal(server.core.sessionRegistry.sessionsOf(id).length, 1, 'telemetry re-opens the sub-device session');
    assert.deepEqual((await latest('Quiet')).t?.[0]?.value, 1);
  });

  test('renaming and deleting a sub-device tells its gateway; a deleted name is created anew (testDeleteDevice, deviceCreationAfterDeleted)', async () => {
    const notices: any[] = [];
    gw.on('message', (topic, payload) => {
      if (topic.startsWith('v1/devices/me/rpc/request/')) notices.push(JSON.parse(payload.toString()));
    });
    await gw.subscribeAsync('v1/devices/me/rpc/request/+', { qos: 1 });
    const before = await device('Quiet');
    const renamed = await api.post('/api/device', { id: { entityType: 'DEVICE', id: before.id }, name: 'Quiet 2', additionalInfo: before.additionalInfo });
    assert.equal(renamed.status, 200, renamed.text);
    await eventually('the rename notice', () => notices.length >= 1);
    assert.deepEqual(notices[0], { method: 'gateway_device_renamed', params: { Quiet: 'Quiet 2' } });
    assert.equal((await api.delete(`/api/device/${before.id}`)).status, 200);
    await eventually('the delete notice', () => notices.length >= 2);
    assert.deepEqual(notices[1], { method: 'gateway_device_deleted', params: 'Quiet 2' });
    await eventually('the sub-device session ended', () => server.core.sessionRegistry.sessionsOf(before.id).length === 0);
    assert.equal((await publishAck(gw, 'v1/gateway/telemetry', { 'Quiet 2': [{ again: 1 }] })).reasonCode, 0);
    const reborn = await device('Quiet 2');
    assert.notEqual(reborn.id, before.id);
    assert.equal(reborn.additionalInfo?.lastConnectedGateway, gateway.id);
  });

  test('getSessionLimitsRpcForGatewayTest: a gateway\'s getSessionLimits also has gatewayRateLimits', async () => {
    const replies = collect(gw, 'v1/devices/me/rpc/response/5');
    await publishAck(gw, 'v1/devices/me/rpc/request/5', { method: 'getSessionLimits', params: {} });
    const [reply] = await replies.waitFor(1);
    assert.deepEqual(Object.keys(reply).sort(), ['gatewayRateLimits', 'maxInflightMessages', 'maxPayloadSize', 'rateLimits']);
    assert.deepEqual(reply.gatewayRateLimits, { messages: '', telemetryMessages: '', telemetryDataPoints: '' });
  });

  test('500 sub-devices in one PUBLISH (MQTT 3.1.1): one PUBACK after one commit, every device and point stored', async () => {
    const v3 = await connect(4);
    const body: Record<string, unknown[]> = {};
    for (let i = 0; i < 500; i++) body[`bulk-${i}`] = [{ ts: 1000 + i, values: { temperature: i, humidity: i / 2 } }];
    const batchesBefore = server.core.committer.stats.batches;
    assert.equal((await publishAck(v3, 'v1/gateway/telemetry', body)).reasonCode, 0);
    assert.equal(server.core.committer.stats.batches - batchesBefore, 1);
    assert.equal(await server.store.countSubDevices(gateway.id), (await server.core.devices.list(TENANT, { pageSize: 1000, page: 0 })).data.filter((d) => d.additionalInfo?.lastConnectedGateway === gateway.id).length);
    for (const i of [0, 250, 499]) {
      const values = await latest(`bulk-${i}`);
      assert.deepEqual(values.temperature, [{ ts: 1000 + i, value: i }]);
    }
    const attrs: Record<string, object> = {};
    for (let i = 0; i < 500; i++) attrs[`bulk-${i}`] = { firmware: `fw-${i}` };
    assert.equal((await publishAck(v3, 'v1/gateway/attributes', attrs)).reasonCode, 0);
    const entries = await server.core.attributes.get((await device('bulk-499')).id, 'CLIENT_SCOPE', ['firmware']);
    assert.deepEqual(entries[0].value, { type: 'STRING', value: 'fw-499' });
  });

  test('deleting a gateway ends its connection (MQTT 5 DISCONNECT 0x98); its sub-devices stay', async () => {
    const doomed = await createGateway(server, 'Doomed Gateway');
    const client = await mqttjs(server, { username: doomed.token, protocolVersion: 5 });
    clients.push(client);
    assert.equal((await publishAck(client, 'v1/gateway/connect', { device: 'Orphan' })).reasonCode, 0);
    const disconnected = new Promise<number | undefined>((resolve) => client.once('disconnect', (packet) => resolve(packet.reasonCode)));
    const closed = new Promise<void>((resolve) => client.once('close', () => resolve()));
    assert.equal((await api.delete(`/api/device/${doomed.id}`)).status, 200);
    assert.equal(await disconnected, 0x98);
    await closed;
    assert.equal((await device('Orphan')).additionalInfo?.lastConnectedGateway, doomed.id);
  });
});
