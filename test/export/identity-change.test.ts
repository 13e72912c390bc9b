/**
 * Data out after a device changes while it stays connected: a telemetry message committed after the rename is
 * exported under the new name (README, Data out: `data` holds `deviceName` and `profileId`).
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import mqtt from 'mqtt';
import { startTestServer, type TestServer } from '../support/harness.ts';
import { adminClient, type AdminClient } from '../admin/admin-client.ts';
import { eventually, startReceiver, type Receiver } from './receiver.ts';

describe('export of a device renamed while connected', () => {
  let server: TestServer;
  let api: AdminClient;
  let receiver: Receiver;

  before(async () => {
    server = await startTestServer();
    api = await adminClient(server);
    receiver = await startReceiver();
  });
  after(async () => {
    await server?.close();
    await receiver?.close();
  });

  it('exports telemetry sent after the rename under the new name', async () => {
    assert.equal((await api.post('/api/export/rule', { name: 'all', kinds: ['telemetry'], destination: { type: 'webhook', url: receiver.url } })).status, 200);
    const created = await api.post('/api/device?accessToken=rename-export-token', { name: 'before-rename' });
    assert.equal(created.status, 200, created.text);
    const client = await mqtt.connectAsync(`mqtt://127.0.0.1:${server.mqttPort}`, { username: 'rename-export-token', reconnectPeriod: 0 });
    try {
      await client.publishAsync('v1/devices/me/telemetry', JSON.stringify({ ts: 1000, values: { t: 1 } }), { qos: 1 });
      await eventually('the first message exported', () => receiver.accepted.length >= 1);
      const renamed = await api.post('/api/device', { ...created.json, name: 'after-rename' });
      assert.equal(renamed.status, 200, renamed.text);
      await client.publishAsync('v1/devices/me/telemetry', JSON.stringify({ ts: 2000, values: { t: 2 } }), { qos: 1 });
      await eventually('the second message exported', () => receiver.accepted.length >= 2);
    } finally {
      await client.endAsync();
    }
    const second = receiver.accepted.find((m) => m.kind === 'telemetry' && m.data.telemetry?.[0]?.ts === 2000);
    assert.equal(second?.data.deviceName, 'after-rename', 'committed after the rename: exported under the new name');
  });

  // The catch-all rule 'all' of the test above exports the device in both profiles.
  it('matches telemetry sent after a move to another profile against the new profile\'s rules', async () => {
    const moved = await api.post('/api/deviceProfile', { name: 'Moved here', type: 'DEFAULT', transportType: 'DEFAULT' });
    assert.equal(moved.status, 200, moved.text);
    const movedProfileId = moved.json.id.id as string;
    const rule = await api.post('/api/export/rule', { name: 'moved only', kinds: ['telemetry'], deviceProfileId: { entityType: 'DEVICE_PROFILE', id: movedProfileId }, destination: { type: 'webhook', url: receiver.url } });
    assert.equal(rule.status, 200, rule.text);
    assert.equal(rule.json.deviceProfileId?.id, movedProfileId);
    const created = await api.post('/api/device?accessToken=move-export-token', { name: 'profile-mover' });
    assert.equal(created.status, 200, created.text);
    const fromMover = (ts: number) => receiver.accepted.filter((m) => m.data.deviceName === 'profile-mover' && m.data.telemetry?.[0]?.ts === ts);
    const client = await mqtt.connectAsync(`mqtt://127.0.0.1:${server.mqttPort}`, { username: 'move-export-token', reconnectPeriod: 0 });
    try {
      await client.publishAsync('v1/devices/me/telemetry', JSON.stringify({ ts: 5000, values: { t: 1 } }), { qos: 1 });
      await eventually('the message before the move exported by the catch-all rule', () => fromMover(5000).length >= 1);
      const res = await api.post('/api/device', { ...created.json, deviceProfileId: { entityType: 'DEVICE_PROFILE', id: movedProfileId } });
      assert.equal(res.status, 200, res.text);
      assert.equal(res.json.deviceProfileId.id, movedProfileId);
      await client.publishAsync('v1/devices/me/telemetry', JSON.stringify({ ts: 6000, values: { t: 2 } }), { qos: 1 });
      await eventually('the message after the move exported by both rules', () => fromMover(6000).length >= 2);
    } finally {
      await client.endAsync();
    }
    assert.ok(!fromMover(5000).some((m) => m.rule === 'moved only'), 'before the move the device was not in the rule\'s profile');
    const after = fromMover(6000);
    assert.ok(after.some((m) => m.rule === 'moved only'), 'after the move the profile\'s rule exports it');
    for (const m of after) assert.equal(m.data.profileId, movedProfileId, 'exported with the new profile id');
  });
});
