import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { startTestServer, type TestServer } from '../support/harness.ts';
import { adminClient, tbError, type AdminClient } from './admin-client.ts';

/** spec §8.5 SHA3 helper, computed independently of the server. */
function sha3(text: string): string {
  const stripped = text.replace(/-----BEGIN CERTIFICATE-----|-----END CERTIFICATE-----|\n|\r/g, '');
  return createHash('sha3-256').update(stripped, 'utf8').digest('hex');
}

describe('devices and credentials', () => {
  let server: TestServer;
  let api: AdminClient;

  before(async () => {
    server = await startTestServer();
    api = await adminClient(server);
  });
  after(() => server.close());

  async function createDevice(name: string, extra: Record<string, unknown> = {}, query = '') {
    const res = await api.post(`/api/device${query}`, { name, ...extra });
    assert.equal(res.status, 200, res.text);
    return res.json;
  }

  it('a device saved with a type and no deviceProfileId gets the profile of that name, created once (ThingsBoard findOrCreateDeviceProfile)', async () => {
    const [a, b] = await Promise.all([createDevice('Typed 1', { type: 'thermostat' }), createDevice('Typed 2', { type: 'thermostat' })]);
    assert.equal(a.type, 'thermostat');
    assert.deepEqual(a.deviceProfileId, b.deviceProfileId, 'two concurrent saves share one new profile');
    const profile = (await api.get(`/api/deviceProfile/${a.deviceProfileId.id}`)).json;
    assert.equal(profile.name, 'thermostat');
    assert.equal(profile.default, false);
    assert.equal(profile.provisionType, 'DISABLED');
    const profiles = (await api.get('/api/deviceProfiles?pageSize=100&page=0')).json.data as { name: string }[];
    assert.equal(profiles.filter((p) => p.name === 'thermostat').length, 1);
    const untyped = await createDevice('Untyped');
    const defaultProfile = (await api.get('/api/deviceProfileInfo/default')).json;
    assert.equal(untyped.deviceProfileId.id, defaultProfile.id.id, 'no type: the default profile');
    const moved = (await api.post('/api/device', { id: untyped.id, name: 'Untyped', type: 'thermostat' })).json;
    assert.deepEqual(moved.deviceProfileId, a.deviceProfileId, 'a new type on save moves the device to that profile');
  });

  it('creates a device and renders it as ThingsBoard does', async () => {
    const device = await createDevice('Thermometer 1', { label: 'Room 234', additionalInfo: { gateway: false } });
    assert.equal(device.id.entityType, 'DEVICE');
    assert.equal(device.name, 'Thermometer 1');
    assert.equal(device.label, 'Room 234');
    assert.deepEqual(device.customerId, { entityType: 'CUSTOMER', id: '13814000-1dd2-11b2-8080-808080808080' });
    assert.equal(device.tenantId.entityType, 'TENANT');
    assert.equal(device.deviceProfileId.entityType, 'DEVICE_PROFILE');
    assert.deepEqual(device.deviceData, { configuration: { type: 'DEFAULT' }, transportConfiguration: { type: 'DEFAULT' } });
    assert.equal(device.firmwareId, null);
    assert.equal(device.softwareId, null);
    assert.deepEqual(device.additionalInfo, { gateway: false });
    const profile = await api.get(`/api/deviceProfile/${device.deviceProfileId.id}`);
    assert.equal(device.type, profile.json.name, 'type is the profile name');
    assert.equal(profile.json.default, true, 'without deviceProfileId the default profile is used');
  });

  it('reads a device by id and by name', async () => {
    const device = await createDevice('Find me');
    const byId = await api.get(`/api/device/${device.id.id}`);
    assert.equal(byId.status, 200);
    assert.deepEqual(byId.json, device);
    const byName = await api.get(`/api/tenant/devices?deviceName=${encodeURIComponent('Find me')}`);
    assert.equal(byName.status, 200);
    assert.equal(byName.json.id.id, device.id.id);
    assert.equal((await api.get('/api/tenant/devices?deviceName=Nobody%20here')).status, 404);
  });

  it('uses ?accessToken= as the new device token', async () => {
    const device = await createDevice('With token', {}, '?accessToken=my-fixed-token-1');
    const creds = await api.get(`/api/device/${device.id.id}/credentials`);
    assert.equal(creds.status, 200);
    assert.equal(creds.json.credentialsType, 'ACCESS_TOKEN');
    assert.equal(creds.json.credentialsId, 'my-fixed-token-1');
    assert.equal(creds.json.credentialsValue, null);
    assert.deepEqual(creds.json.deviceId, { entityType: 'DEVICE', id: device.id.id });
    assert.equal(typeof creds.json.id.id, 'string');
    assert.equal(typeof creds.json.createdTime, 'number');
  });

  it('generates a 20-character token when none is given', async () => {
    const device = await createDevice('Generated token');
    const creds = await api.get(`/api/device/${device.id.id}/credentials`);
    assert.match(creds.json.credentialsId, /^[0-9A-Za-z]{20}$/);
  });

  it('pages devices with textSearch and filters by type (profile name)', async () => {
    const profile = await api.post('/api/deviceProfile', { name: 'Pump profile' });
    for (const name of ['Pump 1', 'Pump 2', 'Pump 3']) await createDevice(name, { deviceProfileId: profile.json.id });
    await createDevice('Pumpkin');
    const page = await api.get('/api/tenant/devices?pageSize=2&page=0&textSearch=Pump%20&sortProperty=name&sortOrder=ASC');
    assert.equal(page.status, 200);
    assert.deepEqual(page.json.data.map((d: { name: string }) => d.name), ['Pump 1', 'Pump 2']);
    assert.equal(page.json.totalElements, 3);
    assert.equal(page.json.hasNext, true);
    const typed = await api.get('/api/tenant/devices?pageSize=10&page=0&type=Pump%20profile');
    assert.deepEqual(typed.json.data.map((d: { name: string }) => d.name).sort(), ['Pump 1', 'Pump 2', 'Pump 3']);
    assert.equal((await api.get('/api/tenant/devices?pageSize=10&page=0&type=No%20such%20profile')).json.totalElements, 0);
    assert.equal((await api.get('/api/tenant/devices?page=0')).status, 400);
  });

  it('updates a device when the body carries its id', async () => {
    const device = await createDevice('Relabel me');
    const res = await api.post('/api/device', { ...device, label: 'new label' });
    assert.equal(res.status, 200);
    assert.equal(res.json.id.id, device.id.id);
    assert.equal((await api.get(`/api/device/${device.id.id}`)).json.label, 'new label');
  });

  it('refuses a duplicate device name with 400', async () => {
    await createDevice('Unique name');
    const res = await api.post('/api/device', { name: 'Unique name' });
    assert.equal(res.status, 400);
    assert.equal(tbError(res).message, 'Device with such name already exists!');
  });

  it('deletes a device; reading it afterwards is 404', async () => {
    const device = await createDevice('Delete me');
    assert.equal((await api.delete(`/api/device/${device.id.id}`)).status, 200);
    assert.equal((await api.get(`/api/device/${device.id.id}`)).status, 404);
    assert.equal((await api.get(`/api/device/${device.id.id}/credentials`)).status, 404);
  });

  it('saves MQTT_BASIC credentials with the SHA3 ids of spec §6', async () => {
    const device = await createDevice('Basic mqtt');
    const save = (value: Record<string, string | null>) =>
      api.post('/api/device/credentials', { deviceId: device.id, credentialsType: 'MQTT_BASIC', credentialsValue: JSON.stringify(value) });

    const both = await save({ clientId: 'c1', userName: 'u1', password: 'p1' });
    assert.equal(both.status, 200, both.text);
    assert.equal(both.json.credentialsType, 'MQTT_BASIC');
    assert.equal(both.json.credentialsId, sha3('c1|u1'));
    assert.deepEqual(JSON.parse(both.json.credentialsValue), { clientId: 'c1', userName: 'u1', password: 'p1' });

    assert.equal((await save({ clientId: 'c2', userName: null, password: null })).json.credentialsId, sha3('c2'));
    assert.equal((await save({ clientId: null, userName: 'u3', password: 'p3' })).json.credentialsId, 'u3');

    const read = await api.get(`/api/device/${device.id.id}/credentials`);
    assert.equal(read.json.credentialsId, 'u3');
  });

  it('saves X509 and ACCESS_TOKEN credentials', async () => {
    const device = await createDevice('Cert device');
    const cert = '-----BEGIN CERTIFICATE-----\nMIIBcertbody\n-----END CERTIFICATE-----\n';
    const x509 = await api.post('/api/device/credentials', { deviceId: device.id, credentialsType: 'X509_CERTIFICATE', credentialsValue: cert });
    assert.equal(x509.status, 200, x509.text);
    assert.equal(x509.json.credentialsId, sha3(cert));
    const token = await api.post('/api/device/credentials', { deviceId: device.id, credentialsType: 'ACCESS_TOKEN', credentialsId: 'replaced-token' });
    assert.equal(token.status, 200);
    assert.equal((await api.get(`/api/device/${device.id.id}/credentials`)).json.credentialsId, 'replaced-token');
  });

  it('refuses credentials already used by another device with 400', async () => {
    const a = await createDevice('Token owner', {}, '?accessToken=shared-token-x');
    assert.ok(a.id.id);
    const b = await createDevice('Token taker');
    const res = await api.post('/api/device/credentials', { deviceId: b.id, credentialsType: 'ACCESS_TOKEN', credentialsId: 'shared-token-x' });
    assert.equal(res.status, 400);
    assert.equal(tbError(res).message, 'Device credentials are already assigned to another device!');
  });

  it('answers 400 to garbage device and credentials bodies', async () => {
    assert.equal((await api.call('POST', '/api/device', { raw: 'garbage', contentType: 'application/json' })).status, 400);
    assert.equal((await api.call('POST', '/api/device', { raw: 'garbage', contentType: 'text/plain' })).status, 400);
    assert.equal((await api.post('/api/device', { name: { first: 'x' } })).status, 400);
    assert.equal((await api.post('/api/device', { name: 'x', deviceProfileId: { id: 'nope' } })).status, 400);
    assert.equal((await api.post('/api/device/credentials', { deviceId: { id: 'nope' }, credentialsType: 'ACCESS_TOKEN' })).status, 400);
    assert.equal((await api.post('/api/device/credentials', { credentialsType: 'ACCESS_TOKEN' })).status, 400);
    const device = await createDevice('Garbage target');
    assert.equal((await api.post('/api/device/credentials', { deviceId: device.id, credentialsType: 'PASSWORD' })).status, 400);
    assert.equal((await api.get('/api/device/12345/credentials')).status, 400);
  });
});
