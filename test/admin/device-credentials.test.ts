/**
 * GET /api/devices?deviceIds=, POST /api/device-with-credentials, POST /api/device/credentials (replace, with session
 * ends on every transport) and POST /api/device/bulk_import over real HTTP on SQLite (spec §2.5-2.7, §2.9; §7 items
 * 2-5, 12-20, 22).
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import mqtt from 'mqtt';
import { startTestServer, type TestServer } from '../support/harness.ts';
import { until } from '../cluster/cluster-support.ts';
import { adminClient, tbError, within, type AdminClient } from './admin-client.ts';

const UNKNOWN = '5a0d6f4e-1111-4222-8333-444455556666';

describe('devices with credentials, credentials replace, bulk import (SQLite)', () => {
  let server: TestServer;
  let api: AdminClient;

  before(async () => {
    server = await startTestServer();
    api = await adminClient(server);
  });
  after(() => server.close());

  const telemetry = (token: string) =>
    fetch(`${server.httpUrl}/api/v1/${token}/telemetry`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"x":1}' }).then((r) => r.status);
  const credentialsOf = async (id: string) => (await api.get(`/api/device/${id}/credentials`)).json;

  it('GET /api/devices?deviceIds= answers the known devices as a plain array', async () => {
    const a = (await api.post('/api/device', { name: 'ids-a' })).json;
    const b = (await api.post('/api/device', { name: 'ids-b' })).json;
    const res = await api.get(`/api/devices?deviceIds=${a.id.id},${b.id.id},${UNKNOWN}`);
    assert.equal(res.status, 200, res.text);
    assert.deepEqual(res.json.map((d: any) => d.name).sort(), ['ids-a', 'ids-b']);
    assert.ok(res.json.every((d: any) => d.deviceProfileId?.entityType === 'DEVICE_PROFILE'));
    const repeated = await api.get(`/api/devices?deviceIds=${a.id.id}&deviceIds=${b.id.id}`);
    assert.equal(repeated.json.length, 2);
    for (const query of ['', '?deviceIds=', `?deviceIds=${a.id.id},`]) {
      const empty = await api.get(`/api/devices${query}`);
      assert.equal(empty.status, 400, query);
      assert.equal(tbError(empty).message, "Parameter 'deviceIds' can't be empty!");
    }
    const bad = await api.get('/api/devices?deviceIds=zzz');
    assert.equal(bad.status, 400);
    assert.equal(tbError(bad).message, 'Invalid UUID string: zzz');
  });

  // spec §7 items 2-5, 22
  it('POST /api/device-with-credentials stores the given credentials; validates; FAIL and UNIQUIFY name policies', async () => {
    const res = await api.post('/api/device-with-credentials', { device: { name: 'dwc-1', type: 'dwcType' }, credentials: { credentialsType: 'ACCESS_TOKEN', credentialsId: 'dwc-token-1' } });
    assert.equal(res.status, 200, res.text);
    assert.equal(res.json.name, 'dwc-1');
    assert.equal(res.json.type, 'dwcType');
    assert.equal(res.json.deviceProfileId.entityType, 'DEVICE_PROFILE');
    const creds = await credentialsOf(res.json.id.id);
    assert.equal(creds.credentialsType, 'ACCESS_TOKEN');
    assert.equal(creds.credentialsId, 'dwc-token-1');
    assert.equal(await telemetry('dwc-token-1'), 200);

    const noCreds = await api.post('/api/device-with-credentials', { device: { name: 'dwc-x' } });
    assert.equal(tbError(noCreds).message, 'Validation error: credentials must not be null');
    const noDevice = await api.post('/api/device-with-credentials', { credentials: { credentialsType: 'ACCESS_TOKEN', credentialsId: 'x' }, device: null });
    assert.equal(tbError(noDevice).message, 'Validation error: device must not be null');
    assert.equal(tbError(await api.post('/api/device-with-credentials', {})).message, 'Validation error: credentials must not be null, device must not be null');
    const noId = await api.post('/api/device-with-credentials', { device: { name: 'dwc-noid' }, credentials: { credentialsType: 'ACCESS_TOKEN' } });
    assert.equal(noId.status, 400);
    assert.equal(tbError(noId).message, 'Device credentials id should be specified!');

    const clash = await api.post('/api/device-with-credentials', { device: { name: 'dwc-1' }, credentials: { credentialsType: 'ACCESS_TOKEN', credentialsId: 'dwc-token-2' } });
    assert.equal(clash.status, 400);
    assert.equal(tbError(clash).message, 'Device with such name already exists!');
    assert.equal(await telemetry('dwc-token-2'), 401, 'the failed save left no credentials behind');
    const incremental = await api.post('/api/device-with-credentials?nameConflictPolicy=UNIQUIFY&uniquifyStrategy=INCREMENTAL', { device: { name: 'dwc-1' }, credentials: { credentialsType: 'ACCESS_TOKEN', credentialsId: 'dwc-token-3' } });
    assert.equal(incremental.json.name, 'dwc-1_1');
    const random = await api.post('/api/device-with-credentials?nameConflictPolicy=UNIQUIFY&uniquifySeparator=-', { device: { name: 'dwc-1' }, credentials: { credentialsType: 'ACCESS_TOKEN', credentialsId: 'dwc-token-4' } });
    assert.match(random.json.name, /^dwc-1-[A-Za-z0-9]{6}$/);

    // credentials taken by another device: nothing is created (one transaction)
    const taken = await api.post('/api/device-with-credentials', { device: { name: 'dwc-taken' }, credentials: { credentialsType: 'ACCESS_TOKEN', credentialsId: 'dwc-token-1' } });
    assert.equal(taken.status, 400);
    assert.equal(tbError(taken).message, 'Device credentials are already assigned to another device!');
    assert.equal((await api.get('/api/tenant/devices?deviceName=dwc-taken')).status, 404);

    const mqttBasic = await api.post('/api/device-with-credentials', {
      device: { name: 'dwc-mqtt' },
      credentials: { credentialsType: 'MQTT_BASIC', credentialsValue: JSON.stringify({ clientId: 'dwc-client', userName: 'dwc-user', password: 'dwc-pass' }) },
    });
    assert.equal(mqttBasic.status, 200, mqttBasic.text);
    const client = await mqtt.connectAsync(`mqtt://127.0.0.1:${server.mqttPort}`, { clientId: 'dwc-client', username: 'dwc-user', password: 'dwc-pass', reconnectPeriod: 0, connectTimeout: 10_000 });
    await client.endAsync();

    // with device.id: an update that replaces the credentials
    const updated = await api.post('/api/device-with-credentials', { device: { ...res.json, label: 'relabelled' }, credentials: { credentialsType: 'ACCESS_TOKEN', credentialsId: 'dwc-token-1b' } });
    assert.equal(updated.status, 200, updated.text);
    assert.equal(updated.json.id.id, res.json.id.id);
    assert.equal(updated.json.label, 'relabelled');
    assert.equal(await telemetry('dwc-token-1'), 401);
    assert.equal(await telemetry('dwc-token-1b'), 200);
  });

  // spec §7 item 6 saveDeviceWithViolationOfValidation
  it('a name, type or label longer than 255 characters is 400 with ThingsBoard\'s validation message', async () => {
    const long = 'x'.repeat(300);
    for (const field of ['name', 'type', 'label']) {
      const res = await api.post('/api/device', { name: 'length-check', [field]: long });
      assert.equal(res.status, 400);
      assert.equal(tbError(res).message, `Validation error: ${field} length must be equal or less than 255`);
    }
    const all = await api.post('/api/device-with-credentials', { device: { name: long, type: long, label: long }, credentials: { credentialsType: 'ACCESS_TOKEN', credentialsId: 'len-token' } });
    assert.equal(tbError(all).message, 'Validation error: label length must be equal or less than 255, name length must be equal or less than 255, type length must be equal or less than 255');
    assert.equal((await api.get('/api/tenant/devices?deviceName=length-check')).status, 404);
  });

  // spec §7 items 12-17
  it('POST /api/device/credentials round-trips and rejects as ThingsBoard does', async () => {
    const device = (await api.post('/api/device?accessToken=cred-rt-1', { name: 'cred-rt' })).json;
    const current = await credentialsOf(device.id.id);
    assert.equal(typeof current.credentialsId, 'string');
    const saved = await api.post('/api/device/credentials', { ...current, credentialsId: 'cred-rt-2' });
    assert.equal(saved.status, 200, saved.text);
    assert.equal(saved.json.credentialsId, 'cred-rt-2');
    assert.deepEqual(saved.json.id, current.id);
    assert.equal((await credentialsOf(device.id.id)).credentialsId, 'cred-rt-2');

    const noDevice = await api.post('/api/device/credentials', { ...current, deviceId: null });
    assert.equal(tbError(noDevice).message, 'Invalid entity id');
    const noType = await api.post('/api/device/credentials', { ...current, credentialsType: null });
    assert.equal(tbError(noType).message, 'Device credentials type should be specified');
    const noId = await api.post('/api/device/credentials', { ...current, credentialsId: null });
    assert.equal(noId.status, 400);
    const otherRow = await api.post('/api/device/credentials', { ...current, id: { id: UNKNOWN } });
    assert.equal(tbError(otherRow).message, 'Unable to update non-existent device credentials!');
    const noSuchDevice = await api.post('/api/device/credentials', { ...current, deviceId: { entityType: 'DEVICE', id: UNKNOWN } });
    assert.equal(noSuchDevice.status, 404);
    assert.equal(tbError(noSuchDevice).message, `Device with id [${UNKNOWN}] is not found`);
  });

  it('replacing credentials ends the MQTT session and the HTTP long poll that used the old ones; the old token is refused at once', async () => {
    const device = (await api.post('/api/device?accessToken=replace-old', { name: 'replace-me' })).json;
    const client = await mqtt.connectAsync(`mqtt://127.0.0.1:${server.mqttPort}`, { username: 'replace-old', reconnectPeriod: 0, connectTimeout: 10_000 });
    const closed = new Promise<void>((resolve) => client.once('close', () => resolve()));
    const poll = fetch(`${server.httpUrl}/api/v1/replace-old/rpc?timeout=60000`).then((r) => r.status);
    await until('the long poll holds a session', () => server.core.sessions.count() >= 2, 400);
    const current = await credentialsOf(device.id.id);
    const res = await api.post('/api/device/credentials', { ...current, credentialsId: 'replace-new' });
    assert.equal(res.status, 200, res.text);
    await within(closed, 20_000, 'the MQTT connection closing');
    assert.equal(await within(poll, 20_000, 'the long poll ending'), 401);
    assert.equal(await telemetry('replace-old'), 401);
    assert.equal(await telemetry('replace-new'), 200);
    await assert.rejects(mqtt.connectAsync(`mqtt://127.0.0.1:${server.mqttPort}`, { username: 'replace-old', reconnectPeriod: 0, connectTimeout: 10_000 }));
    const again = await mqtt.connectAsync(`mqtt://127.0.0.1:${server.mqttPort}`, { username: 'replace-new', reconnectPeriod: 0, connectTimeout: 10_000 });
    await again.endAsync();
    const audit = await api.get(`/api/audit/logs?pageSize=100&page=0`);
    assert.ok(audit.json.data.some((e: any) => e.actionType === 'CREDENTIALS_UPDATED' && e.entityId?.id === device.id.id));
    assert.ok(!audit.text.includes('replace-new'), 'the new token is not in the audit log');
  });

  const bulk = (file: string, columns: { type: string; key?: string }[], options: { update?: boolean; header?: boolean; delimiter?: string } = {}) =>
    api.post('/api/device/bulk_import', { file, mapping: { columns, delimiter: options.delimiter ?? ',', update: options.update ?? true, header: options.header ?? true } });
  const attribute = async (id: string, scope: string, key: string) => {
    const res = await api.get(`/api/plugins/telemetry/DEVICE/${id}/values/attributes/${scope}?keys=${key}`);
    return res.json.find((a: any) => a.key === key)?.value;
  };

  // spec §7 item 18
  it('bulk import creates a device with a generated 20-character token; a re-import updates it and changes nothing', async () => {
    const columns = [{ type: 'NAME' }, { type: 'TYPE' }];
    const first = await bulk('name,type\nbulk-1,bulkType\n', columns);
    assert.equal(first.status, 200, first.text);
    assert.deepEqual(first.json, { created: 1, updated: 0, errors: 0, errorsList: [] });
    const device = (await api.get('/api/tenant/devices?deviceName=bulk-1')).json;
    assert.equal(device.type, 'bulkType');
    const token = (await credentialsOf(device.id.id)).credentialsId;
    assert.match(token, /^[A-Za-z0-9]{20}$/);
    const second = await bulk('name,type\nbulk-1,bulkType\n', columns);
    assert.deepEqual(second.json, { created: 0, updated: 1, errors: 0, errorsList: [] });
    assert.equal((await credentialsOf(device.id.id)).credentialsId, token);
  });

  // spec §7 items 19-20
  it('bulk import writes attribute, time-series and gateway cells; update:false keeps an existing device\'s values', async () => {
    const columns = [{ type: 'NAME' }, { type: 'SERVER_ATTRIBUTE', key: 'threshold' }, { type: 'SHARED_ATTRIBUTE', key: 'config' }, { type: 'TIMESERIES', key: 'temp' }, { type: 'IS_GATEWAY' }, { type: 'DESCRIPTION' }, { type: 'ACCESS_TOKEN' }];
    const first = await bulk('name,threshold,config,temp,gw,desc,token\nbulk-kv,45,"{""threshold"":45}","21,5",TRUE,A gateway,bulk-kv-token\n', columns);
    assert.deepEqual(first.json, { created: 1, updated: 0, errors: 0, errorsList: [] });
    const device = (await api.get('/api/tenant/devices?deviceName=bulk-kv')).json;
    assert.equal(device.additionalInfo.gateway, true);
    assert.equal(device.additionalInfo.description, 'A gateway');
    assert.equal(await attribute(device.id.id, 'SERVER_SCOPE', 'threshold'), 45);
    assert.deepEqual(await attribute(device.id.id, 'SHARED_SCOPE', 'config'), { threshold: 45 });
    const latest = await api.get(`/api/plugins/telemetry/DEVICE/${device.id.id}/values/timeseries?keys=temp`);
    assert.equal(latest.json.temp[0].value, '21.5');
    assert.equal((await credentialsOf(device.id.id)).credentialsId, 'bulk-kv-token');

    const second = await bulk('name,threshold,config,temp,gw,desc,token\nbulk-kv,99,,,,,\nbulk-kv-new,7,,,,,\n', columns, { update: false });
    assert.deepEqual(second.json, { created: 1, updated: 1, errors: 0, errorsList: [] });
    assert.equal(await attribute(device.id.id, 'SERVER_SCOPE', 'threshold'), 45, 'update:false skipped the existing device\'s cells');
    const fresh = (await api.get('/api/tenant/devices?deviceName=bulk-kv-new')).json;
    assert.equal(await attribute(fresh.id.id, 'SERVER_SCOPE', 'threshold'), 7);
    const third = await bulk('name;threshold\nbulk-kv;99\n', [{ type: 'NAME' }, { type: 'SERVER_ATTRIBUTE', key: 'threshold' }], { delimiter: ';' });
    assert.deepEqual(third.json, { created: 0, updated: 1, errors: 0, errorsList: [] });
    assert.equal(await attribute(device.id.id, 'SERVER_SCOPE', 'threshold'), 99);
  });

  it('bulk import reports failed rows as ThingsBoard does and goes on with the rest', async () => {
    await api.post('/api/device?accessToken=bulk-taken', { name: 'bulk-owner' });
    const columns = [{ type: 'NAME' }, { type: 'ACCESS_TOKEN' }, { type: 'MQTT_PASSWORD' }];
    const res = await bulk(`name,token,pw\n${'n'.repeat(300)},,\nbulk-dup,bulk-taken,\nbulk-mqtt,,only-password\n,,\nbulk-ok,,\n`, columns);
    assert.equal(res.status, 200, res.text);
    assert.equal(res.json.created, 1);
    assert.equal(res.json.errors, 4);
    assert.deepEqual(res.json.errorsList, [
      'Line 2: DataValidationException: Validation error: name length must be equal or less than 255',
      'Line 3: DeviceCredentialsValidationException: Device credentials are already assigned to another device!',
      'Line 4: DeviceCredentialsValidationException: Invalid device credentials: Both mqtt client id and user name are empty!',
      'Line 5: DataValidationException: Device name should be specified!',
    ]);
    const bad = await api.post('/api/device/bulk_import', { file: 'a', mapping: { columns: [{ type: 'NOPE' }], update: true, header: false } });
    assert.equal(bad.status, 400);
    const wide = await bulk('a,b\n', [{ type: 'NAME' }], { header: false });
    assert.equal(wide.status, 400);
  });
});
