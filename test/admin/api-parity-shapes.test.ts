/**
 * Item 6 of issue 11: the shapes ThingsBoard's generated clients need (required model fields, ids as
 * {entityType,id}, PageData, error bodies), the HTTP exchanges the Python and Java clients make as the spec describes
 * them (PyPI is not reachable here, so the clients themselves are not run), and an OpenAPI entry for every route.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { startTestServer, type TestServer } from '../support/harness.ts';
import { adminClient, tbError, type AdminClient } from './admin-client.ts';

const PYTHON_ENTITY_TYPES = new Set(['DEVICE', 'DEVICE_PROFILE', 'TENANT', 'CUSTOMER', 'USER', 'DASHBOARD', 'ASSET', 'RULE_CHAIN']);
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

function assertEntityId(value: any, type: string, where: string): void {
  assert.equal(value?.entityType, type, where);
  assert.match(value?.id, UUID, where);
  assert.ok(PYTHON_ENTITY_TYPES.has(value.entityType), `${where}: an entity type the Python client knows`);
}

function assertPage(page: any, where: string): void {
  assert.deepEqual(Object.keys(page).sort(), ['data', 'hasNext', 'totalElements', 'totalPages'], where);
  assert.ok(Array.isArray(page.data));
}

describe('ThingsBoard client shapes and OpenAPI coverage', () => {
  let server: TestServer;
  let api: AdminClient;

  before(async () => {
    server = await startTestServer();
    api = await adminClient(server);
  });
  after(() => server.close());

  it('Device, DeviceInfo, DeviceCredentials, User and pages carry the fields the generated clients require', async () => {
    // Python RestClientCE.save_device(Device(name=..., device_profile_id=...), access_token=...)
    const profile = (await api.get('/api/deviceProfileInfo/default')).json;
    const device = (await api.post('/api/device?accessToken=shape-token', { name: 'shape', deviceProfileId: profile.id, label: null, additionalInfo: null })).json;
    for (const d of [device, (await api.get(`/api/device/${device.id.id}`)).json, (await api.get(`/api/device/info/${device.id.id}`)).json]) {
      assert.equal(typeof d.name, 'string');
      assertEntityId(d.id, 'DEVICE', 'Device.id');
      assertEntityId(d.deviceProfileId, 'DEVICE_PROFILE', 'Device.deviceProfileId');
      assertEntityId(d.tenantId, 'TENANT', 'Device.tenantId');
      assertEntityId(d.customerId, 'CUSTOMER', 'Device.customerId');
      assert.equal(typeof d.createdTime, 'number');
    }
    const info = (await api.get(`/api/device/info/${device.id.id}`)).json;
    for (const field of ['deviceProfileName', 'active', 'customerTitle', 'customerIsPublic']) assert.ok(field in info, field);
    const creds = (await api.get(`/api/device/${device.id.id}/credentials`)).json;
    assert.equal(creds.credentialsId, 'shape-token');
    assert.match(creds.id.id, UUID);
    assert.equal(creds.id.entityType, undefined, 'DeviceCredentialsId is not an entity id');
    const user = (await api.get('/api/auth/user')).json;
    assert.equal(typeof user.email, 'string');
    assert.equal(typeof user.authority, 'string');
    // Java RestClient.getTenantDeviceInfos sends type= and deviceProfileId= empty; Python sends active=True
    assertPage((await api.get('/api/tenant/deviceInfos?pageSize=10&page=0&type=&deviceProfileId=&textSearch=&sortProperty=&sortOrder=')).json, 'deviceInfos');
    assertPage((await api.get('/api/tenant/deviceInfos?pageSize=10&page=0&active=False')).json, 'deviceInfos active=False');
    // Java RestClient.getDeviceProfileInfos sends deviceTransportType (ignored), Python transportType
    assertPage((await api.get('/api/deviceProfileInfos?pageSize=10&page=0&deviceTransportType=MQTT')).json, 'profile infos');
    assertPage((await api.get('/api/audit/logs/user/' + user.id.id + '?pageSize=10&page=0')).json, 'audit by user');
    // Python sends `{}` with a JSON content type on body-less calls: ignored
    const withEmptyBody = await api.call('POST', `/api/deviceProfile/${profile.id.id}/default`, { raw: '{}' });
    assert.equal(withEmptyBody.status, 200);
    const deleted = await api.call('DELETE', `/api/device/${device.id.id}`, { raw: '{}' });
    assert.equal(deleted.status, 200);
  });

  it('errors are {status, message, errorCode, timestamp} with ThingsBoard codes', async () => {
    const cases: [Promise<any>, number, number][] = [
      [api.get('/api/device/info/5a0d6f4e-1111-4222-8333-444455556666'), 404, 32],
      [api.get('/api/device/info/not-a-uuid'), 400, 31],
      [api.get('/api/tenant/deviceInfos?pageSize=0&page=0'), 400, 31],
      [api.get('/api/tenant/deviceInfos?pageSize=1&page=0', { token: null }), 401, 10],
      [api.post('/api/device-with-credentials', {}), 400, 31],
    ];
    for (const [pending, status, code] of cases) {
      const res = await pending;
      assert.equal(res.status, status, res.text);
      const body = tbError(res);
      assert.equal(body.errorCode, code);
      assert.deepEqual(Object.keys(body).sort(), ['errorCode', 'message', 'status', 'timestamp']);
    }
  });

  it('the OpenAPI document lists every admin route with a summary and its security', async () => {
    const doc = (await api.get('/api-docs/openapi.json', { token: null })).json as { paths: Record<string, Record<string, { summary?: string; security?: unknown[] }>> };
    const added: [string, string][] = [
      ['/api/tenant/deviceInfos', 'get'],
      ['/api/device/info/{deviceId}', 'get'],
      ['/api/device/types', 'get'],
      ['/api/devices', 'get'],
      ['/api/device-with-credentials', 'post'],
      ['/api/device/bulk_import', 'post'],
      ['/api/deviceProfileInfos', 'get'],
      ['/api/deviceProfileInfo/{deviceProfileId}', 'get'],
      ['/api/deviceProfileInfo/default', 'get'],
      ['/api/deviceProfile/{deviceProfileId}/default', 'post'],
      ['/api/deviceProfile/devices/keys/timeseries', 'get'],
      ['/api/deviceProfile/devices/keys/attributes', 'get'],
      ['/api/plugins/telemetry/DEVICE/{deviceId}/values/timeseries', 'get'],
      ['/api/plugins/telemetry/DEVICE/{deviceId}/timeseries/delete', 'delete'],
      ['/api/plugins/telemetry/DEVICE/{deviceId}/timeseries/{scope}', 'post'],
      ['/api/plugins/telemetry/DEVICE/{deviceId}/timeseries/{scope}/{ttl}', 'post'],
      ['/api/auth/changePassword', 'post'],
      ['/api/audit/logs/entity/{entityType}/{entityId}', 'get'],
      ['/api/audit/logs/user/{userId}', 'get'],
      ['/api/apiKey', 'post'],
      ['/api/apiKeys/{userId}', 'get'],
      ['/api/apiKey/{id}/enabled/{enabledValue}', 'put'],
      ['/api/apiKey/{id}/description', 'put'],
      ['/api/apiKey/{id}', 'delete'],
    ];
    for (const [path, method] of added) {
      const op = doc.paths[path]?.[method];
      assert.ok(op, `${method.toUpperCase()} ${path} is documented`);
      assert.ok(op.security?.length, `${method.toUpperCase()} ${path} declares its security`);
    }
    for (const [path, ops] of Object.entries(doc.paths)) {
      if (!path.startsWith('/api/') || path.startsWith('/api/v1/')) continue; // the device API is documented by its own helper
      for (const [method, op] of Object.entries(ops)) assert.ok(op.summary, `${method.toUpperCase()} ${path} has a summary`);
    }
  });
});
