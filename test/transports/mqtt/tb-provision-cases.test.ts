/**
 * ThingsBoard's MQTT provisioning tests (spec §9 A, B, C, K49-54), each as a named test against a whole
 * server, with MQTT.js as the device (ThingsBoard's tests use Paho 3.1.1 and an MQTT 5 client).
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { decodeProvisionResponseProto, encodeProvisionRequestProto } from '../../../src/core/provisioning/protobuf.ts';
import type { ProvisionRequest } from '../../../src/core/api.ts';
import { sha3Hex, sha3Join } from '../../../src/core/credentials.ts';
import type { ProvisionType } from '../../../src/core/model.ts';
import { createDevice, mqttjs, nextMessage, provisioningProfile, TENANT, withServer, type TestServer } from './e2e-support.ts';

const KEY = 'testProvisionKey';
const SECRET = 'testProvisionSecret';
const NAME = 'Test Provision device';

/** spec §9 fixture: the profile, plus `Test Provision device` (pre-provisioned) or `...device3` (create). */
async function fixture(server: TestServer, type: ProvisionType, key: string | null = KEY, secret: string | null = SECRET) {
  const profile = await provisioningProfile(server, type, type === 'DISABLED' ? null : key, type === 'DISABLED' ? null : secret);
  const existing = await createDevice(server, type === 'CHECK_PRE_PROVISIONED_DEVICES' ? NAME : `${NAME}3`, profile);
  return { profile, existing };
}

/** Provisions over MQTT as ThingsBoard's tests do: username `provision`, subscribe (QoS 0), publish QoS 1. */
async function provisionOverMqtt(server: TestServer, payload: string | Buffer, version: 4 | 5 = 4, subscribe = true): Promise<Buffer> {
  const client = await mqttjs(server, { protocolVersion: version, username: 'provision', clientId: `p-${Math.random()}` });
  try {
    if (subscribe) await client.subscribeAsync('/provision/response', { qos: 0 });
    const response = nextMessage(client, '/provision/response');
    await client.publishAsync('/provision/request', payload, { qos: 1 });
    return (await response).payload;
  } finally {
    await client.endAsync();
  }
}

const json = (extra: Record<string, unknown> = {}) => JSON.stringify({ deviceName: NAME, provisionDeviceKey: KEY, provisionDeviceSecret: SECRET, ...extra });
const proto = (extra: Partial<ProvisionRequest> = {}) => encodeProvisionRequestProto({ deviceName: NAME, provisionDeviceKey: KEY, provisionDeviceSecret: SECRET, ...extra });

async function storedCredentials(server: TestServer, name: string) {
  const device = await server.core.devices.findByName(TENANT, name);
  return { device, creds: await server.core.devices.getCredentials(TENANT, device.id) };
}

const CASES: Array<{ name: string; type: ProvisionType; extra?: Record<string, unknown>; key?: string; check: (server: TestServer, status: string, type: string, body: unknown) => Promise<void> }> = [
  {
    name: 'testProvisioningDisabledDevice', type: 'DISABLED',
    check: async (_s, status) => assert.equal(status, 'NOT_FOUND'),
  },
  {
    name: 'testProvisioningCheckPreProvisionedDevice', type: 'CHECK_PRE_PROVISIONED_DEVICES',
    check: async (s, status, type) => {
      assert.equal(status, 'SUCCESS');
      assert.equal(type, (await storedCredentials(s, NAME)).creds.credentialsType);
    },
  },
  {
    name: 'testProvisioningCreateNewDeviceWithoutCredentials', type: 'ALLOW_CREATE_NEW_DEVICES',
    check: async (s, status, type) => {
      assert.equal(status, 'SUCCESS');
      assert.equal(type, (await storedCredentials(s, NAME)).creds.credentialsType);
    },
  },
  {
    name: 'testProvisioningCreateNewGatewayDevice', type: 'ALLOW_CREATE_NEW_DEVICES', extra: { gateway: true },
    check: async (s, status) => {
      assert.equal(status, 'SUCCESS');
      assert.equal((await storedCredentials(s, NAME)).device.additionalInfo?.gateway, true);
    },
  },
  {
    name: 'testProvisioningCreateNewDeviceWithAccessToken', type: 'ALLOW_CREATE_NEW_DEVICES', extra: { credentialsType: 'ACCESS_TOKEN', token: 'test_token' },
    check: async (s, status, type) => {
      assert.equal(status, 'SUCCESS');
      assert.equal(type, 'ACCESS_TOKEN');
      const { creds } = await storedCredentials(s, NAME);
      assert.equal(creds.credentialsType, 'ACCESS_TOKEN');
      assert.equal(creds.credentialsId, 'test_token');
    },
  },
  {
    name: 'testProvisioningCreateNewDeviceWithCert', type: 'ALLOW_CREATE_NEW_DEVICES', extra: { credentialsType: 'X509_CERTIFICATE', hash: 'testHash' },
    check: async (s, status) => {
      assert.equal(status, 'SUCCESS');
      const { creds } = await storedCredentials(s, NAME);
      assert.equal(creds.credentialsType, 'X509_CERTIFICATE');
      assert.equal(creds.credentialsValue, 'testHash');
      assert.equal(creds.credentialsId, sha3Hex('testHash'));
    },
  },
  {
    name: 'testProvisioningCreateNewDeviceWithMqttBasic', type: 'ALLOW_CREATE_NEW_DEVICES',
    extra: { credentialsType: 'MQTT_BASIC', clientId: 'test_clientId', username: 'test_username', password: 'test_password' },
    check: async (s, status) => {
      assert.equal(status, 'SUCCESS');
      const { creds } = await storedCredentials(s, NAME);
      assert.equal(creds.credentialsType, 'MQTT_BASIC');
      assert.equal(creds.credentialsId, sha3Join('test_clientId', 'test_username'));
      assert.equal(creds.credentialsValue, '{"clientId":"test_clientId","userName":"test_username","password":"test_password"}');
    },
  },
  {
    name: 'testProvisioningWithBadKeyDevice', type: 'CHECK_PRE_PROVISIONED_DEVICES', key: 'testProvisionKeyOrig',
    check: async (_s, status) => assert.equal(status, 'NOT_FOUND'),
  },
];

describe('spec §9 A: MqttProvisionJsonDeviceTest (MQTT 3.1.1, JSON)', () => {
  for (const c of CASES) {
    it(c.name, () =>
      withServer(async (server) => {
        await fixture(server, c.type, c.key ?? KEY);
        const body = JSON.parse((await provisionOverMqtt(server, c.type === 'DISABLED' ? '{"provisionDeviceKey":"","provisionDeviceSecret":""}' : json(c.extra))).toString());
        if (body.status !== 'SUCCESS') assert.equal(body.errorMsg, 'Provision data was not found!');
        await c.check(server, body.status, body.credentialsType, body);
      }));
  }
});

describe('spec §9 B: MqttProvisionProtoDeviceTest (MQTT 3.1.1, protobuf)', () => {
  for (const c of CASES) {
    it(c.name, () =>
      withServer(async (server) => {
        await fixture(server, c.type, c.key ?? KEY);
        const extra = c.extra ? { ...c.extra } : {};
        const request = c.type === 'DISABLED' ? encodeProvisionRequestProto({ provisionDeviceKey: '', provisionDeviceSecret: '' }) : proto(extra as Partial<ProvisionRequest>);
        const answer = decodeProvisionResponseProto(await provisionOverMqtt(server, request));
        await c.check(server, answer.status, answer.credentialsType, answer);
      }));
  }
});

describe('spec §9 C: MqttV5ProvisionDeviceTest', () => {
  it('testProvisioningCreateNewDeviceWithoutCredentials', () =>
    withServer(async (server) => {
      await fixture(server, 'ALLOW_CREATE_NEW_DEVICES');
      const body = JSON.parse((await provisionOverMqtt(server, json(), 5)).toString());
      assert.equal(body.status, 'SUCCESS');
      assert.equal(body.credentialsType, (await storedCredentials(server, NAME)).creds.credentialsType);
    }));
});

describe('spec §9 K: MqttClientTest (black box, key test_provision_key)', () => {
  const K = { provisionDeviceKey: 'test_provision_key', provisionDeviceSecret: 'test_provision_secret' };

  it('K49 provisionRequestForDeviceWithPreProvisionedStrategy: publishes without subscribing, gets the existing token', () =>
    withServer(async (server) => {
      const profile = await provisioningProfile(server, 'CHECK_PRE_PROVISIONED_DEVICES', K.provisionDeviceKey, K.provisionDeviceSecret);
      const { token } = await createDevice(server, 'mqtt_device', profile);
      const body = JSON.parse((await provisionOverMqtt(server, JSON.stringify({ deviceName: 'mqtt_device', ...K }), 4, false)).toString());
      assert.equal(body.status, 'SUCCESS');
      assert.equal(body.credentialsType, 'ACCESS_TOKEN');
      assert.equal(body.credentialsValue, token);
    }));

  it('K50 provisionRequestForDeviceWithAllowToCreateNewDevicesStrategy: the value is the new device token', () =>
    withServer(async (server) => {
      await provisioningProfile(server, 'ALLOW_CREATE_NEW_DEVICES', K.provisionDeviceKey, K.provisionDeviceSecret);
      const body = JSON.parse((await provisionOverMqtt(server, JSON.stringify({ deviceName: 'new_mqtt_device', ...K }), 4, false)).toString());
      assert.equal(body.status, 'SUCCESS');
      assert.equal(body.credentialsValue, (await storedCredentials(server, 'new_mqtt_device')).creds.credentialsId);
    }));

  it('K51 provisionRequestForCheckSubAckReceived: /provision/response granted QoS 1, attributes topic invalid', () =>
    withServer(async (server) => {
      const client = await mqttjs(server, { protocolVersion: 5, username: 'provision' });
      const suback = new Promise<number[]>((resolve) =>
        client.on('packetreceive', (packet) => packet.cmd === 'suback' && resolve(packet.granted as number[])),
      );
      client.subscribe({ '/provision/response': { qos: 1 }, 'v1/devices/me/attributes': { qos: 1 } }, () => {});
      assert.deepEqual(await suback, [0x01, 0x8f]); // GRANTED_QOS_1, TOPIC_FILTER_INVALID
      await client.endAsync();
    }));

  it('K52 provisionRequestForDeviceWithDisabledProvisioningStrategy: NOT_FOUND', () =>
    withServer(async (server) => {
      await provisioningProfile(server, 'DISABLED', null, null);
      const body = JSON.parse((await provisionOverMqtt(server, JSON.stringify(K), 4, false)).toString());
      assert.equal(body.status, 'NOT_FOUND');
    }));

  it('K53 clientPublishForRegularTopicByProvisionClient: DISCONNECT TOPIC_NAME_INVALID', () =>
    withServer(async (server) => {
      const client = await mqttjs(server, { protocolVersion: 5, username: 'provision' });
      const disconnect = new Promise<number | undefined>((resolve) => client.once('disconnect', (packet) => resolve(packet.reasonCode)));
      client.publish('v1/devices/me/telemetry', '{"a":1}', { qos: 1 }, () => {});
      assert.equal(await disconnect, 0x90);
      await client.endAsync(true);
    }));

  it('K54 clientConnectWithBadCredentials: CONNACK bad user name or password (0x86)', () =>
    withServer(async (server) => {
      await assert.rejects(mqttjs(server, { protocolVersion: 5, username: 'unknownAccessToken' }), (err: Error & { code?: number }) => {
        assert.equal(err.code, 0x86);
        return true;
      });
    }));
});
