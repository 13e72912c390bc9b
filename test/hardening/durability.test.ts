/**
 * Durability under faults (issue 7 §4, DESIGN "Data flow": nothing acknowledged is ever lost, even on kill -9), on
 * SQLite and on PostgreSQL: several rounds of a QoS 1 telemetry flood from many MQTT devices plus HTTP provisioning,
 * each ended by SIGKILL at a seeded moment; then every PUBACKed (device, ts, key) must be stored exactly once, and
 * every device a provisioning SUCCESS named must have its credentials and its `provisionState` attribute.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it, type TestContext } from 'node:test';
import { Rng } from '../fuzz/rng.ts';
import { startServerProcess } from '../support/process-server.ts';
import { skipUnlessPostgres, startPostgres, type TestPostgres } from '../support/postgres.ts';
import { ADMIN, adminClient, checkTelemetry, floodAndKill, type Acknowledged } from './durability-support.ts';

const DEVICES = 20;
const ROUNDS = 3;

async function killRounds(t: TestContext, database: string, seed: number): Promise<void> {
  const env = { FLEETGATE_DATABASE: database, FLEETGATE_ADMIN_PASSWORD: ADMIN.password, FLEETGATE_LOG_LEVEL: 'warn' };
  const rng = new Rng(seed);
  const tokens = Array.from({ length: DEVICES }, (_, i) => `dur-token-${i}`);
  const profile = { key: 'dur-key', secret: 'dur-secret' };
  const deviceIds = new Map<string, string>();

  const setup = await startServerProcess(env);
  try {
    const admin = await adminClient(setup);
    await admin.post('/api/deviceProfile', {
      name: 'Durable',
      provisionType: 'ALLOW_CREATE_NEW_DEVICES',
      provisionDeviceKey: profile.key,
      profileData: { provisionConfiguration: { type: 'ALLOW_CREATE_NEW_DEVICES', provisionDeviceSecret: profile.secret } },
    });
    for (const token of tokens) deviceIds.set(token, (await admin.post(`/api/device?accessToken=${token}`, { name: `dev-${token}` })).id.id);
  } finally {
    setup.child.kill('SIGTERM');
    await setup.exited;
  }

  const acknowledged: Acknowledged = { telemetry: new Map(), provisioned: new Map() };
  for (let round = 0; round < ROUNDS; round++) {
    const r = await floodAndKill({ env, tokens, round, rng, profile, acknowledged });
    t.diagnostic(`round ${round}: SIGKILL after ${r.killAfter} acknowledged messages (${r.ackedThisRound} acknowledged in the round)`);
  }

  const final = await startServerProcess(env);
  try {
    const admin = await adminClient(final);
    let acked = 0;
    let found = 0;
    for (const token of tokens) {
      const list = acknowledged.telemetry.get(token) ?? [];
      const result = await checkTelemetry(admin, deviceIds.get(token)!, list);
      acked += list.length;
      found += result.found;
      assert.deepEqual(result.lost.slice(0, 10), [], `${token}: ${result.lost.length} acknowledged messages lost`);
      assert.equal(result.duplicates, 0, `${token}: stored twice`);
      assert.equal(result.wrongValue, 0, `${token}: value does not match its message`);
    }
    t.diagnostic(`telemetry: acknowledged ${acked}, found ${found}, lost ${acked - found}`);
    assert.ok(acked > 0);

    for (const [name, token] of acknowledged.provisioned) {
      const device = await admin.get(`/api/tenant/devices?deviceName=${encodeURIComponent(name)}`);
      const creds = await admin.get(`/api/device/${device.id.id}/credentials`);
      assert.equal(creds.credentialsId, token, `${name}: the credentials its SUCCESS carried`);
    }
    // No device of the profile is half-written, including those whose SUCCESS never reached the client.
    const page = await admin.get('/api/tenant/devices?pageSize=100000&page=0');
    const provisioned = (page.data as { id: { id: string }; name: string }[]).filter((d) => d.name.startsWith('dur-r'));
    for (const device of provisioned) {
      const creds = await admin.get(`/api/device/${device.id.id}/credentials`);
      assert.ok(creds.credentialsId, `${device.name} has credentials`);
      const attrs = (await admin.get(`/api/plugins/telemetry/DEVICE/${device.id.id}/values/attributes/SERVER_SCOPE?keys=provisionState`)) as { key: string; value: unknown }[];
      assert.deepEqual(attrs.map((a) => [a.key, a.value]), [['provisionState', 'provisioned']], `${device.name} has provisionState`);
    }
    t.diagnostic(`provisioning: SUCCESS received ${acknowledged.provisioned.size}, devices created ${provisioned.length}, half-written 0`);
    assert.ok(provisioned.length >= acknowledged.provisioned.size);
  } finally {
    final.child.kill('SIGTERM');
    await final.exited;
  }
}

describe('durability under SIGKILL', () => {
  it('SQLite: every PUBACKed message stored exactly once, no half-written provisioning', async (t) => {
    const dir = mkdtempSync(join(tmpdir(), 'fleetgate-durability-'));
    try {
      await killRounds(t, join(dir, 'fleetgate.db'), 4242);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  describe('PostgreSQL', { skip: skipUnlessPostgres() }, () => {
    let pg: TestPostgres | undefined;
    after(() => pg?.stop());
    it('every PUBACKed message stored exactly once, no half-written provisioning', async (t) => {
      pg = await startPostgres();
      await killRounds(t, await pg.createDatabase(), 4343);
    });
  });
});
