/**
 * The gateway API with Debian's mosquitto clients on one node (SQLite): mosquitto_pub sends 500 sub-devices'
 * telemetry from a file and an RPC reply, mosquitto_sub receives shared-attribute pushes and RPCs, and a refused
 * message shows its MQTT 5 reason (mosquitto_pub prints the Reason String).
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { adminClient, type AdminClient } from '../../../admin/admin-client.ts';
import { skipSuiteForMissingTool } from '../../../support/tools.ts';
import { startTestServer, TENANT, type TestServer } from '../e2e-support.ts';
import { createGateway, eventually } from './gateway-support.ts';

const missing = spawnSync('mosquitto_sub', ['--help'], { stdio: 'ignore' }).error ? 'mosquitto_sub is not installed' : undefined;

/** Runs a mosquitto client to its end (asynchronously: the server runs in this process); stdout and stderr together. */
function run(command: 'mosquitto_pub' | 'mosquitto_sub', args: string[], timeoutMs = 30_000): Promise<{ code: number | null; out: string }> {
  return new Promise((resolve) => {
    const child = spawn(command, args);
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (out += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, out });
    });
  });
}

describe('MQTT gateway API with mosquitto_pub and mosquitto_sub', { skip: skipSuiteForMissingTool(missing) }, () => {
  let server: TestServer;
  let api: AdminClient;
  let token: string;
  const connection = () => ['-h', '127.0.0.1', '-p', String(server.mqttPort), '-u', token];
  before(async () => {
    server = await startTestServer({ logLevel: 'warn' });
    api = await adminClient(server);
    token = (await createGateway(server, 'Mosquitto Gateway')).token;
  });

  after(() => server.close());

  test('mosquitto_pub -f: one message with 500 sub-devices is stored (MQTT 3.1.1, QoS 1)', async () => {
    const body: Record<string, unknown[]> = {};
    for (let i = 0; i < 500; i++) body[`mos-${i}`] = [{ ts: 5000 + i, values: { level: i } }];
    const file = join(server.dataDir, 'telemetry.json');
    writeFileSync(file, JSON.stringify(body));
    const pub = await run('mosquitto_pub', [...connection(), '-q', '1', '-t', 'v1/gateway/telemetry', '-f', file]);
    assert.equal(pub.code, 0, pub.out);
    assert.equal(pub.out, '');
    for (const i of [0, 499]) {
      const device = await server.core.devices.findByName(TENANT, `mos-${i}`);
      assert.deepEqual((await server.core.timeseries.latest(device.id, ['level'])).level, [{ ts: 5000 + i, value: { type: 'LONG', value: i } }]);
    }
  });

  test('mosquitto_sub receives a queued one-way RPC and then a shared-attribute push for the same sub-device', async () => {
    const device = await server.core.devices.findByName(TENANT, 'mos-1');
    const queued = await api.post(`/api/rpc/oneway/${device.id}`, { method: 'blink', params: {}, persistent: true, timeout: 60000 });
    assert.equal(queued.status, 200, queued.text);
    // mosquitto_sub publishes nothing, but its keepalive ping (-k 5) shows the gateway runs: that opens, on this
    // connection, the session of the sub-device with the pending RPC, so the shared update below comes here too.
    const sub = run('mosquitto_sub', [...connection(), '-k', '5', '-q', '1', '-t', 'v1/gateway/rpc', '-t', 'v1/gateway/attributes', '-C', '2', '-W', '30']);
    await eventually('mosquitto_sub holds the sub-device', () => server.core.sessionRegistry.sessionsOf(device.id).length > 0);
    await api.post(`/api/plugins/telemetry/DEVICE/${device.id}/attributes/SHARED_SCOPE`, { mode: 'eco' });
    const result = await sub;
    assert.equal(result.code, 0, result.out);
    const messages = result.out.trim().split('\n').map((line) => JSON.parse(line));
    const rpc = messages.find((m) => m.data.method !== undefined);
    const push = messages.find((m) => m.data.method === undefined);
    assert.equal(rpc.device, 'mos-1');
    assert.equal(rpc.data.method, 'blink');
    assert.deepEqual(push, { device: 'mos-1', data: { mode: 'eco' } });
  });

  test('a two-way RPC: mosquitto_sub gets the request, mosquitto_pub sends the reply, the admin API returns it', async () => {
    const device = await server.core.devices.findByName(TENANT, 'mos-2');
    // A persistent RPC waits for the gateway, which gets it once it shows it runs (here: its keepalive ping).
    const queued = await api.post(`/api/rpc/twoway/${device.id}`, { method: 'setValve', params: { open: true }, persistent: true, timeout: 60000 });
    assert.equal(queued.status, 200, queued.text);
    const sub = await run('mosquitto_sub', [...connection(), '-k', '5', '-q', '1', '-t', 'v1/gateway/rpc', '-C', '1', '-W', '30']);
    assert.equal(sub.code, 0, sub.out);
    const request = JSON.parse(sub.out);
    assert.equal(request.device, 'mos-2');
    assert.deepEqual({ method: request.data.method, params: request.data.params }, { method: 'setValve', params: { open: true } });
    const reply = await run('mosquitto_pub', [...connection(), '-q', '1', '-t', 'v1/gateway/rpc', '-m', JSON.stringify({ device: 'mos-2', id: request.data.id, data: { open: true } })]);
    assert.equal(reply.code, 0, reply.out);
    const rpc = (await api.get(`/api/rpc/persistent/${queued.json.rpcId}`)).json;
    assert.equal(rpc.status, 'SUCCESSFUL');
    assert.deepEqual(rpc.response, { open: true });
  });

  test('mosquitto_pub on MQTT 5 shows why a message was refused', async () => {
    const malformed = await run('mosquitto_pub', [...connection(), '-V', 'mqttv5', '-q', '1', '-t', 'v1/gateway/telemetry', '-m', '{bad']);
    assert.match(malformed.out, /Publish 1 failed: Payload format invalid\.\s+Invalid JSON/);
    const shape = await run('mosquitto_pub', [...connection(), '-V', 'mqttv5', '-q', '1', '-t', 'v1/gateway/telemetry', '-m', '{"mos-x":{"a":1}}']);
    assert.match(shape.out, /Implementation specific error\.\s+v1\/gateway\/telemetry: "mos-x" must map to an array of samples/);
    assert.equal(await server.store.findDeviceByName(TENANT, 'mos-x'), undefined);
  });
});
