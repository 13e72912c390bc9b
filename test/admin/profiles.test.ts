import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { startTestServer, type TestServer } from '../support/harness.ts';
import { adminClient, tbError, type AdminClient } from './admin-client.ts';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

function provisioningProfile(name: string, key: string, type = 'ALLOW_CREATE_NEW_DEVICES') {
  return {
    name,
    type: 'DEFAULT',
    transportType: 'DEFAULT',
    provisionType: type,
    provisionDeviceKey: key,
    profileData: {
      configuration: { type: 'DEFAULT' },
      transportConfiguration: { type: 'DEFAULT' },
      provisionConfiguration: { type, provisionDeviceSecret: `${key}-secret` },
    },
  };
}

describe('device profiles', () => {
  let server: TestServer;
  let api: AdminClient;

  before(async () => {
    server = await startTestServer();
    api = await adminClient(server);
  });
  after(() => server.close());

  // spec §9 H 38
  it('testSaveDeviceProfile: a profile saved without provisioning has provisionType DISABLED', async () => {
    const res = await api.post('/api/deviceProfile', { name: 'No provisioning', type: 'DEFAULT', transportType: 'DEFAULT' });
    assert.equal(res.status, 200);
    assert.equal(res.json.provisionType, 'DISABLED');
    assert.equal(res.json.provisionDeviceKey, null);
    assert.equal(res.json.id.entityType, 'DEVICE_PROFILE');
    assert.match(res.json.id.id, UUID);
    assert.equal(res.json.tenantId.entityType, 'TENANT');
    assert.equal(typeof res.json.createdTime, 'number');
    assert.deepEqual(res.json.profileData.configuration, { type: 'DEFAULT' });
    assert.equal(typeof res.json.default, 'boolean');
  });

  // spec §9 H 39
  it('testSaveDeviceProfileWithSameProvisionDeviceKey: a second profile with the same key is 400', async () => {
    const first = await api.post('/api/deviceProfile', provisioningProfile('Key owner', 'testProvisionDeviceKey'));
    assert.equal(first.status, 200);
    const second = await api.post('/api/deviceProfile', provisioningProfile('Key thief', 'testProvisionDeviceKey'));
    assert.equal(second.status, 400);
    assert.match(tbError(second).message, /Device profile with such provision device key already exists/);
  });

  // spec §9 H 40
  it('testSaveDeviceProfileWithSameCertificateHash: a duplicate key on a non-X509 profile is 400 with the provision-key message', async () => {
    assert.equal((await api.post('/api/deviceProfile', provisioningProfile('Hash owner', 'Certificate hash', 'CHECK_PRE_PROVISIONED_DEVICES'))).status, 200);
    const res = await api.post('/api/deviceProfile', provisioningProfile('Hash thief', 'Certificate hash', 'CHECK_PRE_PROVISIONED_DEVICES'));
    assert.equal(res.status, 400);
    const body = tbError(res);
    assert.equal(body.message, 'Device profile with such provision device key already exists!');
    assert.equal(body.errorCode, 31);
  });

  it('keeps the provisioning configuration and reads the profile back by id', async () => {
    const created = await api.post('/api/deviceProfile', provisioningProfile('Sensors', 'u7piawkboq8v32dmcmpp'));
    assert.equal(created.status, 200);
    const res = await api.get(`/api/deviceProfile/${created.json.id.id}`);
    assert.equal(res.status, 200);
    assert.equal(res.json.name, 'Sensors');
    assert.equal(res.json.provisionType, 'ALLOW_CREATE_NEW_DEVICES');
    assert.equal(res.json.provisionDeviceKey, 'u7piawkboq8v32dmcmpp');
    assert.deepEqual(res.json.profileData.provisionConfiguration, { type: 'ALLOW_CREATE_NEW_DEVICES', provisionDeviceSecret: 'u7piawkboq8v32dmcmpp-secret' });
  });

  it('updates a profile when the body carries its id', async () => {
    const created = await api.post('/api/deviceProfile', provisioningProfile('Before rename', 'rename-key'));
    const updated = await api.post('/api/deviceProfile', { ...created.json, name: 'After rename', description: 'renamed' });
    assert.equal(updated.status, 200);
    assert.equal(updated.json.id.id, created.json.id.id);
    assert.equal(updated.json.createdTime, created.json.createdTime);
    assert.equal((await api.get(`/api/deviceProfile/${created.json.id.id}`)).json.name, 'After rename');
  });

  it('pages profiles with textSearch', async () => {
    for (const name of ['Paging A1', 'Paging A2', 'Paging A3']) assert.equal((await api.post('/api/deviceProfile', { name })).status, 200);
    const first = await api.get('/api/deviceProfiles?pageSize=2&page=0&textSearch=Paging%20A&sortProperty=name&sortOrder=ASC');
    assert.equal(first.status, 200);
    assert.deepEqual(first.json.data.map((p: { name: string }) => p.name), ['Paging A1', 'Paging A2']);
    assert.equal(first.json.totalElements, 3);
    assert.equal(first.json.totalPages, 2);
    assert.equal(first.json.hasNext, true);
    const second = await api.get('/api/deviceProfiles?pageSize=2&page=1&textSearch=Paging%20A&sortProperty=name&sortOrder=ASC');
    assert.deepEqual(second.json.data.map((p: { name: string }) => p.name), ['Paging A3']);
    assert.equal(second.json.hasNext, false);
  });

  it('requires pageSize and page, as ThingsBoard does', async () => {
    const res = await api.get('/api/deviceProfiles?page=0');
    assert.equal(res.status, 400);
    assert.match(tbError(res).message, /pageSize/);
  });

  it('deletes a profile; reading it afterwards is 404', async () => {
    const created = await api.post('/api/deviceProfile', { name: 'Short lived' });
    assert.equal((await api.delete(`/api/deviceProfile/${created.json.id.id}`)).status, 200);
    const res = await api.get(`/api/deviceProfile/${created.json.id.id}`);
    assert.equal(res.status, 404);
    assert.equal(tbError(res).errorCode, 32);
  });

  it('returns the default profile info', async () => {
    const res = await api.get('/api/deviceProfileInfo/default');
    assert.equal(res.status, 200);
    assert.equal(res.json.id.entityType, 'DEVICE_PROFILE');
    const full = await api.get(`/api/deviceProfile/${res.json.id.id}`);
    assert.equal(full.json.default, true);
    assert.equal(full.json.name, res.json.name);
  });

  it('answers 400 to a malformed id, a bad provisionType and a non-object body', async () => {
    const badId = await api.get('/api/deviceProfile/not-a-uuid');
    assert.equal(badId.status, 400);
    assert.equal(tbError(badId).message, 'Invalid UUID string: not-a-uuid');
    assert.equal((await api.post('/api/deviceProfile', { name: 'x', provisionType: 'SOMETIMES' })).status, 400);
    assert.equal((await api.post('/api/deviceProfile', 'just a string')).status, 400);
    assert.equal((await api.post('/api/deviceProfile', { description: 'no name' })).status, 400);
    assert.equal((await api.call('POST', '/api/deviceProfile', { raw: '{not json' })).status, 400);
  });
});
