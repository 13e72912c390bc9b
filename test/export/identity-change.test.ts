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
});
