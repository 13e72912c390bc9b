/**
 * OTA on two nodes sharing one PostgreSQL and one Redis: a package uploaded on node A (this process) is served by
 * node B (a child process) over MQTT and HTTP, the profile assignment made on A reaches a device
 * connected to B, and the rollout of both nodes together keeps the pacing.
 */
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import mqtt from 'mqtt';
import { ADMIN_EMAIL, ADMIN_PASSWORD, startTestServer, type TestServer } from '../support/harness.ts';
import { skipUnlessPostgres, startPostgres, type TestPostgres } from '../support/postgres.ts';
import { loginAdmin, startServerProcess, type ServerProcess } from '../support/process-server.ts';
import { skipUnlessRedis, startRedis, type TestRedis } from '../support/redis.ts';
import { assignToProfile, createDevice, createPackage, createProfile, eventually, otaApi, uploadPackage, type Api } from '../support/ota.ts';

const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');

describe('OTA on two nodes (PostgreSQL + Redis)', { skip: skipUnlessPostgres() || skipUnlessRedis() }, () => {
  let pg: TestPostgres | undefined;
  let redis: TestRedis | undefined;
  let a: TestServer | undefined;
  let b: ServerProcess | undefined;
  let api: Api;
  let token: string;
  const killB = () => b?.child.kill('SIGKILL');

  before(async () => {
    [pg, redis] = await Promise.all([startPostgres(), startRedis()]);
    const database = await pg.createDatabase();
    const rollout = { otaRolloutGroupSize: 2, otaRolloutIntervalMs: 1000 };
    a = await startTestServer({ database, bus: redis.url, logLevel: 'warn', ...rollout });
    b = await startServerProcess({
      FLEETGATE_DATABASE: database,
      FLEETGATE_BUS: redis.url,
      FLEETGATE_ADMIN_USERNAME: ADMIN_EMAIL,
      FLEETGATE_ADMIN_PASSWORD: ADMIN_PASSWORD,
      FLEETGATE_LOG_LEVEL: 'warn',
      FLEETGATE_OTA_ROLLOUT_GROUP_SIZE: '2',
      FLEETGATE_OTA_ROLLOUT_INTERVAL_MS: '1000',
    });
    process.once('exit', killB);
    token = await loginAdmin(a.httpUrl, ADMIN_EMAIL, ADMIN_PASSWORD);
    api = otaApi(a.httpUrl, token);
  });

  after(async () => {
    if (b && b.child.exitCode === null) {
      b.child.kill('SIGTERM');
      await b.exited;
    }
    process.removeListener('exit', killB);
    await a?.close();
    await Promise.allSettled([pg?.stop(), redis?.stop()]);
  });

  it('uploaded on A, assigned on A: a device on B gets fw_* pushed and downloads the package from B (MQTT and HTTP)', async () => {
    const profile = await createProfile(api, 'cluster-ota');
    await createDevice(api, 'cluster-ota-device', profile, 'cluster-ota-token');
    const data = randomBytes(300_000);
    const pkg = await createPackage(api, profile, 'cluster-fw', '1.0');
    assert.equal((await uploadPackage(a!.httpUrl, token, pkg, data, { algorithm: 'SHA256', checksum: sha256(data) })).status, 200);

    const client = await mqtt.connectAsync(`mqtt://127.0.0.1:${b!.mqttPort}`, { username: 'cluster-ota-token', reconnectPeriod: 0 });
    const messages: { topic: string; payload: Buffer }[] = [];
    client.on('message', (topic, payload) => messages.push({ topic, payload }));
    try {
      await client.subscribeAsync('v1/devices/me/attributes', { qos: 1 });
      assert.equal((await assignToProfile(api, profile, 'FIRMWARE', pkg)).status, 200);
      const pushed = await eventually('fw_* pushed by node B', async () => messages.find((m) => m.topic === 'v1/devices/me/attributes'));
      const attrs = JSON.parse(pushed.payload.toString());
      assert.equal(attrs.fw_checksum, sha256(data));
      const parts: Buffer[] = [];
      for (let chunk = 0; chunk * 65536 < data.length; chunk++) {
        await client.publishAsync(`v2/fw/request/1/chunk/${chunk}`, '65536', { qos: 1 });
        const m = await eventually(`chunk ${chunk} from B`, async () => messages.find((x) => x.topic === `v2/fw/response/1/chunk/${chunk}`));
        parts.push(m.payload);
      }
      assert.equal(sha256(Buffer.concat(parts)), attrs.fw_checksum);
    } finally {
      await client.endAsync();
    }
    const http = await fetch(`${b!.httpUrl}/api/v1/cluster-ota-token/firmware?title=cluster-fw&version=1.0`);
    assert.equal(http.status, 200);
    assert.equal(sha256(Buffer.from(await http.arrayBuffer())), sha256(data));
    const adminDownload = await fetch(`${b!.httpUrl}/api/otaPackage/${pkg}/download`, { headers: { 'x-authorization': `Bearer ${token}` } });
    assert.equal(sha256(Buffer.from(await adminDownload.arrayBuffer())), sha256(data));
  });

  it('both nodes run the rollout, yet groups of 2 every 1 s hold cluster-wide and every device is notified once', async () => {
    const profile = await createProfile(api, 'cluster-paced');
    const ids: string[] = [];
    for (let i = 0; i < 8; i++) ids.push((await createDevice(api, `cluster-paced-${i}`, profile, `cluster-paced-${i}`)).id.id);
    const pkg = await createPackage(api, profile, 'cluster-paced-fw', '1');
    await uploadPackage(a!.httpUrl, token, pkg, Buffer.from('z'));
    await assignToProfile(api, profile, 'FIRMWARE', pkg);
    const times = await eventually(
      'all 8 devices INITIATED',
      async () => {
        const out: number[] = [];
        for (const id of ids) {
          const res = await api('GET', `/api/plugins/telemetry/DEVICE/${id}/values/timeseries?keys=fw_state&startTs=0&endTs=${Date.now() + 1000}&limit=10`);
          const initiated = (res.json.fw_state ?? []).filter((p: { value: string }) => p.value === 'INITIATED');
          if (initiated.length === 0) return undefined;
          assert.equal(initiated.length, 1, 'notified once');
          out.push(initiated[0].ts);
        }
        return out;
      },
      60_000,
    );
    const sorted = times.sort((x, y) => x - y);
    // Group g is claimed at least g x 1000 ms after the first; the first device's own processing may take up to 600 ms.
    for (let k = 2; k < sorted.length; k++) assert.ok(sorted[k] - sorted[0] >= Math.floor(k / 2) * 1000 - 600, `device ${k}: ${sorted[k] - sorted[0]} ms`);
  });
});
