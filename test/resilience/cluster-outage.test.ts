/**
 * Issue 18 in a cluster: two nodes on one PostgreSQL and one Redis, MQTT QoS 1 load on the first. PostgreSQL stopped
 * and started twice, then Redis restarted: neither node exits (before, every node died at the same moment), both go
 * DOWN and come back UP, and afterwards a shared attribute written through the second node reaches the device
 * connected to the first.
 */
import { strict as assert } from 'node:assert';
import { after, before, describe, it } from 'node:test';
import mqtt from 'mqtt';
import { startPostgres, skipUnlessPostgres, type TestPostgres } from '../support/postgres.ts';
import { startRedis, skipUnlessRedis, type TestRedis } from '../support/redis.ts';
import { loginAdmin, startServerProcess, type ServerProcess } from '../support/process-server.ts';
import { createTokenDevice } from '../support/telemetry-load.ts';
import { exitCode, notStoredOnce, startMqttLoad, until, untilDown, untilUp, type MqttLoad } from './support.ts';

const PASSWORD = 'cluster-outage-password';
const TOKEN = 'cluster-outage-token';

describe('a two-node cluster rides out PostgreSQL and Redis restarts', { skip: skipUnlessPostgres() || skipUnlessRedis() }, () => {
  let postgres: TestPostgres;
  let redis: TestRedis;
  let nodes: ServerProcess[] = [];
  let adminToken: string;
  let deviceId: string;
  let load: MqttLoad;

  before(async () => {
    postgres = await startPostgres();
    redis = await startRedis();
    const env = { FLEETGATE_DATABASE: await postgres.createDatabase(), FLEETGATE_BUS: redis.url, FLEETGATE_ADMIN_PASSWORD: PASSWORD, FLEETGATE_PG_POOL_SIZE: '4' };
    nodes.push(await startServerProcess(env));
    nodes.push(await startServerProcess(env));
    adminToken = await loginAdmin(nodes[0].httpUrl, 'admin@fleetgate.local', PASSWORD);
    deviceId = await createTokenDevice(nodes[0].httpUrl, adminToken, TOKEN, 'cluster-outage-device');
    load = startMqttLoad(nodes[0].mqttPort, TOKEN, 2, 8);
    await load.ackAfter(0);
  });

  after(async () => {
    await load?.stop(1000);
    for (const node of nodes) node.child.kill('SIGKILL');
    await Promise.all(nodes.map((n) => n.exited));
    await redis?.stop();
    await postgres?.stop();
  });

  it('both nodes survive PostgreSQL stopped and started, going DOWN and UP', async () => {
    for (let round = 1; round <= 2; round++) {
      await postgres.pause();
      await Promise.all(nodes.map((n) => untilDown(n, 'database')));
      await postgres.resume();
      const returned = Date.now();
      await Promise.all(nodes.map((n) => untilUp(n)));
      await load.ackAfter(returned);
      for (const n of nodes) assert.equal(exitCode(n), undefined, `round ${round}: node still running`);
    }
  });

  it('after a Redis restart, an attribute written through one node reaches the device on the other', async () => {
    const device = await mqtt.connectAsync(`mqtt://127.0.0.1:${nodes[0].mqttPort}`, { username: TOKEN, protocolVersion: 5, reconnectPeriod: 0 });
    try {
      const updates: string[] = [];
      device.on('message', (_t, payload) => updates.push(payload.toString()));
      await device.subscribeAsync('v1/devices/me/attributes', { qos: 1 });
      const port = redis.port;
      await redis.stop();
      await Promise.all(nodes.map((n) => untilDown(n, 'bus')));
      redis = await startRedis({ port });
      await Promise.all(nodes.map((n) => untilUp(n)));
      await until('the update pushed across nodes', async () => {
        const res = await fetch(`${nodes[1].httpUrl}/api/plugins/telemetry/DEVICE/${deviceId}/SHARED_SCOPE`, {
          method: 'POST',
          headers: { 'content-type': 'application/json', 'x-authorization': `Bearer ${adminToken}` },
          body: JSON.stringify({ via: 'node-2' }),
        });
        assert.equal(res.status, 200);
        await new Promise((r) => setTimeout(r, 300));
        return updates.some((u) => u.includes('"via":"node-2"')) ? true : undefined;
      });
    } finally {
      await device.endAsync(true);
    }
  });

  it('stored every acknowledged message exactly once; no node exited', async () => {
    await load.stop();
    const max = Math.max(...load.acked.keys());
    assert.deepEqual(await notStoredOnce(nodes[1].httpUrl, adminToken, deviceId, load.acked.keys(), max), []);
    for (const n of nodes) assert.equal(exitCode(n), undefined);
  });
});
