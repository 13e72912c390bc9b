/**
 * ThingsBoard API parity on two nodes (both in this process, each with its own store, bus and core) sharing one
 * PostgreSQL and one Redis: the default profile, device infos with `active` seen across nodes, and the default switch.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import mqtt from 'mqtt';
import { ADMIN_PASSWORD, startTestServer, type TestServer } from '../support/harness.ts';
import { skipUnlessPostgres, startPostgres, type TestPostgres } from '../support/postgres.ts';
import { skipUnlessRedis, startRedis, type TestRedis } from '../support/redis.ts';
import { adminClient, within, type AdminClient } from '../admin/admin-client.ts';
import { until } from './cluster-support.ts';

describe('API parity on two nodes (PostgreSQL + Redis)', { skip: skipUnlessPostgres() || skipUnlessRedis() }, () => {
  let pg: TestPostgres | undefined;
  let redis: TestRedis | undefined;
  let a: TestServer | undefined;
  let b: TestServer | undefined;
  let apiA: AdminClient;
  let apiB: AdminClient;

  before(async () => {
    [pg, redis] = await Promise.all([startPostgres(), startRedis()]);
    const database = await pg.createDatabase();
    // Started together on an empty database: migrations, the administrator and the default profile race.
    [a, b] = await Promise.all([
      startTestServer({ database, bus: redis.url, logLevel: 'warn' }),
      startTestServer({ database, bus: redis.url, logLevel: 'warn' }),
    ]);
    apiA = await adminClient(a);
    apiB = await adminClient(b);
  });

  after(async () => {
    await Promise.allSettled([a?.close(), b?.close()]);
    await Promise.allSettled([pg?.stop(), redis?.stop()]);
  });

  it('two nodes starting together on a fresh database create exactly one default profile', async () => {
    for (const api of [apiA, apiB]) {
      const infos = await api.get('/api/deviceProfileInfos?pageSize=10&page=0');
      assert.equal(infos.status, 200, infos.text);
      assert.deepEqual(infos.json.data.map((p: any) => p.name), ['default']);
      const def = await api.get('/api/deviceProfileInfo/default');
      assert.equal(def.json.name, 'default');
    }
    const full = await apiA.get('/api/deviceProfiles?pageSize=10&page=0');
    assert.equal(full.json.data[0].provisionType, 'DISABLED');
    assert.equal(full.json.data[0].default, true);
  });

  it('a device connected over MQTT to node B is active in node A\'s device infos, and its disconnect is recorded', async () => {
    const saved = (await apiA.post('/api/device?accessToken=cluster-infos-token', { name: 'Cluster active' })).json;
    await apiA.post('/api/device', { name: 'Cluster idle' });
    const before = (await apiA.get(`/api/device/info/${saved.id.id}`)).json;
    assert.equal(before.active, false);
    assert.equal(before.deviceProfileName, 'default');
    const client = await mqtt.connectAsync(`mqtt://127.0.0.1:${b!.mqttPort}`, { username: 'cluster-infos-token', reconnectPeriod: 0, connectTimeout: 10_000 });
    try {
      await until('node A sees the device active', async () => (await apiA.get(`/api/device/info/${saved.id.id}`)).json.active === true, 400);
      const active = await apiA.get('/api/tenant/deviceInfos?pageSize=10&page=0&active=true');
      assert.deepEqual(active.json.data.map((d: any) => d.name), ['Cluster active']);
      const inactive = await apiB.get('/api/tenant/deviceInfos?pageSize=10&page=0&active=false');
      assert.deepEqual(inactive.json.data.map((d: any) => d.name), ['Cluster idle']);
    } finally {
      await client.endAsync();
    }
    await until('node A sees the disconnect', async () => {
      const info = (await apiA.get(`/api/device/info/${saved.id.id}`)).json;
      return typeof info.lastDisconnectTime === 'number' && info.lastDisconnectTime >= info.lastConnectTime;
    }, 400);
  });

  it('a default switched on node A holds on node B: B reads it and gives it to devices saved without a profile', async () => {
    const created = (await apiA.post('/api/deviceProfile', { name: 'Cluster default' })).json;
    const switched = await apiA.post(`/api/deviceProfile/${created.id.id}/default`, undefined);
    assert.equal(switched.status, 200, switched.text);
    assert.equal((await apiB.get('/api/deviceProfileInfo/default')).json.id.id, created.id.id);
    const onB = (await apiB.post('/api/device', { name: 'Saved on B' })).json;
    assert.equal(onB.type, 'Cluster default');
    const types = await apiB.get('/api/device/types');
    assert.deepEqual(types.json.map((t: any) => t.type), ['Cluster default', 'default']);
    const defaults = (await apiB.get('/api/deviceProfiles?pageSize=100&page=0')).json.data.filter((p: any) => p.default);
    assert.equal(defaults.length, 1);
  });
  it('credentials replaced on node A end the MQTT session on node B; B refuses the old token at once', async () => {
    const device = (await apiA.post('/api/device?accessToken=cluster-old-token', { name: 'Cluster replace' })).json;
    const telemetryOnB = (token: string) =>
      fetch(`${b!.httpUrl}/api/v1/${token}/telemetry`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"x":1}' }).then((r) => r.status);
    assert.equal(await telemetryOnB('cluster-old-token'), 200, 'B has the old token in its auth cache now');
    const client = await mqtt.connectAsync(`mqtt://127.0.0.1:${b!.mqttPort}`, { username: 'cluster-old-token', reconnectPeriod: 0, connectTimeout: 10_000 });
    const closed = new Promise<void>((resolve) => client.once('close', () => resolve()));
    const current = (await apiA.get(`/api/device/${device.id.id}/credentials`)).json;
    const res = await apiA.post('/api/device/credentials', { ...current, credentialsId: 'cluster-new-token' });
    assert.equal(res.status, 200, res.text);
    await within(closed, 20_000, 'node B closing the MQTT connection');
    await until('node B refuses the old token', async () => (await telemetryOnB('cluster-old-token')) === 401, 400);
    assert.equal(await telemetryOnB('cluster-new-token'), 200);
    await assert.rejects(mqtt.connectAsync(`mqtt://127.0.0.1:${b!.mqttPort}`, { username: 'cluster-old-token', reconnectPeriod: 0, connectTimeout: 10_000 }));
    const again = await mqtt.connectAsync(`mqtt://127.0.0.1:${b!.mqttPort}`, { username: 'cluster-new-token', reconnectPeriod: 0, connectTimeout: 10_000 });
    await again.endAsync();
  });
  it('an API key made on node A works on node B; disabled on A it is refused by B at once', async () => {
    const userId = (await apiA.get('/api/auth/user')).json.id.id;
    const created = (await apiA.post('/api/apiKey', { userId: { entityType: 'USER', id: userId }, description: 'cluster', enabled: true })).json;
    const onB = (header: string) => fetch(`${b!.httpUrl}/api/tenant/deviceInfos?pageSize=1&page=0`, { headers: { 'x-authorization': header } }).then((r) => r.status);
    assert.equal(await onB(`ApiKey ${created.value}`), 200);
    assert.equal((await apiA.call('PUT', `/api/apiKey/${created.id.id}/enabled/false`)).status, 200);
    assert.equal(await onB(`ApiKey ${created.value}`), 401);
    assert.equal((await apiB.delete(`/api/apiKey/${created.id.id}`)).status, 200);
    assert.equal((await apiA.get(`/api/apiKeys/${userId}?pageSize=10&page=0`)).json.totalElements, 0);
  });

  it('telemetry a device sends to node B is aggregated by PostgreSQL for node A', async () => {
    const device = (await apiA.post('/api/device?accessToken=cluster-agg-token', { name: 'Cluster aggregation' })).json;
    const t0 = 1_700_000_000_000;
    const values = [4, 8, 15, 16, 23, 42];
    for (const [i, v] of values.entries()) {
      const res = await fetch(`${b!.httpUrl}/api/v1/cluster-agg-token/telemetry`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ ts: t0 + i * 1000, values: { v, half: v / 2 } }) });
      assert.equal(res.status, 200);
    }
    const base = `/api/plugins/telemetry/DEVICE/${device.id.id}/values/timeseries?keys=v,half&startTs=${t0}&endTs=${t0 + 6000}&interval=3000&useStrictDataTypes=true`;
    const avg = (await apiA.get(`${base}&agg=AVG`)).json;
    assert.deepEqual(avg.v, [{ ts: t0 + 1500, value: 9 }, { ts: t0 + 4500, value: 27 }]);
    const sum = (await apiA.get(`${base}&agg=SUM`)).json;
    assert.deepEqual(sum.v, [{ ts: t0 + 1500, value: 27 }, { ts: t0 + 4500, value: 81 }]);
    assert.deepEqual(sum.half, [{ ts: t0 + 1500, value: 13.5 }, { ts: t0 + 4500, value: 40.5 }]);
    const max = (await apiA.get(`${base}&agg=MAX`)).json;
    assert.deepEqual(max.v.map((p: any) => p.value), [15, 42]);
    const count = (await apiA.get(`${base}&agg=COUNT`)).json;
    assert.deepEqual(count.v.map((p: any) => p.value), [3, 3]);
  });

  it('a password changed on node A outdates the old token on node B', async () => {
    const oldToken = await b!.adminToken();
    const changed = await apiA.post('/api/auth/changePassword', { currentPassword: ADMIN_PASSWORD, newPassword: 'cluster-new-password' });
    assert.equal(changed.status, 200, changed.text);
    const outdated = await apiB.get('/api/auth/user', { token: oldToken });
    assert.equal(outdated.status, 401);
    assert.equal(outdated.json.errorCode, 11);
    assert.equal((await apiB.get('/api/auth/user', { token: changed.json.token })).status, 200);
  });
});
