/**
 * The pre-provisioning hook on X.509 chain provisioning on two nodes sharing one PostgreSQL and one Redis (both in
 * this process, both with HTTPS and MQTT over TLS): a chain profile with a hook saved on A is asked by B; a denial on
 * B writes nothing in the shared database; a device allowed on B is registered for A, which does not ask again.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import mqtt from 'mqtt';
import { DEFAULT_TENANT_ID } from '../../src/core/model.ts';
import { certificateAuthority, deviceCertificate, pemChain, selfSigned, type Authority, type KeyPair } from '../hardening/certificates.ts';
import { startTestServer, TEST_ACTOR, type TestServer } from '../support/harness.ts';
import { skipUnlessPostgres, startPostgres, type TestPostgres } from '../support/postgres.ts';
import { skipUnlessRedis, startRedis, type TestRedis } from '../support/redis.ts';
import { skipSuiteForMissingTool } from '../support/tools.ts';
import { json, TestHook } from '../provisioning/hook-server.ts';
import { missingClients, run } from '../provisioning/support.ts';

const T = DEFAULT_TENANT_ID;
const HOOK_SECRET = 'cluster-x509-hook-secret-0123';

describe('the hook on X.509 chain provisioning, two nodes (PostgreSQL + Redis)', { skip: skipUnlessPostgres() || skipUnlessRedis() || skipSuiteForMissingTool(missingClients('curl', 'openssl')) }, () => {
  let dir: string;
  let pg: TestPostgres | undefined;
  let redis: TestRedis | undefined;
  let a: TestServer | undefined;
  let b: TestServer | undefined;
  let hook: TestHook;
  let serverCert: KeyPair;
  let root: Authority;
  let fleet: Authority;

  /** `POST /api/v1/provision/x509` on `node` with curl, presenting the leaf's chain. */
  async function provisionOn(node: TestServer, leaf: KeyPair): Promise<any> {
    const id = Math.random().toString(36).slice(2);
    const cert = join(dir, `${id}.pem`);
    const key = join(dir, `${id}.key`);
    writeFileSync(cert, pemChain(leaf, fleet, root));
    writeFileSync(key, leaf.key);
    const out = await run('curl', ['-s', '--cacert', join(dir, 'server.pem'), '--cert', cert, '--key', key, '-X', 'POST', '-d', '{}', `https://127.0.0.1:${node.ports.http}/api/v1/provision/x509`]);
    assert.equal(out.code, 0, out.stderr);
    return JSON.parse(out.stdout);
  }

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'fleetgate-x509-hook-cluster-'));
    serverCert = selfSigned('fleetgate-test', '127.0.0.1');
    writeFileSync(join(dir, 'server.pem'), serverCert.cert);
    writeFileSync(join(dir, 'server.key'), serverCert.key);
    root = certificateAuthority('Cluster Root');
    fleet = certificateAuthority('Cluster Fleet', root);
    [pg, redis] = await Promise.all([startPostgres(), startRedis()]);
    const database = await pg.createDatabase();
    hook = await TestHook.start(HOOK_SECRET);
    const tls = { tlsCert: join(dir, 'server.pem'), tlsKey: join(dir, 'server.key') };
    a = await startTestServer({ database, bus: redis.url, logLevel: 'warn', ...tls });
    b = await startTestServer({ database, bus: redis.url, logLevel: 'warn', ...tls });
  });
  after(async () => {
    await Promise.allSettled([a?.close(), b?.close()]);
    await hook?.close();
    await Promise.allSettled([pg?.stop(), redis?.stop()]);
    rmSync(dir, { recursive: true, force: true });
  });

  test('a chain profile with a hook saved on A: B asks it; a denial writes nothing; an allowed device is known to A', async () => {
    await a!.core.profiles.save(
      T,
      {
        name: 'ClusterX509Hooked',
        provisionType: 'X509_CERTIFICATE_CHAIN',
        profileData: {
          provisionConfiguration: {
            type: 'X509_CERTIFICATE_CHAIN',
            provisionDeviceSecret: fleet.cert,
            certificateRegExPattern: '^(meter-\\d+)$',
            allowCreateNewDevicesByX509Certificate: true,
            preProvisioningHook: { url: hook.url, secret: HOOK_SECRET },
          },
        },
      },
      TEST_ACTOR,
    );
    hook.respond = (call, res) => json(res, 200, { allow: call.body.deviceName !== 'meter-13', label: 'cluster line' });
    const denied = await provisionOn(b!, deviceCertificate('meter-13', fleet));
    assert.deepEqual([denied.status, denied.reason], ['FAILURE', 'HOOK_DENIED'], JSON.stringify(denied));
    await assert.rejects(a!.core.devices.findByName(T, 'meter-13'));

    const leaf = deviceCertificate('meter-14', fleet);
    const client = await mqtt.connectAsync(
      `mqtts://127.0.0.1:${b!.ports.mqttTls}`,
      { ca: serverCert.cert, key: leaf.key, cert: pemChain(leaf, fleet, root), clientId: 'cluster-x509', reconnectPeriod: 0, connectTimeout: 20_000 },
      false,
    );
    await client.endAsync();
    const device = await a!.core.devices.findByName(T, 'meter-14');
    assert.equal(device.label, 'cluster line');
    const calls = hook.calls.length;
    const again = await provisionOn(a!, leaf);
    assert.deepEqual([again.status, again.deviceId], ['SUCCESS', device.id], JSON.stringify(again));
    assert.equal(hook.calls.length, calls, 'A does not ask the hook about a registered certificate');
    assert.deepEqual(hook.calls.map((c) => [c.body.deviceName, c.body.transport, c.signatureValid]), [['meter-13', 'http', true], ['meter-14', 'mqtt', true]]);
  });
});
