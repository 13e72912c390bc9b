/**
 * Assignment and paced rollout (spec thingsboard-ota §3): a profile change pushes new fw_* attributes to a
 * connected MQTT device, removal pushes the deleted keys, devices are notified in paced groups, and the queue
 * survives a restart.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import mqtt from 'mqtt';
import { createLogger } from '../../src/log.ts';
import { startServer } from '../../src/server.ts';
import { startTestServer, testConfig, type TestServer } from '../support/harness.ts';
import { assignToProfile, createDevice, createPackage, createProfile, eventually, otaApi, uploadPackage, type Api } from '../support/ota.ts';
import { loginAdmin } from '../support/process-server.ts';
import { ADMIN_EMAIL, ADMIN_PASSWORD } from '../support/harness.ts';

describe('OTA assignment pushes fw_* to connected devices', () => {
  let server: TestServer;
  let api: Api;
  let token: string;
  before(async () => {
    server = await startTestServer({ otaRolloutGroupSize: 50, otaRolloutIntervalMs: 100 });
    token = await server.adminToken();
    api = otaApi(server.httpUrl, token);
  });
  after(() => server.close());

  it('profile change -> new fw_* on v1/devices/me/attributes; URL package -> fw_url; unassign -> {"deleted":[...]}; the device\'s own package wins', async () => {
    const profile = await createProfile(api, 'push');
    const v1 = await createPackage(api, profile, 'push-fw', '1.0', 'FIRMWARE', { tag: 'push-fw 1.0' });
    const v2 = await createPackage(api, profile, 'push-fw', '2.0');
    const url = await createPackage(api, profile, 'push-fw', '3.0', 'FIRMWARE', { usesUrl: true, url: 'https://updates.example/fw-3.bin' });
    const own = await createPackage(api, profile, 'push-fw-own', '9.0');
    for (const id of [v1, v2, own]) assert.equal((await uploadPackage(server.httpUrl, token, id, Buffer.from(`bytes of ${id}`), { algorithm: 'CRC32' })).status, 200);
    await createDevice(api, 'push-device', profile, 'push-token');
    const client = await mqtt.connectAsync(`mqtt://127.0.0.1:${server.mqttPort}`, { username: 'push-token', reconnectPeriod: 0 });
    const updates: Record<string, unknown>[] = [];
    client.on('message', (topic, payload) => topic === 'v1/devices/me/attributes' && updates.push(JSON.parse(payload.toString())));
    try {
      await client.subscribeAsync('v1/devices/me/attributes', { qos: 1 });
      const next = (what: string, match: (u: Record<string, unknown>) => boolean) =>
        eventually(what, async () => {
          const i = updates.findIndex(match);
          return i < 0 ? undefined : updates.splice(0, i + 1)[i];
        });
      assert.equal((await assignToProfile(api, profile, 'FIRMWARE', v1)).status, 200);
      const first = await next('fw 1.0 pushed', (u) => u.fw_version === '1.0');
      assert.equal(first.fw_title, 'push-fw');
      assert.equal(first.fw_tag, 'push-fw 1.0');
      assert.equal(first.fw_checksum_algorithm, 'CRC32');
      assert.equal(typeof first.fw_checksum, 'string');
      assert.equal(first.fw_size, Buffer.from(`bytes of ${v1}`).length);
      await assignToProfile(api, profile, 'FIRMWARE', v2);
      const deletedTag = await next('fw_tag deleted for a package without a tag', (u) => Array.isArray(u.deleted));
      assert.ok((deletedTag.deleted as string[]).includes('fw_tag'));
      assert.equal((await next('fw 2.0 pushed', (u) => u.fw_version === '2.0')).fw_title, 'push-fw');
      await assignToProfile(api, profile, 'FIRMWARE', url);
      const third = await next('fw 3.0 pushed', (u) => u.fw_version === '3.0');
      assert.equal(third.fw_url, 'https://updates.example/fw-3.bin');
      assert.equal(third.fw_size, undefined);
      // The device's own package wins: a profile change no longer reaches it.
      const device = (await api('GET', '/api/tenant/devices?deviceName=push-device')).json;
      assert.equal((await api('POST', '/api/device', { ...device, firmwareId: { entityType: 'OTA_PACKAGE', id: own } })).status, 200);
      assert.equal((await next('own package pushed', (u) => u.fw_version === '9.0')).fw_title, 'push-fw-own');
      await assignToProfile(api, profile, 'FIRMWARE', v1);
      await assignToProfile(api, profile, 'FIRMWARE', null);
      const mine = await api('POST', '/api/device', { ...(await api('GET', `/api/device/${device.id.id}`)).json, firmwareId: null });
      assert.equal(mine.status, 200);
      const removed = await next('fw_* removed', (u) => Array.isArray(u.deleted) && (u.deleted as string[]).includes('fw_title'));
      assert.ok(['fw_version', 'fw_checksum', 'fw_size'].every((k) => (removed.deleted as string[]).includes(k)));
      assert.equal(updates.filter((u) => u.fw_version === '1.0').length, 0, 'a profile change never reached the device with its own package');
      const shared = await api('GET', `/api/plugins/telemetry/DEVICE/${device.id.id}/values/attributes/SHARED_SCOPE`);
      assert.deepEqual(shared.json.filter((a: { key: string }) => a.key.startsWith('fw_')), []);
    } finally {
      await client.endAsync();
    }
  });

  it('a device created by provisioning gets its profile\'s firmware queued and its fw_* attributes written', async () => {
    const type = 'ALLOW_CREATE_NEW_DEVICES';
    const created = await api('POST', '/api/deviceProfile', { name: 'ota-provisioned', provisionType: type, provisionDeviceKey: 'ota-key', profileData: { provisionConfiguration: { type, provisionDeviceSecret: 'ota-secret' } } });
    const profile = created.json.id.id;
    const pkg = await createPackage(api, profile, 'provisioned-fw', '1.0');
    await uploadPackage(server.httpUrl, token, pkg, Buffer.from('provisioned'));
    assert.equal((await assignToProfile(api, profile, 'FIRMWARE', pkg)).status, 200);
    const res = await fetch(`${server.httpUrl}/api/v1/provision`, { method: 'POST', body: JSON.stringify({ deviceName: 'born-later', provisionDeviceKey: 'ota-key', provisionDeviceSecret: 'ota-secret' }) });
    const reply = (await res.json()) as { status: string; credentialsValue: string };
    assert.equal(reply.status, 'SUCCESS');
    const attrs = await eventually('fw_* on the provisioned device', async () => {
      const r = await fetch(`${server.httpUrl}/api/v1/${reply.credentialsValue}/attributes?sharedKeys=fw_title,fw_version`);
      const body = (await r.json()) as { shared?: Record<string, string> };
      return body.shared?.fw_version ? body.shared : undefined;
    });
    assert.deepEqual(attrs, { fw_title: 'provisioned-fw', fw_version: '1.0' });
  });

  it('devices pre-provisioned by bulk import get the profile\'s firmware queued; devices already queued are not queued again', async () => {
    const type = 'CHECK_PRE_PROVISIONED_DEVICES';
    const created = await api('POST', '/api/deviceProfile', { name: 'ota-imported', provisionType: type, provisionDeviceKey: 'ota-import-key', profileData: { provisionConfiguration: { type, provisionDeviceSecret: 's' } } });
    const profile = created.json.id.id;
    const pkg = await createPackage(api, profile, 'imported-fw', '1.0');
    await uploadPackage(server.httpUrl, token, pkg, Buffer.from('imported'));
    await createDevice(api, 'imported-early', profile, 'imported-early-token');
    assert.equal((await assignToProfile(api, profile, 'FIRMWARE', pkg)).status, 200);
    const early = (await api('GET', '/api/tenant/devices?deviceName=imported-early')).json.id.id;
    await eventually('the early device queued once', async () => (await api('GET', `/api/plugins/telemetry/DEVICE/${early}/values/timeseries?keys=target_fw_ts`)).json.target_fw_ts);
    const res = await fetch(`${server.httpUrl}/api/devices/import?deviceProfileId=${profile}`, {
      method: 'POST',
      headers: { 'x-authorization': `Bearer ${token}`, 'content-type': 'text/csv' },
      body: 'name,accessToken\nimported-1,imported-1-token\nimported-2,imported-2-token\n',
    });
    assert.equal(res.status, 200, await res.text());
    for (const t of ['imported-1-token', 'imported-2-token']) {
      await eventually(`fw_* on ${t}`, async () => {
        const r = await fetch(`${server.httpUrl}/api/v1/${t}/attributes?sharedKeys=fw_version`);
        return ((await r.json()) as { shared?: { fw_version?: string } }).shared?.fw_version === '1.0';
      });
    }
    const queued = await api('GET', `/api/plugins/telemetry/DEVICE/${early}/values/timeseries?keys=fw_state&startTs=0&endTs=${Date.now() + 1000}&limit=10`);
    assert.equal(queued.json.fw_state.filter((p: { value: string }) => p.value === 'QUEUED').length, 1, 'the early device was not queued again');
  });

  it('devices are notified in paced groups (group size 3, interval 2 s): each group comes no sooner than the pacing allows', async () => {
    const paced = await startTestServer({ otaRolloutGroupSize: 3, otaRolloutIntervalMs: 2000 });
    try {
      const t = await paced.adminToken();
      const papi = otaApi(paced.httpUrl, t);
      const profile = await createProfile(papi, 'paced');
      const ids: string[] = [];
      for (let i = 0; i < 9; i++) ids.push((await createDevice(papi, `paced-${i}`, profile, `paced-${i}`)).id.id);
      const pkg = await createPackage(papi, profile, 'paced-fw', '1');
      await uploadPackage(paced.httpUrl, t, pkg, Buffer.from('x'));
      await assignToProfile(papi, profile, 'FIRMWARE', pkg);
      const states = await eventually(
        'all 9 devices INITIATED',
        async () => {
          const out: number[] = [];
          for (const id of ids) {
            const res = await papi('GET', `/api/plugins/telemetry/DEVICE/${id}/values/timeseries?keys=fw_state&startTs=0&endTs=${Date.now() + 1000}&limit=10`);
            const initiated = (res.json.fw_state ?? []).find((p: { value: string }) => p.value === 'INITIATED');
            if (!initiated) return undefined;
            out.push(initiated.ts);
          }
          return out;
        },
        60_000,
      );
      const sorted = [...states].sort((a, b) => a - b);
      for (let k = 3; k < sorted.length; k++) {
        // Group g is claimed at least g x 2000 ms after the first group; the first device's own processing (claim to
        // INITIATED) is allowed up to 1000 ms on a busy machine. Without pacing all nine would come within milliseconds.
        assert.ok(sorted[k] - sorted[0] >= Math.floor(k / 3) * 2000 - 1000, `device ${k} came ${sorted[k] - sorted[0]} ms after the first`);
      }
      const summary = await papi('GET', `/api/otaPackage/${pkg}/rollout`);
      assert.equal(summary.json.total, 9);
      assert.equal(summary.json.states.INITIATED, 9);
      assert.equal(summary.json.queued, 0);
    } finally {
      await paced.close();
    }
  });
});

describe('the rollout queue survives a restart', () => {
  const dir = mkdtempSync(join(tmpdir(), 'fleetgate-ota-restart-'));
  after(() => rmSync(dir, { recursive: true, force: true }));
  const quiet = () => createLogger('silent', new Writable({ write: (_c, _e, cb) => cb() }));

  it('devices queued but not yet notified when the server stops are notified after it starts again', async () => {
    // One device a minute: after the first, the rest wait in the database.
    const slow = await startServer(testConfig(dir, { otaRolloutGroupSize: 1, otaRolloutIntervalMs: 60_000 }), { logger: quiet() });
    const url = `http://127.0.0.1:${slow.ports.http}`;
    const api = otaApi(url, await loginAdmin(url, ADMIN_EMAIL, ADMIN_PASSWORD));
    const profile = await createProfile(api, 'restart');
    const ids: string[] = [];
    for (let i = 0; i < 3; i++) ids.push((await createDevice(api, `restart-${i}`, profile, `restart-${i}`)).id.id);
    const pkg = await createPackage(api, profile, 'restart-fw', '1');
    await uploadPackage(url, await loginAdmin(url, ADMIN_EMAIL, ADMIN_PASSWORD), pkg, Buffer.from('y'));
    await assignToProfile(api, profile, 'FIRMWARE', pkg);
    const notified = async (a: Api) => {
      let n = 0;
      for (const id of ids) if ((await a('GET', `/api/plugins/telemetry/DEVICE/${id}/values/attributes/SHARED_SCOPE?keys=fw_title`)).json.length > 0) n++;
      return n;
    };
    await eventually('the first device notified', async () => (await notified(api)) === 1);
    assert.equal(await slow.store.ota.countQueued(pkg), 2);
    await slow.close();

    const fast = await startServer(testConfig(dir, { otaRolloutGroupSize: 100, otaRolloutIntervalMs: 100 }), { logger: quiet() });
    try {
      const url2 = `http://127.0.0.1:${fast.ports.http}`;
      const api2 = otaApi(url2, await loginAdmin(url2, ADMIN_EMAIL, ADMIN_PASSWORD));
      // The pacer's next slot (a minute after the first device) is in the database too: move it so the test is short.
      await (fast.store as any).db.updateTable('ota_rollout_pacer').set({ next_at: 0 }).execute();
      await eventually('the two queued devices notified after the restart', async () => (await notified(api2)) === 3, 30_000);
      assert.equal(await fast.store.ota.countQueued(pkg), 0);
    } finally {
      await fast.close();
    }
  });
});
