/**
 * A device renamed or moved to another profile on node A while its MQTT session is open on node B (one PostgreSQL, one
 * Redis): node B's session takes the new identity (bus `device-updated`), so what the device sends afterwards is
 * exported under the new name and profile, and node B's cached login of the device is dropped (an HTTP request on B
 * carries the new name too). A gateway's sub-device renamed on A stays the same device on B under its new name.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import mqtt, { type MqttClient } from 'mqtt';
import { ADMIN_EMAIL, ADMIN_PASSWORD, startTestServer, type TestServer } from '../support/harness.ts';
import { skipUnlessPostgres, startPostgres, type TestPostgres } from '../support/postgres.ts';
import { loginAdmin, startServerProcess, type ServerProcess } from '../support/process-server.ts';
import { skipUnlessRedis, startRedis, type TestRedis } from '../support/redis.ts';
import { eventually, startReceiver, type ReceivedMessage, type Receiver } from '../export/receiver.ts';
import { adminApi, type ApiResponse } from './cluster-support.ts';

describe('device identity changes across a two-node cluster', { skip: skipUnlessPostgres() || skipUnlessRedis() }, () => {
  let pg: TestPostgres | undefined;
  let redis: TestRedis | undefined;
  let a: TestServer | undefined;
  let b: ServerProcess | undefined;
  let receiver: Receiver | undefined;
  let api: (method: 'GET' | 'POST' | 'DELETE', path: string, body?: unknown) => Promise<ApiResponse>;
  const clients: MqttClient[] = [];
  const killB = () => b?.child.kill('SIGKILL');

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
    receiver = await startReceiver();
    const rule = await api('POST', '/api/export/rule', { name: 'all', kinds: ['telemetry'], destination: { type: 'webhook', url: receiver.url } });
    assert.equal(rule.status, 200, rule.text);
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
    await receiver?.close();
    await Promise.allSettled([pg?.stop(), redis?.stop()]);
  });

  const connectToB = async (token: string) => {
    const client = await mqtt.connectAsync(`mqtt://127.0.0.1:${b!.mqttPort}`, { username: token, reconnectPeriod: 0, connectTimeout: 10_000 });
    clients.push(client);
    return client;
  };
  /** The exported telemetry message of the device holding point `ts` (every test uses its own ts range). */
  const exportedAt = (ts: number): ReceivedMessage | undefined => receiver!.accepted.find((m) => m.kind === 'telemetry' && m.data.telemetry?.some((p: { ts: number }) => p.ts === ts));

  /**
   * Node B hears of the change through Redis, a moment after node A answered: the device sends numbered messages (each
   * waited for in the export) until one is exported as `wanted` says. Without the change reaching B, none ever is.
   */
  const sendUntil = async (send: (ts: number) => Promise<void>, firstTs: number, wanted: (m: ReceivedMessage) => boolean): Promise<number> => {
    for (let ts = firstTs; ts < firstTs + 200; ts++) {
      await send(ts);
      await eventually(`point ${ts} exported`, () => exportedAt(ts) !== undefined);
      if (wanted(exportedAt(ts)!)) return ts;
    }
    throw new Error('node B never took the change');
  };

  test('a device renamed and then moved to another profile on node A: its session on node B follows', async () => {
    const created = await api('POST', '/api/device?accessToken=identity-cluster-token', { name: 'cluster-before' });
    assert.equal(created.status, 200, created.text);
    const client = await connectToB('identity-cluster-token');
    const send = (ts: number) => client.publishAsync('v1/devices/me/telemetry', JSON.stringify({ ts, values: { n: ts } }), { qos: 1 }).then(() => {});
    await send(1000);
    await eventually('the first message exported', () => exportedAt(1000) !== undefined);
    assert.equal(exportedAt(1000)!.data.deviceName, 'cluster-before');

    const renamed = await api('POST', '/api/device', { ...created.json, name: 'cluster-after' });
    assert.equal(renamed.status, 200, renamed.text);
    const first = await sendUntil(send, 1001, (m) => m.data.deviceName === 'cluster-after');
    // Once B took the new name it keeps it.
    await send(first + 1);
    await eventually('the next message exported', () => exportedAt(first + 1) !== undefined);
    assert.equal(exportedAt(first + 1)!.data.deviceName, 'cluster-after');
    // B's cached login of the token was dropped with the same message: an HTTP request on B is the renamed device.
    const http = await fetch(`${b!.httpUrl}/api/v1/identity-cluster-token/telemetry`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ ts: 1500, values: { n: 1500 } }) });
    assert.equal(http.status, 200, await http.text());
    await eventually('the HTTP message exported', () => exportedAt(1500) !== undefined);
    assert.equal(exportedAt(1500)!.data.deviceName, 'cluster-after');

    const profile = await api('POST', '/api/deviceProfile', { name: 'Cluster moved', type: 'DEFAULT', transportType: 'DEFAULT' });
    assert.equal(profile.status, 200, profile.text);
    const profileId = profile.json.id.id as string;
    assert.notEqual(profileId, created.json.deviceProfileId.id);
    const moved = await api('POST', '/api/device', { ...renamed.json, deviceProfileId: { entityType: 'DEVICE_PROFILE', id: profileId } });
    assert.equal(moved.status, 200, moved.text);
    const firstMoved = await sendUntil(send, 2000, (m) => m.data.profileId === profileId);
    assert.equal(exportedAt(firstMoved)!.data.deviceName, 'cluster-after');
  });

  test('a sub-device renamed on node A stays the same device for its gateway on node B, under the new name', async () => {
    const gateway = await api('POST', '/api/device?accessToken=identity-gateway-token', { name: 'identity-gateway', additionalInfo: { gateway: true } });
    assert.equal(gateway.status, 200, gateway.text);
    const gw = await connectToB('identity-gateway-token');
    const pushes: { device: string; data: Record<string, unknown> }[] = [];
    gw.on('message', (topic, payload) => {
      if (topic === 'v1/gateway/attributes') pushes.push(JSON.parse(payload.toString()));
    });
    await gw.subscribeAsync('v1/gateway/attributes', { qos: 1 });
    const send = (name: string) => (ts: number) => gw.publishAsync('v1/gateway/telemetry', JSON.stringify({ [name]: [{ ts, values: { n: ts } }] }), { qos: 1 }).then(() => {});
    await send('sub-before')(3000);
    await eventually('the sub-device message exported', () => exportedAt(3000) !== undefined);
    const sub = await api('GET', '/api/tenant/devices?deviceName=sub-before');
    assert.equal(sub.status, 200, sub.text);
    const subId = sub.json.id.id as string;
    assert.equal(exportedAt(3000)!.deviceId, subId);

    const renamed = await api('POST', '/api/device', { ...sub.json, name: 'sub-after' });
    assert.equal(renamed.status, 200, renamed.text);
    // Shared attributes set on node A reach the gateway on node B under the sub-device's new name once B took the
    // rename (numbered pushes until one does; without the change reaching B every push names the old one).
    let named: string | undefined;
    for (let i = 1; i <= 200 && named !== 'sub-after'; i++) {
      const res = await api('POST', `/api/plugins/telemetry/DEVICE/${subId}/SHARED_SCOPE`, { step: i });
      assert.equal(res.status, 200, res.text);
      await eventually(`push ${i} reached the gateway`, () => pushes.some((p) => p.data.step === i));
      named = pushes.find((p) => p.data.step === i)!.device;
    }
    assert.equal(named, 'sub-after', 'pushes name the sub-device by its new name');
    // The gateway learns the new name (gateway spec §4.9) and uses it: the same device, exported under its new name.
    await send('sub-after')(3500);
    await eventually('the message under the new name exported', () => exportedAt(3500) !== undefined);
    assert.equal(exportedAt(3500)!.deviceId, subId, 'the renamed sub-device, not a new one');
    assert.equal(exportedAt(3500)!.data.deviceName, 'sub-after');
  });
});
