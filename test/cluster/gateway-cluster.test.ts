/**
 * The gateway API across two fleetgate nodes on one PostgreSQL and one Redis (issue 14 item 6). Node A runs in this
 * process, node B as a child process. A gateway on node B carries 500 sub-devices (telemetry and attributes over
 * MQTT.js, one more message from mosquitto_pub); the administrator, on node A, reads their data, pushes shared
 * attributes and calls RPCs, which reach the gateway on B through Redis; then the gateway moves to node A and
 * receives the RPC that was queued for a sub-device while it was away.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { after, before, describe, test } from 'node:test';
import mqtt, { type MqttClient } from 'mqtt';
import type { RedisBus } from '../../src/bus/redis-bus.ts';
import { ADMIN_EMAIL, ADMIN_PASSWORD, startTestServer, type TestServer } from '../support/harness.ts';
import { skipUnlessPostgres, startPostgres, type TestPostgres } from '../support/postgres.ts';
import { loginAdmin, startServerProcess, type ServerProcess } from '../support/process-server.ts';
import { skipUnlessRedis, startRedis, type TestRedis } from '../support/redis.ts';
import { skipSuiteForMissingTool } from '../support/tools.ts';
import { collect, publishAck } from '../transports/mqtt/gateway/gateway-support.ts';
import { adminApi, until, type ApiResponse } from './cluster-support.ts';

const SUB_DEVICES = 500;
const mosquittoMissing = spawnSync('mosquitto_pub', ['--help'], { stdio: 'ignore' }).error ? 'mosquitto_pub is not installed' : undefined;

describe('a gateway with 500 sub-devices on a two-node cluster', { skip: skipUnlessPostgres() || skipUnlessRedis() || skipSuiteForMissingTool(mosquittoMissing) }, () => {
  let pg: TestPostgres | undefined;
  let redis: TestRedis | undefined;
  let a: TestServer | undefined;
  let b: ServerProcess | undefined;
  let api: (method: 'GET' | 'POST' | 'DELETE', path: string, body?: unknown) => Promise<ApiResponse>;
  let gatewayToken: string;
  let gatewayId: string;
  let gw: MqttClient;
  const clients: MqttClient[] = [];
  const killB = () => b?.child.kill('SIGKILL');

  const connectTo = async (port: number) => {
    const client = await mqtt.connectAsync(`mqtt://127.0.0.1:${port}`, { username: gatewayToken, protocolVersion: 5, reconnectPeriod: 0, connectTimeout: 10_000 });
    clients.push(client);
    return client;
  };
  const deviceId = async (name: string) => {
    const res = await api('GET', `/api/tenant/devices?deviceName=${encodeURIComponent(name)}`);
    assert.equal(res.status, 200, res.text);
    return res.json.id.id as string;
  };

  before(async () => {
    [pg, redis] = await Promise.all([startPostgres(), startRedis()]);
    const database = await pg.createDatabase();
    a = await startTestServer({ database, bus: redis.url, logLevel: 'warn' });
    b = await startServerProcess({
      FLEETGATE_DATABASE: database,
      FLEETGATE_BUS: redis.url,
      FLEETGATE_ADMIN_USERNAME: ADMIN_EMAIL,
      FLEETGATE_ADMIN_PASSWORD: ADMIN_PASSWORD,
      FLEETGATE_LOG_LEVEL: 'warn',
    });
    process.once('exit', killB);
    api = adminApi(a.httpUrl, await loginAdmin(a.httpUrl, ADMIN_EMAIL, ADMIN_PASSWORD));
    const created = await api('POST', '/api/device?accessToken=cluster-gateway-token', { name: 'Cluster Gateway', additionalInfo: { gateway: true } });
    assert.equal(created.status, 200, created.text);
    gatewayToken = 'cluster-gateway-token';
    gatewayId = created.json.id.id;
    gw = await connectTo(b.mqttPort);
    await gw.subscribeAsync(['v1/gateway/rpc', 'v1/gateway/attributes', 'v1/gateway/attributes/response'], { qos: 1 });
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
    await a?.close();
    await Promise.allSettled([pg?.stop(), redis?.stop()]);
  });

  test('500 sub-devices send telemetry and attributes through node B; node A reads them', async () => {
    const telemetry: Record<string, unknown[]> = {};
    const attributes: Record<string, object> = {};
    for (let i = 0; i < SUB_DEVICES; i++) {
      telemetry[`meter-${i}`] = [{ ts: 1_000 + i, values: { energy: i, on: i % 2 === 0 } }, { ts: 2_000 + i, values: { energy: i + 1 } }];
      attributes[`meter-${i}`] = { model: `M-${i}` };
    }
    assert.equal((await publishAck(gw, 'v1/gateway/telemetry', telemetry)).reasonCode, 0);
    assert.equal((await publishAck(gw, 'v1/gateway/attributes', attributes)).reasonCode, 0);
    // mosquitto_pub speaks for one of them too (MQTT 3.1.1, QoS 1: it exits 0 once the PUBACK came).
    const pub = spawnSync('mosquitto_pub', ['-h', '127.0.0.1', '-p', String(b!.mqttPort), '-u', gatewayToken, '-q', '1', '-t', 'v1/gateway/telemetry', '-m', JSON.stringify({ 'meter-7': [{ ts: 3_000, values: { energy: 70 } }] })], { timeout: 30_000 });
    assert.equal(pub.status, 0, pub.stderr?.toString());

    const page = await api('GET', '/api/tenant/devices?pageSize=1000&page=0&textSearch=meter-');
    assert.equal(page.json.data.length, SUB_DEVICES);
    assert.ok(page.json.data.every((d: any) => d.additionalInfo.lastConnectedGateway === gatewayId), 'every sub-device names its gateway');
    for (const i of [0, 7, 499]) {
      const id = await deviceId(`meter-${i}`);
      const series = await api('GET', `/api/plugins/telemetry/DEVICE/${id}/values/timeseries?keys=energy&startTs=0&endTs=5000&useStrictDataTypes=true`);
      const expected = [{ ts: 2_000 + i, value: i + 1 }, { ts: 1_000 + i, value: i }];
      assert.deepEqual(series.json.energy, i === 7 ? [{ ts: 3_000, value: 70 }, ...expected] : expected);
      const attrs = await api('GET', `/api/plugins/telemetry/DEVICE/${id}/values/attributes/CLIENT_SCOPE?keys=model`);
      assert.equal(attrs.json[0].value, `M-${i}`);
    }
  });

  test('shared attributes written on node A reach the gateway on node B, and its attribute request is answered', async () => {
    const pushes = collect(gw, 'v1/gateway/attributes');
    const id = await deviceId('meter-42');
    assert.equal((await api('POST', `/api/plugins/telemetry/DEVICE/${id}/attributes/SHARED_SCOPE`, { setpoint: 21.5 })).status, 200);
    assert.deepEqual((await pushes.waitFor(1))[0], { device: 'meter-42', data: { setpoint: 21.5 } });
    const answers = collect(gw, 'v1/gateway/attributes/response');
    assert.equal((await publishAck(gw, 'v1/gateway/attributes/request', { id: 9, device: 'meter-42', client: false, key: 'setpoint' })).reasonCode, 0);
    assert.deepEqual((await answers.waitFor(1))[0], { id: 9, device: 'meter-42', value: 21.5 });
  });

  test('a two-way RPC from node A to a sub-device is answered by the gateway on node B', async () => {
    const rpcs = collect(gw, 'v1/gateway/rpc');
    const id = await deviceId('meter-100');
    const call = api('POST', `/api/plugins/rpc/twoway/${id}`, { method: 'readRegister', params: { address: 40001 }, timeout: 30_000 });
    const [request] = await rpcs.waitFor(1);
    assert.equal(request.device, 'meter-100');
    assert.deepEqual(request.data.params, { address: 40001 });
    assert.equal((await publishAck(gw, 'v1/gateway/rpc', { device: 'meter-100', id: request.data.id, data: { value: 1234 } })).reasonCode, 0);
    const answered = await call;
    assert.equal(answered.status, 200, answered.text);
    assert.deepEqual(answered.json, { value: 1234 });
  });

  test('the gateway reconnects to node A and still gets the RPC queued for a sub-device while it was away', async () => {
    const id = await deviceId('meter-250');
    await gw.endAsync();
    // Node B has let go of the sub-device (its Redis holder entry is gone) before the RPC is queued.
    await until('node B released the sub-device', async () => (await (a!.bus as RedisBus).holders(id)).length === 0, 400);
    const queued = await api('POST', `/api/rpc/twoway/${id}`, { method: 'calibrate', params: { k: 2 }, persistent: true, timeout: 120_000 });
    assert.equal(queued.status, 200, queued.text);
    gw = await connectTo(a!.mqttPort);
    const rpcs = collect(gw, 'v1/gateway/rpc');
    await gw.subscribeAsync('v1/gateway/rpc', { qos: 1 });
    assert.equal((await publishAck(gw, 'v1/gateway/telemetry', { 'meter-1': [{ alive: 1 }] })).reasonCode, 0); // the gateway runs
    const [delivered] = await rpcs.waitFor(1);
    assert.equal(delivered.device, 'meter-250');
    assert.equal(delivered.data.method, 'calibrate');
    assert.equal((await publishAck(gw, 'v1/gateway/rpc', { device: 'meter-250', id: delivered.data.id, data: { calibrated: true } })).reasonCode, 0);
    await until('the persistent RPC is SUCCESSFUL', async () => (await api('GET', `/api/rpc/persistent/${queued.json.rpcId}`)).json?.status === 'SUCCESSFUL');
  });
});
