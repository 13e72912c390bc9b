import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { AttributeUpdate, DeviceIdentity } from '../../src/core/api.ts';
import { startTestServer, type TestServer } from '../support/harness.ts';
import { adminClient, tbError, within, type AdminClient, deviceWithIdentity } from './admin-client.ts';

type Entry = { lastUpdateTs: number; key: string; value: unknown };

describe('attributes over the admin API', () => {
  let server: TestServer;
  let api: AdminClient;
  let deviceId: string;
  let identity: DeviceIdentity;
  let base: string;

  before(async () => {
    server = await startTestServer();
    api = await adminClient(server);
    ({ deviceId, base, identity } = await deviceWithIdentity(server, api, 'attr-device-token', 'Attribute device'));
    await server.core.telemetry.saveClientAttributesJson(identity, '{"firmware":"v1","battery":87}');
  });
  after(() => server.close());

  const byKey = (entries: Entry[]) => Object.fromEntries(entries.map((e) => [e.key, e.value]));

  it('writes server attributes and reads them back typed, in ThingsBoard AttributeData form', async () => {
    const write = await api.call('POST', `${base}/attributes/SERVER_SCOPE`, { raw: '{"location":"hall","floor":3,"ratio":1.0,"enabled":true,"cfg":{"x":[1,2]},"skipped":null}' });
    assert.equal(write.status, 200, write.text);
    const res = await api.get(`${base}/values/attributes/SERVER_SCOPE`);
    assert.equal(res.status, 200);
    const entries = res.json as Entry[];
    const derived = new Set(['active', 'lastActivityTime', 'lastConnectTime', 'lastDisconnectTime']); // device state, as ThingsBoard has it
    assert.deepEqual(byKey(entries.filter((e) => !derived.has(e.key))), { location: 'hall', floor: 3, ratio: 1, enabled: true, cfg: { x: [1, 2] } });
    assert.equal(typeof byKey(entries).active, 'boolean');
    assert.deepEqual(Object.keys(entries[0]), ['lastUpdateTs', 'key', 'value']);
    assert.equal(typeof entries[0].lastUpdateTs, 'number');
    assert.match(res.text, /"key":"ratio","value":1\.0\}/, 'a double stays a double');
  });

  it('filters by keys', async () => {
    const res = await api.get(`${base}/values/attributes/SERVER_SCOPE?keys=floor,nothing`);
    assert.deepEqual(byKey(res.json), { floor: 3 });
  });

  it('reads every scope when none is given', async () => {
    await api.post(`${base}/attributes/SHARED_SCOPE`, { targetTemperature: 21 });
    const res = await api.get(`${base}/values/attributes?keys=firmware,targetTemperature,location`);
    assert.equal(res.status, 200);
    assert.deepEqual(byKey(res.json), { firmware: 'v1', targetTemperature: 21, location: 'hall' });
    const client = await api.get(`${base}/values/attributes/CLIENT_SCOPE`);
    assert.deepEqual(byKey(client.json), { firmware: 'v1', battery: 87 });
  });

  it('lists attribute keys per scope and across scopes', async () => {
    assert.deepEqual([...(await api.get(`${base}/keys/attributes/CLIENT_SCOPE`)).json].sort(), ['battery', 'firmware']);
    const all = (await api.get(`${base}/keys/attributes`)).json as string[];
    for (const key of ['battery', 'targetTemperature', 'location']) assert.ok(all.includes(key), key);
  });

  it('accepts ThingsBoard\'s V1 and legacy write paths', async () => {
    assert.equal((await api.post(`${base}/SERVER_SCOPE`, { viaV1: 'yes' })).status, 200);
    assert.equal((await api.post(`/api/plugins/telemetry/${deviceId}/SERVER_SCOPE`, { viaLegacy: 'yes' })).status, 200);
    const res = await api.get(`${base}/values/attributes/SERVER_SCOPE?keys=viaV1,viaLegacy`);
    assert.deepEqual(byKey(res.json), { viaV1: 'yes', viaLegacy: 'yes' });
  });

  it('pushes a shared attribute write to an open device session, and a deletion as {"deleted":[..]}', async () => {
    const updates: AttributeUpdate[] = [];
    let notify: () => void = () => {};
    const session = server.core.sessions.open(identity, {
      onAttributes: (update) => {
        updates.push(update);
        notify();
      },
    });
    try {
      const next = () => new Promise<void>((resolve) => (notify = resolve));
      let arrived = next();
      assert.equal((await api.post(`${base}/SHARED_SCOPE`, { mode: 'eco', level: 2 })).status, 200);
      await within(arrived, 5000, 'shared attribute push');
      assert.deepEqual(updates[0], { mode: 'eco', level: 2 });

      arrived = next();
      assert.equal((await api.delete(`${base}/SHARED_SCOPE?keys=mode`)).status, 200);
      await within(arrived, 5000, 'shared attribute deletion push');
      assert.deepEqual(updates[1], { deleted: ['mode'] });
    } finally {
      session.close();
    }
    const left = await api.get(`${base}/values/attributes/SHARED_SCOPE?keys=mode,level`);
    assert.deepEqual(byKey(left.json), { level: 2 });
  });

  it('does not push server attribute writes to the device', async () => {
    const updates: AttributeUpdate[] = [];
    const session = server.core.sessions.open(identity, { onAttributes: (update) => updates.push(update) });
    try {
      assert.equal((await api.post(`${base}/SERVER_SCOPE`, { secretNote: 'x' })).status, 200);
      // A shared write afterwards is pushed; the server write before it must not be.
      let arrived!: () => void;
      const pushed = new Promise<void>((resolve) => (arrived = resolve));
      session.update({ onAttributes: (update) => (updates.push(update), arrived()) });
      assert.equal((await api.post(`${base}/SHARED_SCOPE`, { marker: 1 })).status, 200);
      await within(pushed, 5000, 'shared attribute push');
      assert.deepEqual(updates, [{ marker: 1 }]);
    } finally {
      session.close();
    }
  });

  it('deletes server attributes', async () => {
    await api.post(`${base}/SERVER_SCOPE`, { temporary: 1 });
    assert.equal((await api.delete(`/api/plugins/telemetry/${deviceId}/SERVER_SCOPE?keys=temporary`)).status, 200);
    assert.deepEqual((await api.get(`${base}/values/attributes/SERVER_SCOPE?keys=temporary`)).json, []);
  });

  it('refuses client-scope writes and unknown scopes with 400, as ThingsBoard does', async () => {
    const client = await api.post(`${base}/attributes/CLIENT_SCOPE`, { firmware: 'hacked' });
    assert.equal(client.status, 400);
    assert.equal(tbError(client).message, 'Invalid scope: CLIENT_SCOPE');
    assert.equal((await api.post(`${base}/attributes/OTHER_SCOPE`, { a: 1 })).status, 400);
    const read = await api.get(`${base}/values/attributes/OTHER_SCOPE`);
    assert.equal(read.status, 400);
    assert.equal(tbError(read).message, 'Invalid attribute scope: OTHER_SCOPE');
    assert.equal((await api.delete(`${base}/OTHER_SCOPE?keys=a`)).status, 400);
  });

  it('answers 400 to bodies that are not a non-empty JSON object, and to a delete without keys', async () => {
    const url = `${base}/attributes/SERVER_SCOPE`;
    assert.equal((await api.call('POST', url, { raw: '[1,2]' })).status, 400);
    assert.equal((await api.call('POST', url, { raw: '"text"' })).status, 400);
    assert.equal((await api.call('POST', url, { raw: '5' })).status, 400);
    assert.equal((await api.call('POST', url, { raw: '{"a":' })).status, 400);
    assert.equal((await api.call('POST', url, { raw: '' })).status, 400);
    const empty = await api.call('POST', url, { raw: '{}' });
    assert.equal(empty.status, 400);
    assert.equal(tbError(empty).message, 'No attributes data found in request body!');
    assert.equal(tbError(await api.call('POST', url, { raw: '{"  ":1}' })).message, 'Key cannot be empty or contains only spaces');
    assert.equal((await api.delete(`${base}/SERVER_SCOPE`)).status, 400);
  });

  it('records attribute writes in the audit log with keys, not values', async () => {
    await api.post(`${base}/SERVER_SCOPE`, { auditedKey: 'audited-value' });
    const res = await api.get('/api/audit/logs?pageSize=100&page=0');
    const entry = res.json.data.find((e: { actionType: string; actionData: { keys?: string[] } }) => e.actionType === 'ATTRIBUTES_UPDATED' && e.actionData.keys?.includes('auditedKey'));
    assert.ok(entry, 'ATTRIBUTES_UPDATED entry');
    assert.deepEqual(entry.entityId, { entityType: 'DEVICE', id: deviceId });
    assert.equal(entry.actionData.scope, 'SERVER_SCOPE');
    assert.ok(!res.text.includes('audited-value'));
  });

  it('needs a token for reads and writes', async () => {
    assert.equal((await api.get(`${base}/values/attributes`, { token: null })).status, 401);
    assert.equal((await api.post(`${base}/attributes/SERVER_SCOPE`, { a: 1 }, { token: null })).status, 401);
    assert.equal((await api.post(`/api/plugins/telemetry/${deviceId}/SERVER_SCOPE`, { a: 1 }, { token: null })).status, 401);
    assert.equal((await api.post(`${base}/timeseries/ANY`, { a: 1 }, { token: null })).status, 401);
  });

  it('keeps a numeric string a string, as ThingsBoard REST does', async () => {
    await api.post(`${base}/SERVER_SCOPE`, { version: '1.2' });
    assert.deepEqual(byKey((await api.get(`${base}/values/attributes/SERVER_SCOPE?keys=version`)).json), { version: '1.2' });
  });
});
