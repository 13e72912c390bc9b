/** Data out of sub-devices: what a gateway publishes for its devices is exported as theirs. */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import mqtt from 'mqtt';
import { startTestServer, type TestServer } from '../support/harness.ts';
import { adminClient, type AdminClient } from '../admin/admin-client.ts';
import { eventually, startReceiver, type Receiver } from './receiver.ts';

describe('export of gateway traffic', () => {
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

  it('exports sub-device telemetry and attributes under the sub-device', async () => {
    assert.equal((await api.post('/api/export/rule', { name: 'gw', kinds: ['telemetry', 'attributes'], destination: { type: 'webhook', url: receiver.url } })).status, 200);
    const gw = await api.post('/api/device?accessToken=gw-export-token', { name: 'gw-export', additionalInfo: { gateway: true } });
    assert.equal(gw.status, 200, gw.text);
    const client = await mqtt.connectAsync(`mqtt://127.0.0.1:${server.mqttPort}`, { username: 'gw-export-token', reconnectPeriod: 0 });
    await client.publishAsync('v1/gateway/telemetry', JSON.stringify({ 'Sub A': [{ ts: 1000, values: { t: 1 } }], 'Sub B': [{ ts: 2000, values: { t: 2 } }] }), { qos: 1 });
    await client.publishAsync('v1/gateway/attributes', JSON.stringify({ 'Sub A': { fw: 'x' } }), { qos: 1 });
    await client.endAsync();
    await eventually('three messages exported', () => receiver.accepted.length >= 3);
    const byName = (kind: string, name: string) => receiver.accepted.find((m) => m.kind === kind && m.data.deviceName === name);
    assert.deepEqual(byName('telemetry', 'Sub A')?.data.telemetry, [{ ts: 1000, values: { t: 1 } }]);
    assert.deepEqual(byName('telemetry', 'Sub B')?.data.telemetry, [{ ts: 2000, values: { t: 2 } }]);
    assert.deepEqual(byName('attributes', 'Sub A')?.data.attributes, { fw: 'x' });
    assert.notEqual(byName('telemetry', 'Sub A')?.deviceId, gw.json.id.id, 'exported as the sub-device, not the gateway');
  });
});
