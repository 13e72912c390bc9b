/**
 * Real clients over TCP against a whole server: MQTT.js (3.1.1 and 5) and Debian's mosquitto_pub /
 * mosquitto_sub, exercising the device API of spec §8.2 end to end.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { describe, it } from 'node:test';
import { createDevice, haveTool, provisioningProfile, mqttjs, nextMessage, withServer, type TestServer } from './e2e-support.ts';

async function latest(server: TestServer, deviceId: string, key: string): Promise<unknown> {
  return (await server.core.timeseries.latest(deviceId, [key]))[key]?.[0]?.value.value;
}

/** Runs a command to completion (bounded) and returns its exit code and output. */
function run(command: string, args: string[], timeoutMs = 10_000): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

for (const version of [4, 5] as const) {
  describe(`MQTT.js ${version === 4 ? '3.1.1' : '5'} device session`, () => {
    it('telemetry at QoS 1 is readable as soon as the PUBACK arrives (acknowledged after commit)', () =>
      withServer(async (server) => {
        const { device, token } = await createDevice(server, 'd1');
        const client = await mqttjs(server, { protocolVersion: version, username: token });
        await client.publishAsync('v1/devices/me/telemetry', '{"temperature":21.5}', { qos: 1 });
        assert.equal(await latest(server, device.id, 'temperature'), 21.5);
        await client.publishAsync('v1/devices/me/telemetry', '[{"ts":1700000000000,"values":{"humidity":40}}]', { qos: 1 });
        assert.equal(await latest(server, device.id, 'humidity'), 40);
        await client.endAsync();
      }));

    it('client attributes, attribute request/response, and shared attribute pushes incl. deletions', () =>
      withServer(async (server) => {
        const { device, token } = await createDevice(server, 'd2');
        const client = await mqttjs(server, { protocolVersion: version, username: token });
        await client.publishAsync('v1/devices/me/attributes', '{"fw":"v1.2"}', { qos: 1 });
        await server.core.attributes.save(device, 'SHARED_SCOPE', { interval: 5 });
        await client.subscribeAsync(['v1/devices/me/attributes/response/+', 'v1/devices/me/attributes'], { qos: 1 });
        const response = nextMessage(client, 'v1/devices/me/attributes/response/1');
        await client.publishAsync('v1/devices/me/attributes/request/1', '{"clientKeys":"fw","sharedKeys":"interval"}', { qos: 1 });
        assert.deepEqual(JSON.parse((await response).payload.toString()), { client: { fw: 'v1.2' }, shared: { interval: 5 } });
        const update = nextMessage(client, 'v1/devices/me/attributes');
        await server.core.attributes.save(device, 'SHARED_SCOPE', { interval: 10 });
        assert.deepEqual(JSON.parse((await update).payload.toString()), { interval: 10 });
        const deletion = nextMessage(client, 'v1/devices/me/attributes');
        await server.core.attributes.delete(device, 'SHARED_SCOPE', ['interval']);
        assert.deepEqual(JSON.parse((await deletion).payload.toString()), { deleted: ['interval'] });
        await client.endAsync();
      }));

    it('server-side RPC reaches every session of the device and the reply feeds the admin call', () =>
      withServer(async (server) => {
        const { device, token } = await createDevice(server, 'd3');
        const first = await mqttjs(server, { protocolVersion: version, username: token, clientId: 'first' });
        const second = await mqttjs(server, { protocolVersion: version, username: token, clientId: 'second' });
        await first.subscribeAsync('v1/devices/me/rpc/request/+', { qos: 1 });
        await second.subscribeAsync('v1/devices/me/rpc/request/+', { qos: 1 });
        const atSecond = nextMessage(second, /^v1\/devices\/me\/rpc\/request\/\d+$/);
        first.on('message', (topic, payload) => {
          const id = topic.split('/').pop();
          assert.deepEqual(JSON.parse(payload.toString()), { method: 'setGpio', params: { pin: 4 } });
          first.publish(`v1/devices/me/rpc/response/${id}`, '{"pin":4,"value":1}', { qos: 1 });
        });
        const result = await server.core.rpc.send(device, { method: 'setGpio', params: { pin: 4 }, oneway: false, timeout: 5000 });
        assert.deepEqual(result.response, { pin: 4, value: 1 });
        assert.equal(JSON.parse((await atSecond).payload.toString()).method, 'setGpio');
        await first.endAsync();
        await second.endAsync();
      }));

    it('client-side RPC getSessionLimits', () =>
      withServer(async (server) => {
        const { token } = await createDevice(server, 'd4');
        const client = await mqttjs(server, { protocolVersion: version, username: token });
        await client.subscribeAsync('v1/devices/me/rpc/response/+', { qos: 1 });
        const reply = nextMessage(client, 'v1/devices/me/rpc/response/9');
        await client.publishAsync('v1/devices/me/rpc/request/9', '{"method":"getSessionLimits","params":{}}', { qos: 1 });
        const limits = JSON.parse((await reply).payload.toString());
        assert.equal(limits.maxPayloadSize, 65536);
        assert.equal(limits.maxInflightMessages, 100);
        await client.endAsync();
      }));
  });
}

describe('Debian mosquitto clients', () => {
  it('mosquitto_rr (MQTT 5) provisions over /provision/request -> /provision/response', async (t) => {
    if (!haveTool(t, 'mosquitto_rr')) return;
    await withServer(async (server) => {
      await provisioningProfile(server, 'ALLOW_CREATE_NEW_DEVICES', 'rr-key', 'rr-secret');
      const request = JSON.stringify({ deviceName: 'rr-device', provisionDeviceKey: 'rr-key', provisionDeviceSecret: 'rr-secret' });
      const result = await run('mosquitto_rr', ['-h', '127.0.0.1', '-p', String(server.mqttPort), '-u', 'provision', '-q', '1', '-t', '/provision/request', '-e', '/provision/response', '-m', request, '-W', '10']);
      assert.equal(result.code, 0, result.stderr);
      const body = JSON.parse(result.stdout);
      assert.equal(body.status, 'SUCCESS');
      assert.equal(body.deviceName, 'rr-device');
    });
  });

  for (const version of ['mqttv311', 'mqttv5'] as const) {
    it(`mosquitto_pub (${version}) telemetry at QoS 1 is stored`, async (t) => {
      if (!haveTool(t, 'mosquitto_pub')) return;
      await withServer(async (server) => {
        const { device, token } = await createDevice(server, 'mq1');
        const result = await run('mosquitto_pub', ['-h', '127.0.0.1', '-p', String(server.mqttPort), '-V', version, '-q', '1', '-u', token, '-t', 'v1/devices/me/telemetry', '-m', '{"pressure":1013}']);
        assert.equal(result.code, 0, result.stderr);
        assert.equal(await latest(server, device.id, 'pressure'), 1013);
      });
    });

    it(`mosquitto_sub (${version}) receives a shared attribute update`, async (t) => {
      if (!haveTool(t, 'mosquitto_sub')) return;
      await withServer(async (server) => {
        const { device, token } = await createDevice(server, 'mq2');
        const sub = run('mosquitto_sub', ['-h', '127.0.0.1', '-p', String(server.mqttPort), '-V', version, '-q', '1', '-u', token, '-t', 'v1/devices/me/attributes', '-C', '1', '-W', '10']);
        // Wait until the subscriber's session holds the subscription, then push (bounded polling on state, not time).
        for (let i = 0; i < 100 && server.core.sessions.count() === 0; i++) await new Promise((r) => setTimeout(r, 50));
        let result: Awaited<typeof sub> | undefined;
        void sub.then((r) => (result = r));
        for (let i = 0; i < 100 && !result; i++) {
          await server.core.attributes.save(device, 'SHARED_SCOPE', { mode: 'eco' });
          await new Promise((r) => setTimeout(r, 100));
        }
        const done = await sub;
        assert.equal(done.code, 0, done.stderr);
        assert.equal(done.stdout.trim(), '{"mode":"eco"}');
      });
    });

  }
});
