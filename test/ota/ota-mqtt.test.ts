/**
 * ThingsBoard's SDK flow over MQTT with MQTT.js (spec thingsboard-ota §4.1, §5): read the shared fw_* / sw_*
 * attributes, download every chunk, verify the checksum, report the states; and each refusal ThingsBoard gives.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import mqtt, { type MqttClient } from 'mqtt';
import { eventually } from '../support/ota.ts';
import { latest, otaDevice, otaFixture, sha256, type OtaFixture } from './ota-setup.ts';

interface Inbox {
  messages: { topic: string; payload: Buffer }[];
  next(match: (topic: string) => boolean): Promise<{ topic: string; payload: Buffer }>;
}

function inbox(client: MqttClient): Inbox {
  const messages: { topic: string; payload: Buffer }[] = [];
  client.on('message', (topic, payload) => messages.push({ topic, payload }));
  return {
    messages,
    async next(match) {
      return eventually('an MQTT message', async () => {
        const i = messages.findIndex((m) => match(m.topic));
        return i < 0 ? undefined : messages.splice(i, 1)[0];
      });
    },
  };
}

async function connect(f: OtaFixture, token: string, protocolVersion: 4 | 5 = 4): Promise<MqttClient> {
  return mqtt.connectAsync(`mqtt://127.0.0.1:${f.server.mqttPort}`, { username: token, protocolVersion, reconnectPeriod: 0, connectTimeout: 10_000 });
}

/** The SDK's download: chunks 0, 1, ... until fw_size bytes or an empty chunk. */
async function download(client: MqttClient, box: Inbox, prefix: 'fw' | 'sw', requestId: number, size: number, total: number): Promise<Buffer> {
  const parts: Buffer[] = [];
  let received = 0;
  for (let chunk = 0; received < total; chunk++) {
    await client.publishAsync(`v2/${prefix}/request/${requestId}/chunk/${chunk}`, String(size), { qos: 1 });
    const m = await box.next((t) => t === `v2/${prefix}/response/${requestId}/chunk/${chunk}`);
    if (m.payload.length === 0) break;
    parts.push(m.payload);
    received += m.payload.length;
  }
  return Buffer.concat(parts);
}

describe('OTA over MQTT (MQTT.js, the ThingsBoard SDK flow)', () => {
  let f: OtaFixture;
  before(async () => {
    f = await otaFixture('mqtt');
  });
  after(() => f.server.close());

  for (const prefix of ['fw', 'sw'] as const) {
    it(`${prefix}: reads the shared attributes, downloads every 64 KiB chunk, verifies SHA256 and reports each state`, async () => {
      const device = await otaDevice(f, `mqtt-${prefix}`);
      const client = await connect(f, device.token);
      const box = inbox(client);
      try {
        await client.subscribeAsync([`v2/${prefix}/response/+/chunk/+`, `v2/${prefix}/error`, 'v1/devices/me/attributes/response/+'], { qos: 1 });
        const keys = ['checksum', 'checksum_algorithm', 'size', 'title', 'version'].map((k) => `${prefix}_${k}`).join(',');
        await client.publishAsync('v1/devices/me/attributes/request/1', JSON.stringify({ sharedKeys: keys }), { qos: 1 });
        const shared = JSON.parse((await box.next((t) => t === 'v1/devices/me/attributes/response/1')).payload.toString()).shared;
        const pkg = prefix === 'fw' ? f.firmware : f.software;
        assert.equal(shared[`${prefix}_title`], pkg.title);
        assert.equal(shared[`${prefix}_version`], pkg.version);
        assert.equal(shared[`${prefix}_size`], pkg.data.length);
        assert.equal(shared[`${prefix}_checksum_algorithm`], 'SHA256');

        await client.publishAsync('v1/devices/me/telemetry', JSON.stringify({ [`${prefix}_state`]: 'DOWNLOADING' }), { qos: 1 });
        const bytes = await download(client, box, prefix, 7, 65536, shared[`${prefix}_size`]);
        await client.publishAsync('v1/devices/me/telemetry', JSON.stringify({ [`${prefix}_state`]: 'DOWNLOADED' }), { qos: 1 });
        assert.equal(sha256(bytes), shared[`${prefix}_checksum`]);
        assert.ok(bytes.equals(pkg.data));
        for (const state of ['VERIFIED', 'UPDATING']) await client.publishAsync('v1/devices/me/telemetry', JSON.stringify({ [`${prefix}_state`]: state }), { qos: 1 });
        await client.publishAsync(
          'v1/devices/me/telemetry',
          JSON.stringify({ [`current_${prefix}_title`]: pkg.title, [`current_${prefix}_version`]: pkg.version, [`${prefix}_state`]: 'UPDATED' }),
          { qos: 1 },
        );
        const values = await latest(f, device.id, `${prefix}_state,current_${prefix}_title,current_${prefix}_version`);
        assert.deepEqual(values, { [`${prefix}_state`]: 'UPDATED', [`current_${prefix}_title`]: pkg.title, [`current_${prefix}_version`]: pkg.version });
        const summary = await f.api('GET', `/api/otaPackage/${pkg.id}/rollout`);
        assert.equal(summary.status, 200);
        assert.ok(summary.json.states.UPDATED >= 1, summary.text);
      } finally {
        await client.endAsync();
      }
    });
  }

  it('an empty payload gets the whole package in one message; a chunk past the end is an empty message', async () => {
    const device = await otaDevice(f, 'mqtt-whole');
    const client = await connect(f, device.token);
    const box = inbox(client);
    try {
      await client.publishAsync('v2/sw/request/1/chunk/0', '', { qos: 1 });
      const whole = await box.next((t) => t === 'v2/sw/response/1/chunk/0');
      assert.ok(whole.payload.equals(f.software.data));
      await client.publishAsync('v2/fw/request/2/chunk/1000', '1024', { qos: 1 });
      const past = await box.next((t) => t === 'v2/fw/response/2/chunk/1000');
      assert.equal(past.payload.length, 0);
      // TB: the size is remembered per request id; an empty payload reuses it.
      await client.publishAsync('v2/fw/request/2/chunk/3', '', { qos: 1 });
      const again = await box.next((t) => t === 'v2/fw/response/2/chunk/3');
      assert.ok(again.payload.equals(f.firmware.data.subarray(3072, 4096)));
    } finally {
      await client.endAsync();
    }
  });

  for (const [what, topic, payload, expected] of [
    ['a chunk size above the MQTT payload limit', 'v2/fw/request/3/chunk/0', '70000', 'PAYLOAD_TOO_LARGE'],
    ['a chunk size that is not a number', 'v2/fw/request/4/chunk/0', 'lots', 'INVALID_CHUNK_SIZE'],
  ] as const) {
    it(`${what} is answered on v2/fw/error (${expected}) and the connection is closed`, async () => {
      const device = await otaDevice(f, `mqtt-err-${expected}`);
      const client = await connect(f, device.token, 5);
      const box = inbox(client);
      const closed = new Promise<void>((r) => client.once('close', () => r()));
      client.publish(topic, payload, { qos: 1 });
      const error = await box.next((t) => t === 'v2/fw/error');
      assert.equal(error.payload.toString(), expected);
      await closed;
      client.end(true);
    });
  }

  it('a device with nothing assigned gets NOT_FOUND on v2/fw/error, even for software, and is disconnected', async () => {
    const other = await f.api('POST', '/api/deviceProfile', { name: 'nothing assigned', type: 'DEFAULT', transportType: 'DEFAULT' });
    await f.api('POST', '/api/device?accessToken=bare-token', { name: 'bare', deviceProfileId: other.json.id });
    const client = await connect(f, 'bare-token');
    const box = inbox(client);
    const closed = new Promise<void>((r) => client.once('close', () => r()));
    client.publish('v2/sw/request/1/chunk/0', '1024', { qos: 1 });
    assert.equal((await box.next((t) => t === 'v2/fw/error')).payload.toString(), 'NOT_FOUND');
    await closed;
    client.end(true);
  });

  it('subscribing to the four OTA filters is granted; the SDK\'s v2/fw/response/+ is refused yet chunks still arrive', async () => {
    const device = await otaDevice(f, 'mqtt-subs');
    const client = await connect(f, device.token);
    const box = inbox(client);
    try {
      const granted = await client.subscribeAsync(['v2/fw/response/+/chunk/+', 'v2/fw/error', 'v2/sw/response/+/chunk/+', 'v2/sw/error'], { qos: 1 });
      assert.deepEqual(granted.map((g) => g.qos), [1, 1, 1, 1]);
      // SUBACK 0x80: MQTT.js rejects the subscription.
      await assert.rejects(client.subscribeAsync('v2/fw/response/+', { qos: 1 }), /Unspecified error/);
      // fleetgate also grants one exact chunk topic (mosquitto_rr subscribes to its answer topic first).
      assert.deepEqual((await client.subscribeAsync('v2/fw/response/9/chunk/0', { qos: 0 })).map((g) => g.qos), [0]);
      await client.publishAsync('v2/fw/request/9/chunk/0', '100', { qos: 1 });
      assert.ok((await box.next((t) => t === 'v2/fw/response/9/chunk/0')).payload.equals(f.firmware.data.subarray(0, 100)));
    } finally {
      await client.endAsync();
    }
  });
});
