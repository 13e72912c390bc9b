/**
 * ThingsBoard's DeviceInfo and DeviceProfileInfo routes over real HTTP on SQLite (spec §2.2-2.4, §2.8, §3), with the
 * assertions of DeviceControllerTest / DeviceProfileControllerTest that apply (spec §7 items 8-10, 23, 26-29).
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import mqtt from 'mqtt';
import { startTestServer, type TestServer } from '../support/harness.ts';
import { until } from '../cluster/cluster-support.ts';
import { adminClient, tbError, type AdminClient } from './admin-client.ts';

const NULL_UUID = '13814000-1dd2-11b2-8080-808080808080';

describe('device infos and profile infos (SQLite)', () => {
  let server: TestServer;
  let api: AdminClient;

  before(async () => {
    server = await startTestServer();
    api = await adminClient(server);
  });
  after(() => server.close());

  async function device(name: string, extra: Record<string, unknown> = {}, token?: string): Promise<any> {
    const res = await api.post(`/api/device${token ? `?accessToken=${token}` : ''}`, { name, ...extra });
    assert.equal(res.status, 200, res.text);
    return res.json;
  }

  async function sendHttpTelemetry(token: string): Promise<void> {
    const res = await fetch(`${server.httpUrl}/api/v1/${token}/telemetry`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"t":1}' });
    assert.equal(res.status, 200);
  }

  // spec §2.8, §7 item 29 (testGetDeviceProfileNames: only `default` at start)
  it('a fresh database has exactly one profile, `default`, marked default with provisioning DISABLED', async () => {
    const infos = await api.get('/api/deviceProfileInfos?pageSize=10&page=0');
    assert.equal(infos.status, 200, infos.text);
    assert.deepEqual(infos.json.data.map((p: any) => p.name), ['default']);
    assert.equal(infos.json.totalElements, 1);
    assert.equal(infos.json.hasNext, false);
    const info = infos.json.data[0];
    assert.deepEqual(Object.keys(info).sort(), ['defaultDashboardId', 'id', 'image', 'name', 'tenantId', 'transportType', 'type']);
    assert.equal(info.id.entityType, 'DEVICE_PROFILE');
    const full = await api.get(`/api/deviceProfile/${info.id.id}`);
    assert.equal(full.json.provisionType, 'DISABLED');
    assert.equal(full.json.default, true);
    assert.equal(full.json.description, 'Default device profile');
    assert.equal(full.json.provisionDeviceKey, null);
    // spec §7 item 26 testFindDefaultDeviceProfileInfo
    const def = await api.get('/api/deviceProfileInfo/default');
    assert.equal(def.status, 200);
    assert.equal(def.json.name, 'default');
    assert.equal(def.json.type, 'DEFAULT');
    assert.equal(def.json.id.id, info.id.id);
  });

  // spec §7 item 10 testSaveDeviceWithEmptyType
  it('a device saved without profile or type gets the default profile and type `default`', async () => {
    const def = (await api.get('/api/deviceProfileInfo/default')).json;
    const saved = await device('No profile');
    assert.equal(saved.type, 'default');
    assert.deepEqual(saved.deviceProfileId, { entityType: 'DEVICE_PROFILE', id: def.id.id });
  });

  // spec §7 item 8 testFindDeviceTypesByTenantId; §2.4
  it('GET /api/device/types lists the profiles in use, sorted, and is not read as a device id', async () => {
    for (const [i, type] of ['typeC', 'typeA', 'typeB', 'typeA'].entries()) await device(`Typed ${i}`, { type });
    await api.post('/api/deviceProfile', { name: 'unused profile' });
    const res = await api.get('/api/device/types');
    assert.equal(res.status, 200, res.text);
    assert.deepEqual(res.json.map((t: any) => t.type), ['default', 'typeA', 'typeB', 'typeC']);
    for (const t of res.json) {
      assert.equal(t.entityType, 'DEVICE');
      assert.equal(t.tenantId.entityType, 'TENANT');
    }
  });

  it('GET /api/device/info/{id} answers a DeviceInfo; unknown is 404, a bad id 400, a deleted device 404', async () => {
    const saved = await device('Info device', { label: 'Lbl', type: 'infoType' });
    const res = await api.get(`/api/device/info/${saved.id.id}`);
    assert.equal(res.status, 200);
    assert.equal(res.json.name, 'Info device');
    assert.equal(res.json.label, 'Lbl');
    assert.equal(res.json.deviceProfileName, 'infoType');
    assert.equal(res.json.type, 'infoType');
    assert.deepEqual(res.json.deviceProfileId, saved.deviceProfileId);
    assert.equal(res.json.active, false, 'a new device is inactive (TB initializeActivityState)');
    assert.equal(res.json.customerTitle, null);
    assert.equal(res.json.customerIsPublic, false);
    assert.deepEqual(res.json.customerId, { entityType: 'CUSTOMER', id: NULL_UUID });
    const unknown = '5a0d6f4e-1111-4222-8333-444455556666';
    const missing = await api.get(`/api/device/info/${unknown}`);
    assert.equal(missing.status, 404);
    assert.equal(tbError(missing).message, `Device with id [${unknown}] is not found`);
    assert.equal(tbError(missing).errorCode, 32);
    const bad = await api.get('/api/device/info/nope');
    assert.equal(bad.status, 400);
    assert.equal(tbError(bad).message, 'Invalid UUID string: nope');
    // spec §7 item 9: a deleted device is gone from both reads
    assert.equal((await api.delete(`/api/device/${saved.id.id}`)).status, 200);
    assert.equal((await api.get(`/api/device/info/${saved.id.id}`)).status, 404);
    assert.equal((await api.get(`/api/device/${saved.id.id}`)).status, 404);
  });

  it('active follows device activity: an HTTP request and an MQTT session make a device active, on the filter too', async () => {
    const httpDevice = await device('Active over HTTP', {}, 'infos-http-token');
    const mqttDevice = await device('Active over MQTT', {}, 'infos-mqtt-token');
    const idle = await device('Never seen');
    await sendHttpTelemetry('infos-http-token');
    const client = await mqtt.connectAsync(`mqtt://127.0.0.1:${server.mqttPort}`, { username: 'infos-mqtt-token', reconnectPeriod: 0, connectTimeout: 10_000 });
    try {
      await until('both devices active', async () => {
        const a = await api.get(`/api/device/info/${httpDevice.id.id}`);
        const b = await api.get(`/api/device/info/${mqttDevice.id.id}`);
        return a.json.active === true && b.json.active === true;
      }, 400);
      const mqttInfo = (await api.get(`/api/device/info/${mqttDevice.id.id}`)).json;
      assert.equal(typeof mqttInfo.lastConnectTime, 'number');
      const active = await api.get('/api/tenant/deviceInfos?pageSize=100&page=0&active=true');
      const activeNames = active.json.data.map((d: any) => d.name).sort();
      assert.deepEqual(activeNames, ['Active over HTTP', 'Active over MQTT']);
      assert.ok(active.json.data.every((d: any) => d.active === true));
      const inactive = await api.get('/api/tenant/deviceInfos?pageSize=100&page=0&active=FALSE');
      const inactiveNames = inactive.json.data.map((d: any) => d.name);
      assert.ok(inactiveNames.includes(idle.name));
      assert.ok(!inactiveNames.includes('Active over MQTT'));
      assert.ok(inactive.json.data.every((d: any) => d.active === false));
    } finally {
      await client.endAsync();
    }
    await until('the disconnect is recorded', async () => {
      const info = (await api.get(`/api/device/info/${mqttDevice.id.id}`)).json;
      return typeof info.lastDisconnectTime === 'number' && info.lastDisconnectTime >= info.lastConnectTime;
    }, 400);
  });

  // spec §2.2, §7 item 37: `active` is readable as a SERVER_SCOPE attribute, false for a new device
  it('SERVER_SCOPE attributes carry active and the activity times, as ThingsBoard keeps them', async () => {
    const saved = await device('Attribute state', {}, 'infos-attr-token');
    const attrs = (path: string) => api.get(`/api/plugins/telemetry/DEVICE/${saved.id.id}/values/attributes/SERVER_SCOPE${path}`);
    const fresh = await attrs('');
    assert.deepEqual(fresh.json.map((a: any) => [a.key, a.value]), [['active', false]]);
    await sendHttpTelemetry('infos-attr-token');
    await server.core.deviceInfos.flushActivity();
    const seen = await attrs('?keys=active,lastActivityTime');
    const byKey = Object.fromEntries(seen.json.map((a: any) => [a.key, a.value]));
    assert.equal(byKey.active, true);
    assert.equal(typeof byKey.lastActivityTime, 'number');
    const keys = await api.get(`/api/plugins/telemetry/DEVICE/${saved.id.id}/keys/attributes/SERVER_SCOPE`);
    assert.ok(keys.json.includes('active'));
  });

  it('filters by deviceProfileId and textSearch (name, label, type), sorts, and pages', async () => {
    const profile = (await api.post('/api/deviceProfile', { name: 'Filter profile' })).json;
    await device('filter-b', { deviceProfileId: profile.id, label: 'Kitchen' });
    await device('filter-a', { deviceProfileId: profile.id });
    await device('filter-c', { deviceProfileId: profile.id });
    await device('other', { label: 'kitchen sink' });
    const byProfile = await api.get(`/api/tenant/deviceInfos?pageSize=2&page=0&deviceProfileId=${profile.id.id}&sortProperty=name&sortOrder=desc`);
    assert.equal(byProfile.status, 200, byProfile.text);
    assert.deepEqual(byProfile.json.data.map((d: any) => d.name), ['filter-c', 'filter-b']);
    assert.equal(byProfile.json.totalElements, 3);
    assert.equal(byProfile.json.totalPages, 2);
    assert.equal(byProfile.json.hasNext, true);
    assert.ok(byProfile.json.data.every((d: any) => d.deviceProfileName === 'Filter profile'));
    const page2 = await api.get(`/api/tenant/deviceInfos?pageSize=2&page=1&deviceProfileId=${profile.id.id}&sortProperty=name&sortOrder=DESC`);
    assert.deepEqual(page2.json.data.map((d: any) => d.name), ['filter-a']);
    assert.equal(page2.json.hasNext, false);
    const byLabel = await api.get('/api/tenant/deviceInfos?pageSize=10&page=0&textSearch=KITCHEN&sortProperty=name');
    assert.deepEqual(byLabel.json.data.map((d: any) => d.name), ['filter-b', 'other']);
    const byType = await api.get('/api/tenant/deviceInfos?pageSize=10&page=0&textSearch=filter%20prof');
    assert.equal(byType.json.totalElements, 3);
    const byTypeParam = await api.get('/api/tenant/deviceInfos?pageSize=10&page=0&type=Filter%20profile&deviceProfileId=');
    assert.equal(byTypeParam.json.totalElements, 3);
    const byProfileName = await api.get('/api/tenant/deviceInfos?pageSize=100&page=0&sortProperty=deviceProfileName&sortOrder=ASC');
    const names = byProfileName.json.data.map((d: any) => d.deviceProfileName);
    assert.deepEqual(names, [...names].sort((a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0)));
  });

  it('pages taken one by one, under every sort and filter, join up to the whole list in the same order', async () => {
    const profile = (await api.post('/api/deviceProfile', { name: 'zeta pages' })).json;
    for (const name of ['page-d', 'page-a', 'page-c']) await device(name, { deviceProfileId: profile.id, label: `label ${name}` });
    for (const name of ['page-b', 'page-e']) await device(name);
    const queries = [
      'textSearch=page-',
      'textSearch=page-&sortProperty=deviceProfileName&sortOrder=DESC',
      'textSearch=page-&sortProperty=name&sortOrder=ASC',
      'textSearch=page-&sortProperty=label&sortOrder=DESC',
      'textSearch=page-&active=false&sortProperty=createdTime&sortOrder=DESC',
    ];
    for (const q of queries) {
      const whole = await api.get(`/api/tenant/deviceInfos?pageSize=100&page=0&${q}`);
      assert.equal(whole.status, 200, whole.text);
      assert.equal(whole.json.totalElements, 5, q);
      const paged: any[] = [];
      for (let page = 0; page < 3; page++) {
        const part = await api.get(`/api/tenant/deviceInfos?pageSize=2&page=${page}&${q}`);
        assert.equal(part.json.totalElements, 5, q);
        assert.equal(part.json.hasNext, page < 2, q);
        paged.push(...part.json.data);
      }
      assert.deepEqual(paged, whole.json.data, q);
      assert.ok(whole.json.data.every((d: any) => typeof d.deviceProfileName === 'string' && d.id.entityType === 'DEVICE'), q);
    }
    const byProfile = await api.get('/api/tenant/deviceInfos?pageSize=100&page=0&textSearch=page-&sortProperty=deviceProfileName&sortOrder=DESC');
    assert.deepEqual(byProfile.json.data.slice(0, 3).map((d: any) => d.deviceProfileName), ['zeta pages', 'zeta pages', 'zeta pages']);
    const beyond = await api.get('/api/tenant/deviceInfos?pageSize=2&page=9&textSearch=page-');
    assert.deepEqual(beyond.json.data, []);
    assert.equal(beyond.json.totalElements, 5);
  });

  it('bad page links are 400/31 with ThingsBoard messages', async () => {
    const cases: [string, string | RegExp][] = [
      ['pageSize=0&page=0', "Incorrect page link page size '0'. Page size must be greater than zero."],
      ['pageSize=10&page=-1', "Incorrect page link page '-1'. Page must be positive integer."],
      ['pageSize=10&page=0&sortProperty=name;drop', 'Invalid sort property'],
      ['pageSize=10&page=0&sortProperty=name&sortOrder=UP', "Unsupported sort order 'UP'! Only 'ASC' or 'DESC' types are allowed."],
      ['pageSize=10&page=0&sortProperty=secret', /Unsupported sort property 'secret'/],
      ['pageSize=ten&page=0', /pageSize|ten/],
      ['page=0', /pageSize/],
      ['pageSize=10&page=0&deviceProfileId=xyz', 'Invalid UUID string: xyz'],
      ['pageSize=10&page=0&active=maybe', /boolean/],
    ];
    for (const [query, message] of cases) {
      const res = await api.get(`/api/tenant/deviceInfos?${query}`);
      assert.equal(res.status, 400, query);
      const body = tbError(res);
      assert.equal(body.errorCode, 31, query);
      if (typeof message === 'string') assert.equal(body.message, message, query);
      else assert.match(body.message, message, query);
    }
  });

  // spec §7 item 27 testSetDefaultDeviceProfile
  it('POST /api/deviceProfile/{id}/default moves the default flag and returns the full profile', async () => {
    const before = (await api.get('/api/deviceProfileInfo/default')).json;
    const created = (await api.post('/api/deviceProfile', { name: 'New default' })).json;
    assert.equal(created.default, false);
    const res = await api.post(`/api/deviceProfile/${created.id.id}/default`, undefined);
    assert.equal(res.status, 200, res.text);
    assert.equal(res.json.default, true);
    assert.equal(res.json.name, 'New default');
    assert.equal(res.json.provisionType, 'DISABLED');
    assert.equal((await api.get('/api/deviceProfileInfo/default')).json.id.id, created.id.id);
    assert.equal((await api.get(`/api/deviceProfile/${before.id.id}`)).json.default, false);
    // devices saved without a profile now get the new default
    assert.equal((await device('After default switch')).type, 'New default');
    // already default: unchanged
    assert.equal((await api.post(`/api/deviceProfile/${created.id.id}/default`, undefined)).json.default, true);
    const unknown = await api.post('/api/deviceProfile/5a0d6f4e-1111-4222-8333-444455556666/default', undefined);
    assert.equal(unknown.status, 404);
    // saving a profile with default:true takes the flag over as well; exactly one default remains
    const taken = await api.post('/api/deviceProfile', { name: 'Saved as default', default: true });
    assert.equal(taken.status, 200, taken.text);
    const all = await api.get('/api/deviceProfiles?pageSize=1000&page=0');
    assert.deepEqual(all.json.data.filter((p: any) => p.default).map((p: any) => p.name), ['Saved as default']);
    await api.post(`/api/deviceProfile/${before.id.id}/default`, undefined);
  });

  // spec §7 item 28 testFindDeviceProfileInfos; item 25
  it('GET /api/deviceProfileInfos pages, searches, filters by transportType, and answers an array for deviceProfileIds', async () => {
    const existing = (await api.get('/api/deviceProfileInfos?pageSize=1000&page=0')).json.totalElements;
    const ids: string[] = [];
    for (let i = 0; i < 29 - existing; i++) ids.push((await api.post('/api/deviceProfile', { name: `Paged ${String(i).padStart(2, '0')}`, transportType: i % 2 ? 'MQTT' : 'DEFAULT' })).json.id.id);
    const seen: string[] = [];
    for (let page = 0; ; page++) {
      const res = await api.get(`/api/deviceProfileInfos?pageSize=17&page=${page}`);
      assert.equal(res.json.totalElements, 29);
      assert.equal(res.json.totalPages, 2);
      seen.push(...res.json.data.map((p: any) => p.id.id));
      if (!res.json.hasNext) break;
    }
    assert.equal(new Set(seen).size, 29);
    const mqttOnly = await api.get('/api/deviceProfileInfos?pageSize=100&page=0&transportType=MQTT');
    assert.ok(mqttOnly.json.data.length > 0 && mqttOnly.json.data.every((p: any) => p.transportType === 'MQTT'));
    const bad = await api.get('/api/deviceProfileInfos?pageSize=100&page=0&transportType=mqtt');
    assert.equal(bad.status, 400);
    const search = await api.get('/api/deviceProfileInfos?pageSize=100&page=0&textSearch=paged%2001&sortProperty=name');
    assert.deepEqual(search.json.data.map((p: any) => p.name), ['Paged 01']);
    const list = await api.get(`/api/deviceProfileInfos?deviceProfileIds=${ids[0]},${ids[1]},5a0d6f4e-1111-4222-8333-444455556666`);
    assert.equal(list.status, 200, list.text);
    assert.deepEqual(list.json.map((p: any) => p.id.id).sort(), [ids[0], ids[1]].sort());
  });
});

describe('device activity timeout', () => {
  let server: TestServer;
  let api: AdminClient;

  before(async () => {
    server = await startTestServer({ deviceInactivityTimeoutMs: 3000 });
    api = await adminClient(server);
  });
  after(() => server.close());

  it('an idle device falls inactive after the timeout; an open MQTT session keeps refreshing its activity', async () => {
    const idle = (await api.post('/api/device?accessToken=timeout-http', { name: 'Goes idle' })).json;
    const held = (await api.post('/api/device?accessToken=timeout-mqtt', { name: 'Stays connected' })).json;
    await fetch(`${server.httpUrl}/api/v1/timeout-http/telemetry`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"t":1}' });
    const client = await mqtt.connectAsync(`mqtt://127.0.0.1:${server.mqttPort}`, { username: 'timeout-mqtt', reconnectPeriod: 0, connectTimeout: 10_000 });
    try {
      await until('the HTTP device is active', async () => (await api.get(`/api/device/info/${idle.id.id}`)).json.active === true, 400);
      await until('the HTTP device falls inactive', async () => (await api.get(`/api/device/info/${idle.id.id}`)).json.active === false, 600);
      const first = (await api.get(`/api/device/info/${held.id.id}`)).json;
      assert.equal(typeof first.lastConnectTime, 'number');
      await until('the session refreshes the activity time', async () => {
        const info = (await api.get(`/api/device/info/${held.id.id}`)).json;
        return info.lastActivityTime > first.lastConnectTime;
      }, 600);
    } finally {
      await client.endAsync();
    }
  });
});
