/**
 * Two fleetgate nodes on one PostgreSQL and one Redis, all started by the test: node A in this process (the harness),
 * node B as a child process (`bin/fleetgate.js start`) so it can be SIGKILLed. Devices talk to the nodes over real
 * HTTP and MQTT (MQTT.js); the administrator talks to A's REST API.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import mqtt, { type MqttClient } from 'mqtt';
import { RedisBus } from '../../src/bus/redis-bus.ts';
import { ADMIN_EMAIL, ADMIN_PASSWORD, startTestServer, type TestServer } from '../support/harness.ts';
import { skipUnlessPostgres, startPostgres, type TestPostgres } from '../support/postgres.ts';
import { loginAdmin, startServerProcess, type ServerProcess } from '../support/process-server.ts';
import { skipUnlessRedis, startRedis, type TestRedis } from '../support/redis.ts';
import { nextMessage } from '../transports/mqtt/e2e-support.ts';
import { adminApi, provisionOverHttp, startTelemetryDevice, until, type ApiResponse, type TelemetryDevice } from './cluster-support.ts';

const KEY = 'cluster-provision-key';
const SECRET = 'cluster-provision-secret';
/**
 * A repeat request for a never-connected device gets its credentials again once the device is this old (DESIGN 3);
 * far in the future here, so "exactly one SUCCESS" does not depend on how fast 100 requests are served.
 */
const RETRY_AFTER_MS = 3_600_000;

describe('two fleetgate nodes on one PostgreSQL and one Redis', { skip: skipUnlessPostgres() || skipUnlessRedis() }, () => {
  let pg: TestPostgres | undefined;
  let redis: TestRedis | undefined;
  let a: TestServer | undefined;
  let b: ServerProcess | undefined;
  let aBus: RedisBus;
  let api: (method: 'GET' | 'POST' | 'DELETE', path: string, body?: unknown) => Promise<ApiResponse>;
  let token: string;
  const clients: MqttClient[] = [];
  const killB = () => b?.child.kill('SIGKILL');

  /** Ids of the nodes that hold a session of the device, as node A sees them in Redis. */
  const holders = (deviceId: string) => aBus.holders(deviceId);
  const provision = (node: { httpUrl: string }, deviceName: string) => provisionOverHttp(node.httpUrl, { deviceName, provisionDeviceKey: KEY, provisionDeviceSecret: SECRET });

  before(async () => {
    [pg, redis] = await Promise.all([startPostgres(), startRedis()]);
    const database = await pg.createDatabase();
    // One after the other: A migrates the empty database and creates the administrator, then B joins.
    a = await startTestServer({ database, bus: redis.url, logLevel: 'warn', provisionRetryAfterMs: RETRY_AFTER_MS });
    assert.ok(a.bus instanceof RedisBus, 'node A runs on the Redis bus');
    aBus = a.bus;
    b = await startServerProcess({
      FLEETGATE_DATABASE: database,
      FLEETGATE_BUS: redis.url,
      FLEETGATE_ADMIN_USERNAME: ADMIN_EMAIL,
      FLEETGATE_ADMIN_PASSWORD: ADMIN_PASSWORD,
      FLEETGATE_PROVISION_RETRY_AFTER_MS: String(RETRY_AFTER_MS),
      FLEETGATE_LOG_LEVEL: 'warn',
    });
    process.once('exit', killB); // a crashed run must not leave node B behind
    token = await loginAdmin(a.httpUrl, ADMIN_EMAIL, ADMIN_PASSWORD);
    api = adminApi(a.httpUrl, token);
    // The profile is created after both nodes run, so B learns of it from the shared database.
    const type = 'ALLOW_CREATE_NEW_DEVICES';
    const profile = await api('POST', '/api/deviceProfile', { name: 'Cluster', provisionType: type, provisionDeviceKey: KEY, profileData: { provisionConfiguration: { type, provisionDeviceSecret: SECRET } } });
    assert.equal(profile.status, 200, profile.text);
  });

  after(async () => {
    await Promise.allSettled(clients.map((c) => c.endAsync(true)));
    if (b && b.child.exitCode === null && b.child.signalCode === null) {
      b.child.kill('SIGTERM');
      const timer = setTimeout(killB, 15_000);
      await b.exited;
      clearTimeout(timer);
    }
    process.removeListener('exit', killB);
    if (a) {
      await a.close();
    }
    await Promise.allSettled([pg?.stop(), redis?.stop()]);
  });

  describe('a device provisioned on node A and connected to node B over MQTT', () => {
    let deviceId: string;
    let device: MqttClient;

    before(async () => {
      const reply = await provision(a!, 'roamer');
      assert.equal(reply.status, 'SUCCESS');
      deviceId = reply.deviceId!;
      device = await mqtt.connectAsync(`mqtt://127.0.0.1:${b!.mqttPort}`, { username: reply.credentialsValue, reconnectPeriod: 0, connectTimeout: 5000 });
      clients.push(device);
      await device.subscribeAsync(['v1/devices/me/rpc/request/+', 'v1/devices/me/attributes'], { qos: 1 });
      // B announces the session in Redis once its bus subscription is live.
      await until('node B holds the device', async () => (await holders(deviceId)).length === 1);
      assert.notDeepEqual(await holders(deviceId), [aBus.nodeId], 'the session is on node B, not A');
    });

    test('an admin RPC sent through node A reaches it on node B, and its reply is A\'s HTTP response', async () => {
      const requests: { topic: string; body: unknown }[] = [];
      device.on('message', (topic, payload) => {
        const id = /^v1\/devices\/me\/rpc\/request\/(\d+)$/.exec(topic)?.[1];
        if (id === undefined) return;
        const body = JSON.parse(payload.toString()) as { method: string; params: { unit: string } };
        requests.push({ topic, body });
        void device.publishAsync(`v1/devices/me/rpc/response/${id}`, JSON.stringify({ temp: 21.5, unit: body.params.unit }), { qos: 1 });
      });
      const res = await api('POST', `/api/plugins/rpc/twoway/${deviceId}`, { method: 'getTemperature', params: { unit: 'C' }, timeout: 10_000 });
      assert.equal(res.status, 200, res.text);
      assert.deepEqual(res.json, { temp: 21.5, unit: 'C' });
      assert.equal(requests.length, 1);
      assert.deepEqual(requests[0].body, { method: 'getTemperature', params: { unit: 'C' } });
    });

    test('a shared attribute written through node A\'s admin API is pushed to it on node B', async () => {
      const pushed = nextMessage(device, 'v1/devices/me/attributes', 10_000);
      const res = await api('POST', `/api/plugins/telemetry/DEVICE/${deviceId}/attributes/SHARED_SCOPE`, { targetFirmware: '2.0.1' });
      assert.equal(res.status, 200, res.text);
      assert.deepEqual(JSON.parse((await pushed).payload.toString()), { targetFirmware: '2.0.1' });
    });
  });

  test('100 concurrent HTTP provisions of one name spread over both nodes: exactly one SUCCESS and one device', async () => {
    const name = 'race-device';
    const replies = await Promise.all(Array.from({ length: 100 }, (_, i) => provision(i % 2 === 0 ? a! : b!, name)));
    assert.equal(replies.filter((r) => r.status === 'SUCCESS').length, 1);
    assert.deepEqual(
      replies.filter((r) => r.status !== 'SUCCESS').map((r) => `${r.status} ${r.reason}`),
      Array.from({ length: 99 }, () => 'FAILURE DEVICE_EXISTS'),
    );
    // Asked through node B with A's token: the nodes share the JWT secret and the data.
    const page = await adminApi(b!.httpUrl, token)('GET', `/api/tenant/devices?pageSize=100&page=0&textSearch=${name}`);
    assert.equal(page.status, 200, page.text);
    assert.equal(page.json.totalElements, 1);
    assert.equal(page.json.data[0].name, name);
  });

  test('killing node B loses no PUBACKed telemetry, and its devices reconnect to node A and keep sending', async () => {
    const base = Date.now() - 3_600_000; // ts = base + seq: explicit, distinct, and in no other test's range
    const devices: TelemetryDevice[] = [];
    for (let i = 0; i < 4; i++) {
      const reply = await provision(i % 2 ? a! : b!, `killed-${i}`);
      assert.equal(reply.status, 'SUCCESS');
      // The client tries B first and, after a lost connection, the next server in the list: node A.
      const servers = [
        { host: '127.0.0.1', port: b!.mqttPort },
        { host: '127.0.0.1', port: a!.mqttPort },
      ];
      const d = await startTelemetryDevice(`killed-${i}`, reply.deviceId!, base, { servers, username: reply.credentialsValue, clientId: `killed-${i}`, reconnectPeriod: 100 });
      clients.push(d.client);
      devices.push(d);
      assert.equal(d.client.options.port, b!.mqttPort, 'the device is connected to node B');
    }
    await until('every device has 50 messages acknowledged by node B', () => devices.every((d) => d.acked.length >= 50), 400);

    for (const d of devices) d.markKill();
    b!.child.kill('SIGKILL');
    assert.equal(await b!.exited, null, 'node B died of the signal');

    await until('every device reconnected to node A', () => devices.every((d) => d.client.connected && d.client.options.port === a!.mqttPort), 400);
    await until('every device has 50 more messages acknowledged by node A', () => devices.every((d) => d.ackedAfterKill >= 50), 400);
    for (const d of devices) assert.ok((await holders(d.deviceId)).includes(aBus.nodeId), `node A holds ${d.name}`);
    await Promise.all(devices.map((d) => d.stop()));

    for (const d of devices) {
      const max = Math.max(...d.acked);
      const res = await api('GET', `/api/plugins/telemetry/DEVICE/${d.deviceId}/values/timeseries?keys=seq&startTs=${base}&endTs=${base + max + 1}&limit=${max + 100}`);
      assert.equal(res.status, 200, res.text);
      const stored = new Map<number, number>((res.json.seq ?? []).map((p: { ts: number; value: unknown }) => [p.ts, Number(p.value)]));
      const lost = d.acked.filter((seq) => stored.get(base + seq) !== seq);
      assert.deepEqual(lost, [], `${d.name}: ${lost.length} of ${d.acked.length} acknowledged messages are not in PostgreSQL`);
    }
  });
});
