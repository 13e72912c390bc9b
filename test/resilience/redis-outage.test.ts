/**
 * Issue 18, the bus: a node on PostgreSQL + Redis, run as a real process under MQTT QoS 1 load, rides out Redis
 * restarts (stopped, then started again on the same port), several times: it never exits, /healthz goes DOWN naming
 * the bus and comes back UP, telemetry keeps being acknowledged, a shared attribute changed while Redis was down
 * reaches the connected device once it is back (the node re-sends changes of the gap), and later ones as usual.
 */
import { strict as assert } from 'node:assert';
import { after, before, describe, it } from 'node:test';
import mqtt from 'mqtt';
import { startPostgres, skipUnlessPostgres, type TestPostgres } from '../support/postgres.ts';
import { startRedis, skipUnlessRedis, type TestRedis } from '../support/redis.ts';
import { loginAdmin, startServerProcess, type ServerProcess } from '../support/process-server.ts';
import { createTokenDevice } from '../support/telemetry-load.ts';
import { exitCode, notStoredOnce, startMqttLoad, until, untilDown, untilUp, type MqttLoad } from './support.ts';

const PASSWORD = 'redis-outage-test-password';
const TOKEN = 'redis-outage-device-token';
const ROUNDS = 3;

describe('Redis restarts under MQTT QoS 1 load', { skip: skipUnlessPostgres() || skipUnlessRedis() }, () => {
  let postgres: TestPostgres;
  let redis: TestRedis;
  let server: ServerProcess;
  let adminToken: string;
  let deviceId: string;
  let load: MqttLoad;

  before(async () => {
    postgres = await startPostgres();
    redis = await startRedis();
    server = await startServerProcess({ FLEETGATE_DATABASE: await postgres.createDatabase(), FLEETGATE_BUS: redis.url, FLEETGATE_ADMIN_PASSWORD: PASSWORD });
    adminToken = await loginAdmin(server.httpUrl, 'admin@fleetgate.local', PASSWORD);
    deviceId = await createTokenDevice(server.httpUrl, adminToken, TOKEN, 'redis-outage-device');
    load = startMqttLoad(server.mqttPort, TOKEN);
    await load.ackAfter(0);
  });

  after(async () => {
    await load?.stop(1000);
    server?.child.kill('SIGKILL');
    await server?.exited;
    await redis?.stop();
    await postgres?.stop();
  });

  it('goes DOWN naming the bus and comes back UP by itself, acknowledging telemetry after each return', async () => {
    for (let round = 1; round <= ROUNDS; round++) {
      const port = redis.port;
      await redis.stop();
      await untilDown(server, 'bus', { otherUp: true, reason: /Redis/ });
      await new Promise((r) => setTimeout(r, 1000)); // a down time the node notices
      redis = await startRedis({ port });
      const returned = Date.now();
      await untilUp(server);
      await load.ackAfter(returned);
      assert.equal(exitCode(server), undefined, `round ${round}: the process is still running`);
    }
  });

  it('pushes a shared attribute changed during a restart once Redis is back, and later ones as usual', async () => {
    const device = await mqtt.connectAsync(`mqtt://127.0.0.1:${server.mqttPort}`, { username: TOKEN, protocolVersion: 4, reconnectPeriod: 0 });
    const setShared = async (values: object) => {
      const res = await fetch(`${server.httpUrl}/api/plugins/telemetry/DEVICE/${deviceId}/SHARED_SCOPE`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'x-authorization': `Bearer ${adminToken}` },
        body: JSON.stringify(values),
      });
      assert.equal(res.status, 200, 'saved, even while the bus is down');
    };
    try {
      const updates: string[] = [];
      device.on('message', (_topic, payload) => updates.push(payload.toString()));
      await device.subscribeAsync('v1/devices/me/attributes', { qos: 1 });
      const port = redis.port;
      await redis.stop();
      await untilDown(server, 'bus');
      await setShared({ during: 'outage' });
      assert.ok(!updates.some((u) => u.includes('"during":"outage"')), 'not pushed while the bus is down');
      redis = await startRedis({ port });
      await untilUp(server);
      await until('the change made during the outage pushed', () => (updates.some((u) => u.includes('"during":"outage"')) ? true : undefined));
      await until('a later change pushed', async () => {
        await setShared({ after: 'restart' });
        await new Promise((r) => setTimeout(r, 300));
        return updates.some((u) => u.includes('"after":"restart"')) ? true : undefined;
      });
    } finally {
      await device.endAsync(true);
    }
  });

  it('stored every acknowledged message exactly once', async () => {
    await load.stop();
    const max = Math.max(...load.acked.keys());
    assert.deepEqual(await notStoredOnce(server.httpUrl, adminToken, deviceId, load.acked.keys(), max), []);
    await untilUp(server);
    assert.equal(exitCode(server), undefined);
    assert.doesNotMatch(server.stdout() + server.stderr(), /"event":"unhandled"|Unhandled error event/);
  });
});
