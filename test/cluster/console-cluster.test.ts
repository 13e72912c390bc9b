/**
 * The web console on a two-node cluster (PostgreSQL + Redis): the browser talks to node A while the device is
 * connected to node B. Provisioning on B shows in A's device table and overview; B's telemetry shows live on A's
 * device page; a shared attribute and a two-way RPC sent from A reach the MQTT client on B.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import mqtt from 'mqtt';
import { startTestServer, type TestServer } from '../support/harness.ts';
import { skipUnlessPostgres, startPostgres, type TestPostgres } from '../support/postgres.ts';
import { skipUnlessRedis, startRedis, type TestRedis } from '../support/redis.ts';
import { adminCall, skipWithoutChromium, startConsole, type ConsoleFixture } from '../ui/browser.ts';

describe('web console on two nodes (PostgreSQL + Redis)', { skip: skipWithoutChromium() || skipUnlessPostgres() || skipUnlessRedis() }, () => {
  let pg: TestPostgres | undefined;
  let redis: TestRedis | undefined;
  let a: TestServer | undefined;
  let b: TestServer | undefined;
  let fx: ConsoleFixture | undefined;
  let client: mqtt.MqttClient | undefined;
  let deviceId = '';
  const attributes: string[] = [];

  before(async () => {
    [pg, redis] = await Promise.all([startPostgres(), startRedis()]);
    const database = await pg.createDatabase();
    a = await startTestServer({ database, bus: redis.url, logLevel: 'warn' });
    b = await startTestServer({ database, bus: redis.url, logLevel: 'warn' });
    fx = await startConsole({}, undefined, a);
    await adminCall(a, 'POST', '/api/deviceProfile', {
      name: 'Cluster',
      provisionType: 'ALLOW_CREATE_NEW_DEVICES',
      provisionDeviceKey: 'cl-key',
      profileData: { provisionConfiguration: { type: 'ALLOW_CREATE_NEW_DEVICES', provisionDeviceSecret: 'cl-secret' } },
    });
    await fx.login();
  });

  after(async () => {
    await client?.endAsync().catch(() => {});
    await fx?.close().catch(() => {});
    await Promise.allSettled([a?.close(), b?.close()]);
    await Promise.allSettled([pg?.stop(), redis?.stop()]);
  });

  test('a device provisioned on node B appears in node A\'s table (over HTTP) and overview', async () => {
    const { page } = fx!;
    await page.goto(fx!.url('/devices'));
    const res = await fetch(`${b!.httpUrl}/api/v1/provision`, { method: 'POST', body: JSON.stringify({ deviceName: 'cl-1', provisionDeviceKey: 'cl-key', provisionDeviceSecret: 'cl-secret' }) });
    const answer = (await res.json()) as { status: string; deviceId: string; credentialsValue: string };
    assert.equal(answer.status, 'SUCCESS');
    deviceId = answer.deviceId;
    const row = page.getByRole('row').filter({ has: page.getByRole('link', { name: 'cl-1' }) });
    await row.waitFor();
    assert.match(await row.innerText(), /over HTTP/);
    client = await mqtt.connectAsync(`mqtt://127.0.0.1:${b!.mqttPort}`, { username: answer.credentialsValue, reconnectPeriod: 0 });
    client.on('message', (topic, payload) => {
      if (topic === 'v1/devices/me/attributes') attributes.push(String(payload));
      const rpc = /^v1\/devices\/me\/rpc\/request\/(\d+)$/.exec(topic);
      if (rpc) client!.publish(`v1/devices/me/rpc/response/${rpc[1]}`, JSON.stringify({ node: 'B', got: JSON.parse(String(payload)).params }));
    });
    await client.subscribeAsync(['v1/devices/me/attributes', 'v1/devices/me/rpc/request/+'], { qos: 1 });
    await page.goto(fx!.url('/'));
    await page.locator('[data-stat="provisioned-24h"]').filter({ hasText: /^1$/ }).waitFor();
  });

  test('telemetry sent to node B shows live on node A; an attribute and an RPC from node A reach the client on node B', async () => {
    const { page } = fx!;
    await page.goto(fx!.url(`/devices/${deviceId}`));
    await page.locator('.badge', { hasText: 'live' }).waitFor();
    await client!.publishAsync('v1/devices/me/telemetry', JSON.stringify({ temperature: 30.5 }), { qos: 1 });
    await page.locator('td[data-key="temperature"]').filter({ hasText: '30.5' }).waitFor();

    await page.getByRole('tab', { name: 'Shared' }).click();
    await page.getByLabel('Attribute key').fill('mode');
    await page.getByLabel('Attribute value (JSON or text)').fill('eco');
    await page.getByRole('button', { name: 'Save attribute' }).click();
    const deadline = Date.now() + 30_000;
    while (attributes.length === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    assert.deepEqual(JSON.parse(attributes[0]), { mode: 'eco' });

    const rpc = page.getByRole('region', { name: 'RPC' });
    await rpc.getByLabel('Method').fill('where');
    await rpc.getByLabel('Params (JSON)').fill('[1, 2]');
    await rpc.getByRole('button', { name: 'Send RPC' }).click();
    await page.locator('[data-outcome="reply"]').waitFor();
    assert.deepEqual(JSON.parse((await page.locator('[data-outcome="reply"] pre').textContent())!), { node: 'B', got: [1, 2] });
  });
});
