/**
 * Change notices lost in a bus outage (two nodes, one PostgreSQL, one Redis). Redis pub/sub is not durable: a
 * `device-updated` or `credentials-changed` published while Redis is down, or while node B's subscription is cut, never
 * reaches B. The admin's change is saved all the same (node A answers 200 even when its publish fails), and when B's bus
 * is back B assumes it missed notices: its cached logins go (a replaced access token stops working on B at once, not
 * after the 60 s cache lifetime) and its open sessions take their devices' identities from the store.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import mqtt, { type MqttClient } from 'mqtt';
import { startTestServer, type TestServer } from '../support/harness.ts';
import { skipUnlessPostgres, startPostgres, type TestPostgres } from '../support/postgres.ts';
import { skipUnlessRedis, startRedis, type TestRedis } from '../support/redis.ts';
import { startFaultProxy, type FaultProxy } from '../support/fault-proxy.ts';
import { adminApi, until, type ApiResponse } from './cluster-support.ts';

describe('change notices across a bus outage, two nodes', { skip: skipUnlessPostgres() || skipUnlessRedis() }, () => {
  let pg: TestPostgres | undefined;
  let redis: TestRedis | undefined;
  let proxy: FaultProxy | undefined;
  /** Node A talks to Redis directly; node B through the proxy, so B alone can be cut off. */
  let a: TestServer | undefined;
  let b: TestServer | undefined;
  let api: (method: 'GET' | 'POST' | 'DELETE', path: string, body?: unknown) => Promise<ApiResponse>;
  let reconnectsOfB = 0;
  const clients: MqttClient[] = [];

  before(async () => {
    [pg, redis] = await Promise.all([startPostgres(), startRedis()]);
    proxy = await startFaultProxy(redis.port);
    const database = await pg.createDatabase();
    a = await startTestServer({ database, bus: redis.url, logLevel: 'info' });
    b = await startTestServer({ database, bus: `redis://127.0.0.1:${proxy.port}`, logLevel: 'warn' });
    // Registered after core's own listener: when it runs, B has dropped its caches and started catching up.
    b.bus.onReconnect(() => reconnectsOfB++);
    api = adminApi(a.httpUrl, await a.adminToken());
  });

  after(async () => {
    await Promise.allSettled(clients.map((c) => c.endAsync(true)));
    await Promise.allSettled([a?.close(), b?.close()]);
    await proxy?.close();
    await Promise.allSettled([pg?.stop(), redis?.stop()]);
  });

  /** A device with an MQTT session on node B, and one whose access token node B has a cached login of. */
  const setUp = async (prefix: string) => {
    const watched = await api('POST', `/api/device?accessToken=${prefix}-mqtt-token`, { name: `${prefix}-before` });
    assert.equal(watched.status, 200, watched.text);
    const client = await mqtt.connectAsync(`mqtt://127.0.0.1:${b!.mqttPort}`, { username: `${prefix}-mqtt-token`, reconnectPeriod: 0, connectTimeout: 10_000 });
    clients.push(client);
    await client.publishAsync('v1/devices/me/telemetry', JSON.stringify({ n: 1 }), { qos: 1 });
    const watchedId = watched.json.id.id as string;
    const nameOnB = () => b!.core.sessionRegistry.sessionsOf(watchedId)[0]?.identity.deviceName;
    assert.equal(nameOnB(), `${prefix}-before`);

    const tokenDevice = await api('POST', `/api/device?accessToken=${prefix}-old-token`, { name: `${prefix}-token-device` });
    assert.equal(tokenDevice.status, 200, tokenDevice.text);
    const postOnB = (token: string) => fetch(`${b!.httpUrl}/api/v1/${token}/telemetry`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"n":1}' }).then((r) => r.status);
    assert.equal(await postOnB(`${prefix}-old-token`), 200, 'node B caches a login of the old token');
    const creds = await api('GET', `/api/device/${tokenDevice.json.id.id}/credentials`);
    assert.equal(creds.status, 200, creds.text);
    return { watched, nameOnB, postOnB, creds };
  };

  /** A ping that fails, or that gets no answer within a second (a command waiting for a connection that never comes). */
  const busDown = async (server: TestServer) =>
    until('the bus to be down', () => Promise.race([server.bus.ping().then(() => false, () => true), new Promise<boolean>((r) => setTimeout(() => r(true), 1000).unref())]), 400);

  test('Redis down: node A answers 200 and counts the failed publish; once Redis is back, B takes the new name and the replaced token stops working on B', async () => {
    const { watched, nameOnB, postOnB, creds } = await setUp('outage');
    await redis!.stop();
    // Redis comes back on the same port even when an assertion fails, so the next test starts with a working bus.
    let back = false;
    const bringBack = async () => {
      if (back) return;
      back = true;
      redis = await startRedis({ port: redis!.port });
    };
    try {
      await Promise.all([busDown(a!), busDown(b!)]);
      const reconnectsBefore = reconnectsOfB;

      const renamed = await api('POST', '/api/device', { ...watched.json, name: 'outage-after' });
      assert.equal(renamed.status, 200, `the rename is saved and answered as such: ${renamed.text}`);
      const replaced = await api('POST', '/api/device/credentials', { ...creds.json, credentialsId: 'outage-new-token' });
      assert.equal(replaced.status, 200, `the new token is saved and answered as such: ${replaced.text}`);
      const device = await api('GET', `/api/device/${watched.json.id.id}`);
      assert.equal(device.json.name, 'outage-after');
      // The failure is counted and logged with the device id, never with a token.
      await until('the failed publishes to be counted', async () => /fleetgate_bus_publish_failures_total\{kind="device-updated"\} [1-9]/.test(await a!.metrics!.render()), 400);
      const failures = a!.logLines.filter((l) => l.includes('bus-publish-failed'));
      assert.ok(failures.some((l) => l.includes(watched.json.id.id)), 'the failure names the device');
      assert.ok(!a!.logLines.some((l) => l.includes('outage-new-token') || l.includes('outage-old-token')), 'no token in the log');
      assert.equal(nameOnB(), 'outage-before', 'node B cannot have heard it yet');

      await bringBack();
      await until('node B to reconnect', () => reconnectsOfB > reconnectsBefore, 600);
      assert.equal(await postOnB('outage-old-token'), 401, 'the replaced token stops working on B once its bus is back');
      assert.equal(await postOnB('outage-new-token'), 200);
      await until('node B to take the new name', () => nameOnB() === 'outage-after', 600);
    } finally {
      await bringBack();
    }
  });

  test("node B's subscription cut while node A publishes: B catches up from the store when it is back", async () => {
    const { watched, nameOnB, postOnB, creds } = await setUp('cut');
    // A connection on B with the token about to be replaced: its `credentials-revoked` will be lost too.
    const oldTokenClient = await mqtt.connectAsync(`mqtt://127.0.0.1:${b!.mqttPort}`, { username: 'cut-old-token', reconnectPeriod: 0, connectTimeout: 10_000 });
    clients.push(oldTokenClient);
    let oldTokenClosed = false;
    oldTokenClient.on('close', () => (oldTokenClosed = true));
    await proxy!.refuse();
    let back = false;
    try {
      await busDown(b!);
      const reconnectsBefore = reconnectsOfB;

      // Node A's bus works: its notices go out, and node B, cut off, never hears them.
      const renamed = await api('POST', '/api/device', { ...watched.json, name: 'cut-after' });
      assert.equal(renamed.status, 200, renamed.text);
      const replaced = await api('POST', '/api/device/credentials', { ...creds.json, credentialsId: 'cut-new-token' });
      assert.equal(replaced.status, 200, replaced.text);
      assert.equal(nameOnB(), 'cut-before');

      back = true;
      await proxy!.accept();
      await until('node B to reconnect', () => reconnectsOfB > reconnectsBefore, 600);
      assert.equal(await postOnB('cut-old-token'), 401, 'the replaced token stops working on B once its bus is back');
      assert.equal(await postOnB('cut-new-token'), 200);
      await until('node B to take the new name', () => nameOnB() === 'cut-after', 600);
      await until('the connection with the replaced token to end', () => oldTokenClosed, 600);
      // The session is still the same connection, now under the new identity.
      assert.equal(b!.core.sessionRegistry.sessionsOf(watched.json.id.id).length, 1);
    } finally {
      if (!back) await proxy!.accept();
    }
  });
});
