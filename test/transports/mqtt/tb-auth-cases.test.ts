/**
 * ThingsBoard's BasicMqttCredentialsTest (spec §9 J43, J44): MQTT_BASIC and access-token authentication
 * rules of spec §8.1 through the whole server, with MQTT.js 3.1.1 as ThingsBoard's Paho client.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { createDevice, mqttjs, TENANT, TEST_ACTOR, withServer, type TestServer } from './e2e-support.ts';

async function basicDevice(server: TestServer, name: string, clientId: string | null, userName: string | null, password: string | null) {
  const { device } = await createDevice(server, name);
  await server.core.devices.saveCredentials(TENANT, { deviceId: device.id, credentialsType: 'MQTT_BASIC', credentialsValue: JSON.stringify({ clientId, userName, password }) }, TEST_ACTOR);
  return device;
}

/** Connects, sends telemetry `{"from":name}` at QoS 1, and returns which device stored it. */
async function telemetryLandsOn(server: TestServer, options: { clientId: string; username?: string; password?: string }, marker: string): Promise<string[]> {
  const client = await mqttjs(server, { protocolVersion: 4, ...options });
  await client.publishAsync('v1/devices/me/telemetry', JSON.stringify({ marker }), { qos: 1 });
  await client.endAsync();
  const owners: string[] = [];
  for (const device of (await server.core.devices.list(TENANT, { page: 0, pageSize: 100 })).data) {
    const latest = await server.core.timeseries.latest(device.id, ['marker']);
    if (latest.marker?.[0]?.value.value === marker) owners.push(device.name);
  }
  return owners;
}

describe('spec §9 J: BasicMqttCredentialsTest', () => {
  it('J43 testCorrectCredentials: token, clientId only, clientId+username, clientId+username+password, token as username with random clientId', () =>
    withServer(async (server) => {
      const { token } = await createDevice(server, 'token-device');
      await basicDevice(server, 'client-id-device', 'onlyClientId', null, null);
      await basicDevice(server, 'client-user-device', 'cid2', 'user2', null);
      await basicDevice(server, 'client-user-pass-device', 'cid3', 'user3', 'pass3');
      assert.deepEqual(await telemetryLandsOn(server, { clientId: 'any', username: token }, 'm1'), ['token-device']);
      assert.deepEqual(await telemetryLandsOn(server, { clientId: 'onlyClientId' }, 'm2'), ['client-id-device']);
      assert.deepEqual(await telemetryLandsOn(server, { clientId: 'cid2', username: 'user2' }, 'm3'), ['client-user-device']);
      assert.deepEqual(await telemetryLandsOn(server, { clientId: 'cid3', username: 'user3', password: 'pass3' }, 'm4'), ['client-user-pass-device']);
      assert.deepEqual(await telemetryLandsOn(server, { clientId: `random-${Date.now()}`, username: token, password: 'whatever' }, 'm5'), ['token-device']);
    }));

  it('J44 testCorrectClientIdAndUserNameButWrongPassword: CONNACK 5, no fallback to a token', () =>
    withServer(async (server) => {
      await basicDevice(server, 'basic-device', 'cid', 'user', 'right');
      await assert.rejects(mqttjs(server, { protocolVersion: 4, clientId: 'cid', username: 'user', password: 'wrong' }), (err: Error & { code?: number }) => {
        assert.equal(err.code, 5);
        return true;
      });
    }));
});
