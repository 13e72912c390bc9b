/**
 * Issue 18: a node on PostgreSQL + Redis, run as a real process under MQTT QoS 1 load, rides out PostgreSQL being
 * stopped and started (pg_ctl) and its connections being ended (pg_terminate_backend), several times each: it never
 * exits, /healthz goes DOWN naming the database and comes back UP, devices get "not now" meanwhile, new messages are
 * acknowledged after the return, and every acknowledged message is stored exactly once.
 */
import { strict as assert } from 'node:assert';
import { after, before, describe, it } from 'node:test';
import { startPostgres, skipUnlessPostgres, type TestPostgres } from '../support/postgres.ts';
import { startRedis, skipUnlessRedis, type TestRedis } from '../support/redis.ts';
import { loginAdmin, startServerProcess, type ServerProcess } from '../support/process-server.ts';
import { createTokenDevice } from '../support/telemetry-load.ts';
import { coapRequest } from '../transports/coap/support.ts';
import { WireClient } from '../transports/mqtt/wire-client.ts';
import { exitCode, health, notStoredOnce, startMqttLoad, untilDown, untilUp, type MqttLoad } from './support.ts';

const PASSWORD = 'outage-test-password';
const TOKEN = 'pg-outage-device-token';
const ROUNDS = 3;

describe('PostgreSQL outages under MQTT QoS 1 load', { skip: skipUnlessPostgres() || skipUnlessRedis() }, () => {
  let postgres: TestPostgres;
  let redis: TestRedis;
  let server: ServerProcess;
  let database: string;
  let adminToken: string;
  let deviceId: string;
  let load: MqttLoad;

  before(async () => {
    postgres = await startPostgres();
    redis = await startRedis();
    const url = await postgres.createDatabase();
    database = url.slice(url.lastIndexOf('/') + 1);
    server = await startServerProcess({ FLEETGATE_DATABASE: url, FLEETGATE_BUS: redis.url, FLEETGATE_ADMIN_PASSWORD: PASSWORD, FLEETGATE_PG_POOL_SIZE: '4' });
    adminToken = await loginAdmin(server.httpUrl, 'admin@fleetgate.local', PASSWORD);
    deviceId = await createTokenDevice(server.httpUrl, adminToken, TOKEN, 'pg-outage-device');
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

  it('survives PostgreSQL stopped and started again, answering "not now" meanwhile', async () => {
    for (let round = 1; round <= ROUNDS; round++) {
      const before = load.acked.size;
      const v3 = round === 1 ? await WireClient.tcp(server.mqttPort, 4) : undefined;
      if (v3) assert.equal((await v3.connect({ username: TOKEN, clientId: 'v3-outage' })).returnCode, 0);
      await postgres.pause();
      await untilDown(server, 'database', { otherUp: true, reason: /PostgreSQL/ }); // the reason names PostgreSQL
      // HTTP telemetry: 503 with Retry-After; provisioning: a clear 503, not a hang.
      const telemetry = await fetch(`${server.httpUrl}/api/v1/${TOKEN}/telemetry`, { method: 'POST', body: '{"ts":999999999,"values":{"x":1}}', signal: AbortSignal.timeout(30_000) });
      assert.equal(telemetry.status, 503);
      assert.ok(Number(telemetry.headers.get('retry-after')) > 0, 'Retry-After on the 503');
      const provision = await fetch(`${server.httpUrl}/api/v1/provision`, {
        method: 'POST',
        body: JSON.stringify({ deviceName: `d-${round}`, provisionDeviceKey: 'k', provisionDeviceSecret: 's' }),
        signal: AbortSignal.timeout(30_000),
      });
      assert.equal(provision.status, 503);
      if (round === 1) {
        // CoAP: 5.03 with Max-Age.
        const coap = await coapRequest(server.coapPort, `/api/v1/${TOKEN}/telemetry`, { payload: '{"ts":999999998,"values":{"x":1}}' });
        assert.equal(coap.code, '5.03');
        assert.ok(Number(coap.res.headers['Max-Age']) > 0, 'Max-Age on the 5.03');
        // MQTT 3.1.1 has no negative PUBACK: the PUBLISH gets none, and the connection closes so the client resends.
        await assert.rejects(v3!.publish('v1/devices/me/telemetry', '{"ts":999999997,"values":{"x":1}}'), /closed/);
        v3!.destroy();
        // MQTT 5 provisioning: PUBACK 0x83 at once, not a hang.
        const provisioner = await WireClient.tcp(server.mqttPort, 5);
        assert.equal((await provisioner.connect({ username: 'provision', clientId: 'provisioner' })).reasonCode ?? 0, 0);
        const puback = await provisioner.publish('/provision/request', JSON.stringify({ deviceName: 'mqtt-d', provisionDeviceKey: 'k', provisionDeviceSecret: 's' }));
        assert.equal(puback!.reasonCode, 0x83);
        provisioner.destroy();
        // A new connection that needs the database: CONNACK 3, server unavailable (the client retries).
        const fresh = await WireClient.tcp(server.mqttPort, 4);
        assert.equal((await fresh.connect({ username: 'not-cached-token', clientId: 'fresh' })).returnCode, 3);
        fresh.destroy();
      }
      await new Promise((r) => setTimeout(r, 1500)); // a down time the load notices, as in a real restart
      assert.equal((await health(server.httpUrl)).status, 503, 'still DOWN while PostgreSQL is stopped');
      await postgres.resume();
      const returned = Date.now();
      await untilUp(server);
      await load.ackAfter(returned);
      assert.ok(load.acked.size > before, `round ${round}: new messages acknowledged`);
      assert.equal(exitCode(server), undefined, `round ${round}: the process is still running`);
    }
    assert.ok(load.refusals.reasonCodes.has(0x83), 'MQTT 5 devices got PUBACK 0x83');
    for (const code of load.refusals.reasonCodes) assert.equal(code, 0x83, 'MQTT 5 PUBACK reason: implementation specific error');
  });

  it("survives its connections being ended with pg_terminate_backend", async () => {
    for (let round = 1; round <= ROUNDS; round++) {
      const ended = await postgres.terminateConnections(database);
      assert.ok(ended > 0, `round ${round}: connections were ended`);
      const since = Date.now();
      await load.ackAfter(since);
      await untilUp(server);
      assert.equal(exitCode(server), undefined, `round ${round}: the process is still running`);
    }
  });

  it('stored every acknowledged message exactly once, and logged no crash', async () => {
    await load.stop();
    const max = Math.max(...load.acked.keys());
    assert.ok(load.acked.size > 50, `enough load: ${load.acked.size} acknowledged`);
    assert.deepEqual(await notStoredOnce(server.httpUrl, adminToken, deviceId, load.acked.keys(), max), []);
    await untilUp(server);
    assert.equal(exitCode(server), undefined);
    assert.doesNotMatch(server.stdout() + server.stderr(), /"event":"unhandled"|Unhandled 'error' event/);
    const outages = server.stdout().split('\n').filter((l) => l.includes('"event":"outage"'));
    assert.ok(outages.length >= ROUNDS, 'each stop logged as an outage');
    assert.ok(outages.length <= 4 * ROUNDS, `an outage is logged once, not per request: ${outages.length} lines`);
    assert.match(server.stdout(), /"event":"recovered"/);
  });
});
