/**
 * The device page against real MQTT traffic: telemetry shows live (WebSocket API) and in the chart; a shared
 * attribute edited in the page reaches an MQTT client; a two-way RPC is answered by the MQTT client, another times
 * out; credentials are shown masked and replaced.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import mqtt from 'mqtt';
import { adminCall, startConsole, skipWithoutChromium, type ConsoleFixture } from './browser.ts';

describe('device page', { skip: skipWithoutChromium() }, () => {
  let fx: ConsoleFixture;
  let client: mqtt.MqttClient;
  let deviceId = '';
  const received: { topic: string; payload: string }[] = [];
  before(async () => {
    fx = await startConsole();
    await adminCall(fx.server, 'POST', '/api/deviceProfile', {
      name: 'Thermo',
      provisionType: 'ALLOW_CREATE_NEW_DEVICES',
      provisionDeviceKey: 'thermo-key',
      profileData: { provisionConfiguration: { type: 'ALLOW_CREATE_NEW_DEVICES', provisionDeviceSecret: 'thermo-secret' } },
    });
    const res = await fetch(`${fx.server.httpUrl}/api/v1/provision`, {
      method: 'POST',
      body: JSON.stringify({ deviceName: 'thermo-1', provisionDeviceKey: 'thermo-key', provisionDeviceSecret: 'thermo-secret' }),
    });
    const answer = (await res.json()) as { credentialsValue: string; deviceId: string };
    deviceId = answer.deviceId;
    client = await mqtt.connectAsync(`mqtt://127.0.0.1:${fx.server.mqttPort}`, { username: answer.credentialsValue, reconnectPeriod: 0 });
    client.on('message', (topic, payload) => {
      received.push({ topic, payload: String(payload) });
      const rpc = /^v1\/devices\/me\/rpc\/request\/(\d+)$/.exec(topic);
      const request = rpc ? (JSON.parse(String(payload)) as { method: string; params: unknown }) : undefined;
      if (rpc && request?.method === 'getTemperature') client.publish(`v1/devices/me/rpc/response/${rpc[1]}`, JSON.stringify({ temperature: 22.5, echo: request.params }));
    });
    await client.subscribeAsync(['v1/devices/me/attributes', 'v1/devices/me/rpc/request/+'], { qos: 1 });
    await fx.login();
  });
  after(async () => {
    await client?.endAsync();
    await fx?.close();
  });

  test('telemetry sent over MQTT shows live in the page and in the chart, without a reload', async () => {
    const { page } = fx;
    await client.publishAsync('v1/devices/me/telemetry', JSON.stringify({ temperature: 20.5, humidity: 40 }), { qos: 1 });
    await page.goto(fx.url(`/devices/${deviceId}`));
    await page.getByRole('heading', { name: 'thermo-1' }).waitFor();
    await page.locator('td[data-key="temperature"]').filter({ hasText: '20.5' }).waitFor();
    await page.locator('.badge', { hasText: 'live' }).waitFor();
    const chart = page.getByRole('img', { name: 'Chart of humidity' }).or(page.getByRole('img', { name: 'Chart of temperature' }));
    await chart.waitFor();
    await page.getByLabel('Chart temperature').check();
    await page.getByLabel('Chart humidity').uncheck();
    const temperatureChart = page.getByRole('img', { name: 'Chart of temperature' });
    await page.waitForFunction(() => Number(document.querySelector('.chart')?.getAttribute('data-points')) >= 1);
    for (const value of [21.5, 23.25]) {
      await client.publishAsync('v1/devices/me/telemetry', JSON.stringify({ temperature: value }), { qos: 1 });
      await page.locator('td[data-key="temperature"]').filter({ hasText: String(value) }).waitFor();
    }
    await page.waitForFunction(() => Number(document.querySelector('.chart')?.getAttribute('data-points')) >= 3);
    assert.ok(await temperatureChart.locator('canvas').isVisible());
    await page.getByRole('button', { name: 'Last day' }).click();
    await page.waitForFunction(() => Number(document.querySelector('.chart')?.getAttribute('data-points')) >= 3);
    await fx.shot('device');
    // Zoom: a drag across the middle of the plot narrows the visible range.
    const span = async () => page.evaluate(`(() => { const c = document.querySelector('.chart'); return Number(c.dataset.max) - Number(c.dataset.min); })()`) as Promise<number>;
    await page.waitForFunction(`Number(document.querySelector('.chart')?.dataset.max) > 0`);
    const before = await span();
    const box = (await page.locator('.chart .u-over').boundingBox())!;
    await page.mouse.move(box.x + box.width * 0.3, box.y + box.height / 2);
    await page.mouse.down();
    await page.mouse.move(box.x + box.width * 0.6, box.y + box.height / 2, { steps: 5 });
    await page.mouse.up();
    await page.waitForFunction(`(() => { const c = document.querySelector('.chart'); return Number(c.dataset.max) - Number(c.dataset.min) < ${before} / 2; })()`);
  });

  test('a value that arrives while the chart is reading its history is kept in the chart', async () => {
    const { page } = fx;
    // Fault injected: the history read runs on the server now, but its answer reaches the page only later.
    let release!: () => void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    let readPoints = -1;
    await page.route('**/values/timeseries?*', async (route) => {
      const response = await route.fetch();
      const body = (await response.json()) as Record<string, unknown[]>;
      readPoints = body.temperature?.length ?? 0;
      await gate;
      await route.fulfill({ response, json: body });
    });
    try {
      await page.getByRole('button', { name: 'Last hour' }).click();
      const deadline = Date.now() + 30_000;
      while (readPoints < 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
      assert.ok(readPoints >= 3, `the history read answered ${readPoints} points`);
      await client.publishAsync('v1/devices/me/telemetry', JSON.stringify({ temperature: 24.75 }), { qos: 1 });
      await page.locator('td[data-key="temperature"]').filter({ hasText: '24.75' }).waitFor();
      release();
      await page.locator('section[aria-label="Telemetry"][aria-busy="false"]').waitFor();
      assert.equal(Number(await page.locator('.chart').getAttribute('data-points')), readPoints + 1);
    } finally {
      release();
      await page.unroute('**/values/timeseries?*');
    }
  });

  test('a shared attribute edited in the page reaches the MQTT client', async () => {
    const { page } = fx;
    await page.getByRole('tab', { name: 'Shared' }).click();
    await page.getByRole('button', { name: 'Save attribute' }).click();
    await page.getByRole('alert').filter({ hasText: 'Key is required.' }).waitFor();
    await page.getByLabel('Attribute key').fill('targetTemperature');
    await page.getByLabel('Attribute value (JSON or text)').fill('19.5');
    await page.getByRole('button', { name: 'Save attribute' }).click();
    await page.getByRole('table', { name: 'SHARED_SCOPE attributes' }).getByText('targetTemperature').waitFor();
    const deadline = Date.now() + 30_000;
    while (!received.some((m) => m.topic === 'v1/devices/me/attributes') && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    const update = received.find((m) => m.topic === 'v1/devices/me/attributes');
    assert.deepEqual(JSON.parse(update!.payload), { targetTemperature: 19.5 });
    await page.getByRole('tab', { name: 'Client' }).click();
    assert.equal(await page.getByRole('button', { name: 'Save attribute' }).count(), 0, 'client attributes are read-only');
  });

  test('a two-way RPC is answered by the MQTT client; one it ignores times out; bad params are refused before sending', async () => {
    const { page } = fx;
    const rpc = page.getByRole('region', { name: 'RPC' });
    await rpc.getByLabel('Method').fill('getTemperature');
    await rpc.getByLabel('Params (JSON)').fill('{"unit": oops}');
    await rpc.getByRole('button', { name: 'Send RPC' }).click();
    await rpc.getByText('Params must be JSON').waitFor();
    await rpc.getByLabel('Params (JSON)').fill('{"unit": "C"}');
    await rpc.getByRole('button', { name: 'Send RPC' }).click();
    const outcome = rpc.getByLabel('RPC outcome');
    await outcome.and(page.locator('[data-outcome="reply"]')).waitFor();
    assert.deepEqual(JSON.parse((await outcome.locator('pre').textContent())!), { temperature: 22.5, echo: { unit: 'C' } });
    await outcome.scrollIntoViewIfNeeded();
    await fx.shot('device-rpc');
    await rpc.getByLabel('Method').fill('reboot');
    await rpc.getByLabel('Timeout (ms)').fill('1000');
    await rpc.getByRole('button', { name: 'Send RPC' }).click();
    await page.locator('[data-outcome="timeout"]').waitFor();
  });

  test('credentials are masked until revealed, and replaced', async () => {
    const { page } = fx;
    const before = await adminCall<{ credentialsId: string }>(fx.server, 'GET', `/api/device/${deviceId}/credentials`);
    const token = page.getByLabel('access token', { exact: true });
    assert.equal(await token.getAttribute('data-secret'), 'masked');
    await page.getByRole('button', { name: 'Reveal access token' }).click();
    assert.equal(await token.textContent(), before.body.credentialsId);
    await page.getByRole('button', { name: 'Replace credentials' }).click();
    await page.getByRole('region', { name: 'Credentials' }).getByRole('textbox', { name: 'Access token' }).fill('replaced-token-1');
    await page.getByRole('button', { name: 'Save credentials' }).click();
    await page.getByRole('button', { name: 'Replace credentials' }).waitFor();
    const after = await adminCall<{ credentialsId: string }>(fx.server, 'GET', `/api/device/${deviceId}/credentials`);
    assert.equal(after.body.credentialsId, 'replaced-token-1');
  });
});
