/**
 * X.509 over HTTPS with curl: client-certificate authentication on the device API (`/api/v1/x509/...`) and
 * certificate-chain provisioning (`POST /api/v1/provision/x509`), which ThingsBoard offers on MQTT over TLS only.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { DEFAULT_TENANT_ID } from '../../src/core/model.ts';
import { certificateAuthority, deviceCertificate, impersonatorOf, pemChain, selfSigned, type Authority, type KeyPair } from '../hardening/certificates.ts';
import { startTestServer, TEST_ACTOR, type TestServer } from '../support/harness.ts';
import { skipSuiteForMissingTool } from '../support/tools.ts';
import { missingClients, run } from './support.ts';

const T = DEFAULT_TENANT_ID;

describe('X.509 over HTTPS (curl)', { skip: skipSuiteForMissingTool(missingClients('curl', 'openssl')) }, () => {
  let dir: string;
  let server: TestServer;
  let serverCert: KeyPair;
  let root: Authority;
  let fleet: Authority;
  let base: string;
  const file = (name: string, text: string) => {
    const path = join(dir, name);
    writeFileSync(path, text);
    return path;
  };

  /** curl over HTTPS, presenting `client` (chain PEM and key) when given; status and parsed body. */
  async function curl(path: string, client?: { chain: string; key: string }, body = '{}'): Promise<{ status: number; json: any; text: string }> {
    const args = ['-s', '-w', '\n%{http_code}', '--cacert', join(dir, 'server.pem'), '-X', 'POST', '-d', body, `${base}${path}`];
    if (client) {
      const id = Math.random().toString(36).slice(2);
      args.push('--cert', file(`${id}.pem`, client.chain), '--key', file(`${id}.key`, client.key));
    }
    const out = await run('curl', args);
    assert.equal(out.code, 0, out.stderr);
    const lines = out.stdout.trimEnd().split('\n');
    const status = Number(lines.pop());
    const text = lines.join('\n');
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch {
      json = undefined;
    }
    return { status, json, text };
  }

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'fleetgate-x509-https-'));
    serverCert = selfSigned('fleetgate-test', '127.0.0.1');
    file('server.pem', serverCert.cert);
    file('server.key', serverCert.key);
    root = certificateAuthority('HTTPS Root');
    fleet = certificateAuthority('HTTPS Fleet', root);
    server = await startTestServer({ logLevel: 'warn', tlsCert: join(dir, 'server.pem'), tlsKey: join(dir, 'server.key') });
    base = `https://127.0.0.1:${server.ports.http}`;
    await server.core.profiles.save(
      T,
      {
        name: 'HttpsFleet',
        provisionType: 'X509_CERTIFICATE_CHAIN',
        profileData: { provisionConfiguration: { type: 'X509_CERTIFICATE_CHAIN', provisionDeviceSecret: fleet.cert, certificateRegExPattern: '^(meter-\\d+)$', allowCreateNewDevicesByX509Certificate: true } },
      },
      TEST_ACTOR,
    );
  });
  after(async () => {
    await server?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  test('a device provisions itself with its certificate chain, then sends telemetry authenticated by the certificate', async () => {
    const leaf = deviceCertificate('meter-1', fleet);
    const client = { chain: pemChain(leaf, fleet, root), key: leaf.key };
    const provisioned = await curl('/api/v1/provision/x509', client);
    assert.equal(provisioned.status, 200, provisioned.text);
    assert.equal(provisioned.json.status, 'SUCCESS');
    assert.equal(provisioned.json.credentialsType, 'X509_CERTIFICATE');
    assert.equal(provisioned.json.deviceName, 'meter-1');
    // The same request again: the certificate is registered now, same device.
    const again = await curl('/api/v1/provision/x509', client);
    assert.equal(again.json.deviceId, provisioned.json.deviceId);
    const sent = await curl('/api/v1/x509/telemetry', client, '{"energy":42}');
    assert.equal(sent.status, 200, sent.text);
    const latest = await server.core.timeseries.latest(provisioned.json.deviceId, ['energy']);
    assert.equal(latest.energy?.[0]?.value.value, 42);
  });

  test('a device whose certificate an administrator registered authenticates with it (leaf only)', async () => {
    const ca = certificateAuthority('Standalone CA');
    const leaf = deviceCertificate('registered-1', ca);
    const device = await server.core.devices.save(T, { name: 'registered-1' }, TEST_ACTOR);
    await server.core.devices.saveCredentials(T, { deviceId: device.id, credentialsType: 'X509_CERTIFICATE', credentialsValue: leaf.cert }, TEST_ACTOR);
    const sent = await curl('/api/v1/x509/attributes', { chain: leaf.cert, key: leaf.key }, '{"fw":"v1.0"}');
    assert.equal(sent.status, 200, sent.text);
    const attrs = await server.core.attributes.get(device.id, 'CLIENT_SCOPE');
    assert.equal(attrs.find((a) => a.key === 'fw')?.value.value, 'v1.0');
  });

  test('without a certificate, or with one no device holds: 401 on the device API, and no provisioning', async () => {
    assert.equal((await curl('/api/v1/x509/telemetry')).status, 401);
    const stranger = deviceCertificate('meter-999', certificateAuthority('Unknown CA'));
    assert.equal((await curl('/api/v1/x509/telemetry', { chain: stranger.cert, key: stranger.key })).status, 401);
    const none = await curl('/api/v1/provision/x509');
    assert.deepEqual([none.status, none.json.reason], [400, 'NO_CLIENT_CERTIFICATE']);
    const unknown = await curl('/api/v1/provision/x509', { chain: stranger.cert, key: stranger.key });
    assert.deepEqual([unknown.status, unknown.json.status], [200, 'NOT_FOUND']);
  });

  test('a forged chain (a CA that only claims to be the fleet CA) is INVALID_CHAIN and creates nothing', async () => {
    const forger = impersonatorOf(fleet);
    const leaf = deviceCertificate('meter-666', forger);
    const forged = await curl('/api/v1/provision/x509', { chain: pemChain(leaf, fleet, root), key: leaf.key });
    assert.equal(forged.status, 400, forged.text);
    // Node's TLS layer may also report the bad signature as a socket error (ERR_SSL_EVP_LIB, left in OpenSSL's error
    // queue by the handshake) before the route answers; the server then answers its generic 400. Either way: 400.
    if (forged.json?.reason !== undefined) assert.equal(forged.json.reason, 'INVALID_CHAIN');
    else assert.equal(forged.json?.message, 'Bad request', forged.text);
    await assert.rejects(server.core.devices.findByName(T, 'meter-666'));
  });

  test('a CN the profile pattern does not match is FAILURE CN_NOT_MATCHED', async () => {
    const leaf = deviceCertificate('sensor-1', fleet);
    const res = await curl('/api/v1/provision/x509', { chain: pemChain(leaf, fleet, root), key: leaf.key });
    assert.deepEqual([res.json.status, res.json.reason], ['FAILURE', 'CN_NOT_MATCHED'], res.text);
  });

  test('access tokens keep working over HTTPS', async () => {
    await server.core.devices.save(T, { name: 'token-over-https' }, TEST_ACTOR, 'token-over-https-1');
    assert.equal((await curl('/api/v1/token-over-https-1/telemetry', undefined, '{"a":1}')).status, 200);
  });
});
