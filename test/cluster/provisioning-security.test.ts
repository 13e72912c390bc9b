/**
 * fleetgate's provisioning-security options on two nodes sharing one PostgreSQL and one Redis (both nodes in this
 * process): a profile saved on node A is used on node B for derived secrets and the pre-provisioning hook, and a
 * rotation on A holds on B — the old token keeps working there during its grace period (B's cached copy is dropped
 * through the bus and reloaded from the grace row), and is refused there once the grace period ends, long before
 * B's 60-second credentials cache would have let it go.
 */
import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { DEFAULT_TENANT_ID } from '../../src/core/model.ts';
import { startTestServer, TEST_ACTOR, type TestServer } from '../support/harness.ts';
import { skipUnlessPostgres, startPostgres, type TestPostgres } from '../support/postgres.ts';
import { skipUnlessRedis, startRedis, type TestRedis } from '../support/redis.ts';
import { json, TestHook } from '../provisioning/hook-server.ts';
import { createProfile } from '../provisioning/support.ts';

/** Short enough that the test sees it end, long enough that the checks made right after the rotation fall in it. */
const GRACE_MS = 10_000;
const HOOK_SECRET = 'cluster-hook-secret-0123456789';

describe('provisioning security on two nodes (PostgreSQL + Redis)', { skip: skipUnlessPostgres() || skipUnlessRedis() }, () => {
  let pg: TestPostgres | undefined;
  let redis: TestRedis | undefined;
  let a: TestServer | undefined;
  let b: TestServer | undefined;
  let hook: TestHook;

  const provisionOn = async (node: TestServer, body: Record<string, unknown>) =>
    (await (await fetch(`${node.httpUrl}/api/v1/provision`, { method: 'POST', body: JSON.stringify(body) })).json()) as Record<string, any>;
  const telemetryOn = async (node: TestServer, token: string) => {
    const res = await fetch(`${node.httpUrl}/api/v1/${token}/telemetry`, { method: 'POST', body: '{"n":1}' });
    await res.text();
    return res.status;
  };

  before(async () => {
    [pg, redis] = await Promise.all([startPostgres(), startRedis()]);
    const database = await pg.createDatabase();
    hook = await TestHook.start(HOOK_SECRET);
    a = await startTestServer({ database, bus: redis.url, logLevel: 'warn', credentialsRotationGraceMs: GRACE_MS });
    b = await startTestServer({ database, bus: redis.url, logLevel: 'warn', credentialsRotationGraceMs: GRACE_MS });
  });
  after(async () => {
    await Promise.allSettled([a?.close(), b?.close()]);
    await hook?.close();
    await Promise.allSettled([pg?.stop(), redis?.stop()]);
  });

  test('derived secrets: a profile saved on A provisions on B with the device secret only', async () => {
    await createProfile(a!, 'ClusterDerived', 'ALLOW_CREATE_NEW_DEVICES', 'cluster-derived-key', 'cluster-derived-secret', { secretDerivation: 'HMAC_SHA256' });
    const secret = createHmac('sha256', 'cluster-derived-secret').update('cd-1').digest('base64');
    const wrong = await provisionOn(b!, { deviceName: 'cd-1', provisionDeviceKey: 'cluster-derived-key', provisionDeviceSecret: 'cluster-derived-secret' });
    assert.equal(wrong.reason, 'BAD_KEY_OR_SECRET');
    const ok = await provisionOn(b!, { deviceName: 'cd-1', provisionDeviceKey: 'cluster-derived-key', provisionDeviceSecret: secret });
    assert.equal(ok.status, 'SUCCESS', JSON.stringify(ok));
    assert.equal(await telemetryOn(a!, ok.credentialsValue), 200, 'the token from B works on A');
  });

  test('the hook: asked by whichever node gets the request; a denial writes nothing in the shared database', async () => {
    await createProfile(a!, 'ClusterHooked', 'ALLOW_CREATE_NEW_DEVICES', 'cluster-hook-key', 'cluster-hook-secret', { preProvisioningHook: { url: hook.url, secret: HOOK_SECRET } });
    hook.respond = (call, res) => json(res, 200, { allow: call.body.deviceName !== 'ch-denied', label: 'from hook' });
    const denied = await provisionOn(b!, { deviceName: 'ch-denied', provisionDeviceKey: 'cluster-hook-key', provisionDeviceSecret: 'cluster-hook-secret' });
    assert.equal(denied.reason, 'HOOK_DENIED');
    await assert.rejects(a!.core.devices.findByName(DEFAULT_TENANT_ID, 'ch-denied'));
    const allowed = await provisionOn(b!, { deviceName: 'ch-allowed', provisionDeviceKey: 'cluster-hook-key', provisionDeviceSecret: 'cluster-hook-secret' });
    assert.equal(allowed.status, 'SUCCESS');
    assert.equal((await a!.core.devices.findByName(DEFAULT_TENANT_ID, 'ch-allowed')).label, 'from hook');
    assert.ok(hook.calls.every((c) => c.signatureValid));
  });

  test('rotation on A: the old token works on B during the grace period, then B refuses it', async () => {
    await a!.core.devices.save(DEFAULT_TENANT_ID, { name: 'cluster-rot' }, TEST_ACTOR, 'cluster-rot-token-0');
    // Both nodes cache the old token (positive entries live 60 s).
    assert.equal(await telemetryOn(a!, 'cluster-rot-token-0'), 200);
    assert.equal(await telemetryOn(b!, 'cluster-rot-token-0'), 200);
    const res = await fetch(`${a!.httpUrl}/api/v1/cluster-rot-token-0/credentials/rotate`, { method: 'POST' });
    const rotated = (await res.json()) as { status: string; credentialsValue: string; previousCredentialsValidUntil: number };
    assert.equal(rotated.status, 'SUCCESS');
    assert.equal(await telemetryOn(b!, rotated.credentialsValue), 200, 'the new token works on B at once');
    assert.equal(await telemetryOn(b!, 'cluster-rot-token-0'), 200, 'the old token still works on B (grace)');
    // A repeat on B with the old token answers the same new token.
    const repeat = (await (await fetch(`${b!.httpUrl}/api/v1/cluster-rot-token-0/credentials/rotate`, { method: 'POST' })).json()) as { credentialsValue: string };
    assert.equal(repeat.credentialsValue, rotated.credentialsValue);
    // Once the grace period is over B refuses the old token, although it had cached it for 60 s before the rotation.
    let status = 200;
    const deadline = rotated.previousCredentialsValidUntil + 25_000;
    while (status === 200 && Date.now() < deadline) {
      status = await telemetryOn(b!, 'cluster-rot-token-0');
      if (status === 200) await new Promise((r) => setTimeout(r, 250));
    }
    assert.equal(status, 401, 'B refused the old token after its grace period');
    assert.equal(await telemetryOn(b!, rotated.credentialsValue), 200);
  });
});
