/** The overview page: device counts, provisioning outcomes by reason and as a chart, live telemetry rate, health. */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import mqtt from 'mqtt';
import { adminCall, startConsole, skipWithoutChromium, type ConsoleFixture } from './browser.ts';

describe('overview page', { skip: skipWithoutChromium() }, () => {
  let fx: ConsoleFixture;
  let client: mqtt.MqttClient;
  let sending = true;
  before(async () => {
    fx = await startConsole();
    await adminCall(fx.server, 'POST', '/api/deviceProfile', {
      name: 'Open',
      provisionType: 'ALLOW_CREATE_NEW_DEVICES',
      provisionDeviceKey: 'ov-key',
      profileData: { provisionConfiguration: { type: 'ALLOW_CREATE_NEW_DEVICES', provisionDeviceSecret: 'ov-secret' } },
    });
    const provision = (deviceName: string, secret: string) =>
      fetch(`${fx.server.httpUrl}/api/v1/provision`, { method: 'POST', body: JSON.stringify({ deviceName, provisionDeviceKey: 'ov-key', provisionDeviceSecret: secret }) }).then((r) => r.json() as Promise<{ credentialsValue: string }>);
    const first = await provision('ov-1', 'ov-secret');
    await provision('ov-2', 'ov-secret');
    await provision('ov-3', 'wrong-secret');
    client = await mqtt.connectAsync(`mqtt://127.0.0.1:${fx.server.mqttPort}`, { username: first.credentialsValue, reconnectPeriod: 0 });
    void (async () => {
      for (let i = 0; sending; i++) {
        await client.publishAsync('v1/devices/me/telemetry', JSON.stringify({ t: i }), { qos: 1 }).catch(() => {});
        await new Promise((r) => setTimeout(r, 50));
      }
    })();
    await fx.login();
  });
  after(async () => {
    sending = false;
    await client?.endAsync();
    await fx?.close();
  });

  test('shows devices, provisioning outcomes by status and reason, a live telemetry rate and health', async () => {
    const { page } = fx;
    await page.goto(fx.url('/'));
    await page.locator('[data-stat="devices-total"]').filter({ hasText: /^2$/ }).waitFor();
    await page.locator('[data-stat="provisioned-24h"]').filter({ hasText: /^2$/ }).waitFor();
    await page.getByRole('table', { name: 'This node since it started (unknown keys included)' }).getByText('BAD_KEY_OR_SECRET').waitFor();
    await page.getByRole('img', { name: 'Provisioning requests per hour, last 24 hours' }).locator('canvas').waitFor();
    await page.waitForFunction(() => Number(document.querySelector('[data-stat="telemetry-rate"]')?.textContent) > 0);
    await page.locator('[data-stat="connections-mqtt"]').filter({ hasText: /^[1-9]/ }).waitFor();
    assert.equal(await page.getByRole('region', { name: 'Health' }).getByText('UP').count(), 2);
    await fx.shot('overview');
  });
});
