/**
 * ThingsBoard API parity on two nodes (both in this process, each with its own store, bus and core) sharing one
 * PostgreSQL and one Redis: the default profile, device infos with `active` seen across nodes, and the default switch.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import mqtt from 'mqtt';
import { startTestServer, type TestServer } from '../support/harness.ts';
import { skipUnlessPostgres, startPostgres, type TestPostgres } from '../support/postgres.ts';
import { skipUnlessRedis, startRedis, type TestRedis } from '../support/redis.ts';
import { adminClient, type AdminClient } from '../admin/admin-client.ts';
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
});
