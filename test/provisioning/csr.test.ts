/**
 * Certificates from a CSR: a profile holding a signing CA signs a device's PEM CSR during provisioning (curl over HTTP,
 * mosquitto_rr over MQTT), the device then connects with the certificate over MQTT TLS (mosquitto_pub) and HTTPS
 * (curl); the CA key is never returned; bad CSRs (broken signature, wrong CN, oversized, not PEM) each get a clear
 * FAILURE reason and nothing is written.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { DEFAULT_TENANT_ID } from '../../src/core/model.ts';
import { certificateAuthority, selfSigned, type Authority } from '../hardening/certificates.ts';
import { ADMIN_EMAIL, ADMIN_PASSWORD, startTestServer, type TestServer } from '../support/harness.ts';
import { skipSuiteForMissingTool } from '../support/tools.ts';
import { curlCall, curlOptions, missingClients, provisionWithCurl, provisionWithMosquitto, run } from './support.ts';

const T = DEFAULT_TENANT_ID;

describe('certificates from a CSR', { skip: skipSuiteForMissingTool(missingClients('openssl', 'curl', 'mosquitto_rr', 'mosquitto_pub')) }, () => {
  let dir: string;
  let server: TestServer;
  let ca: Authority;
  let profileId: string;
  const path = (name: string) => join(dir, name);
  let adminToken = '';
  /** Admin REST over HTTPS with curl (the test server's certificate is self-signed). */
  async function admin(_server: TestServer, method: 'GET' | 'POST', apiPath: string, body?: unknown): Promise<{ status: number; json: any; text: string }> {
    const args = ['-X', method, '-H', `x-authorization: Bearer ${adminToken}`];
    if (body !== undefined) args.push('-H', 'content-type: application/json', '-d', JSON.stringify(body));
    const { status, text } = await curlCall(`${server.httpUrl}${apiPath}`, args);
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch {
      json = undefined;
    }
    return { status, json, text };
  }

  /** A fresh P-256 key and a CSR for `cn`, made with openssl; returns the CSR PEM and the key's path. */
  function csrFor(cn: string): { csr: string; keyPath: string } {
    const id = Math.random().toString(36).slice(2);
    execFileSync('openssl', ['req', '-new', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-subj', `/CN=${cn}`, '-keyout', path(`${id}.key`), '-out', path(`${id}.csr`)], { stdio: 'ignore' });
    return { csr: readFileSync(path(`${id}.csr`), 'utf8'), keyPath: path(`${id}.key`) };
  }
  const request = (deviceName: string | undefined, csr: string, key = 'csr-key') => ({
    ...(deviceName !== undefined ? { deviceName } : {}),
    provisionDeviceKey: key,
    provisionDeviceSecret: 'csr-secret',
    credentialsType: 'X509_CERTIFICATE',
    csr,
  });
  const exists = async (name: string) => (await admin(server, 'GET', `/api/tenant/devices?deviceName=${encodeURIComponent(name)}`)).status === 200;
  async function profile(name: string, key: string, signing: Record<string, unknown>, type = 'ALLOW_CREATE_NEW_DEVICES') {
    return admin(server, 'POST', '/api/deviceProfile', {
      name,
      provisionType: type,
      provisionDeviceKey: key,
      profileData: { provisionConfiguration: { type, provisionDeviceSecret: 'csr-secret', certificateSigning: signing } },
    });
  }

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'fleetgate-csr-'));
    const tls = selfSigned('fleetgate-test', '127.0.0.1');
    writeFileSync(path('server.pem'), tls.cert);
    writeFileSync(path('server.key'), tls.key);
    ca = certificateAuthority('Fleet Signing CA');
    writeFileSync(path('ca.pem'), ca.cert);
    writeFileSync(path('ca.key'), ca.key);
    server = await startTestServer({ logLevel: 'info', tlsCert: path('server.pem'), tlsKey: path('server.key') });
    server.httpUrl = `https://127.0.0.1:${server.ports.http}`;
    curlOptions.push('--cacert', path('server.pem'));
    const login = await curlCall(`${server.httpUrl}/api/auth/login`, ['-X', 'POST', '-H', 'content-type: application/json', '-d', JSON.stringify({ username: ADMIN_EMAIL, password: ADMIN_PASSWORD })]);
    adminToken = JSON.parse(login.text).token;
    const res = await profile('Signed', 'csr-key', { caCertificate: ca.cert, caKey: ca.key, validityDays: 30 });
    assert.equal(res.status, 200, res.text);
    profileId = res.json.id.id;
  });
  after(async () => {
    await server?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  test('the CA key is stored encrypted and never returned; saving the profile back keeps it', async () => {
    const got = await admin(server, 'GET', `/api/deviceProfile/${profileId}`);
    const signing = got.json.profileData.provisionConfiguration.certificateSigning;
    assert.equal(signing.caKeyStored, true);
    assert.equal(signing.caKey, undefined);
    assert.equal(signing.caKeyEncrypted, undefined);
    assert.ok(!got.text.includes('PRIVATE KEY'));
    const stored = await server.core.profiles.get(T, profileId);
    const sealed = (stored.profileData.provisionConfiguration as any).certificateSigning.caKeyEncrypted as string;
    assert.match(sealed, /^aesgcm1:/);
    assert.ok(!JSON.stringify(stored).includes('PRIVATE KEY'), 'only the encrypted form is in the database');
    const saved = await admin(server, 'POST', '/api/deviceProfile', got.json);
    assert.equal(saved.status, 200, saved.text);
    const audit = await admin(server, 'GET', '/api/audit/logs?pageSize=100&page=0');
    assert.ok(!audit.text.includes('PRIVATE KEY') && !audit.text.includes(sealed));
    assert.ok(!server.logLines.some((l) => l.includes('PRIVATE KEY')));
  });

  test('over HTTP (curl): the CSR is signed, the chain answered, and the device connects with it over MQTT TLS and HTTPS', async () => {
    const { csr, keyPath } = csrFor('meter-1');
    const { reply } = await provisionWithCurl(server, request('meter-1', csr));
    assert.equal(reply.status, 'SUCCESS', JSON.stringify(reply));
    assert.equal(reply.credentialsType, 'X509_CERTIFICATE');
    const chain = reply.credentialsValue as string;
    assert.equal(chain.match(/BEGIN CERTIFICATE/g)?.length, 2, 'leaf then CA');
    const leafPem = chain.slice(0, chain.indexOf('-----END CERTIFICATE-----') + 25) + '\n';
    writeFileSync(path('meter-1.pem'), leafPem);
    const verified = await run('openssl', ['verify', '-CAfile', path('ca.pem'), path('meter-1.pem')]);
    assert.equal(verified.code, 0, verified.stdout + verified.stderr);
    const text = execFileSync('openssl', ['x509', '-noout', '-subject', '-enddate', '-in', path('meter-1.pem')], { encoding: 'utf8' });
    assert.match(text, /CN ?= ?meter-1/);
    const days = (Date.parse(text.match(/notAfter=(.*)/)![1]!) - Date.now()) / 86_400_000;
    assert.ok(days > 29 && days <= 30, `validity from the profile (30 days), got ${days}`);
    const pub = await run('mosquitto_pub', ['-h', '127.0.0.1', '-p', String(server.ports.mqttTls), '--cafile', path('server.pem'), '--cert', path('meter-1.pem'), '--key', keyPath, '-q', '1', '-t', 'v1/devices/me/telemetry', '-m', '{"kwh":7}']);
    assert.equal(pub.code, 0, pub.stderr);
    const device = await server.core.devices.findByName(T, 'meter-1');
    assert.equal((await server.core.timeseries.latest(device.id, ['kwh'])).kwh?.[0]?.value.value, 7);
    const https = await run('curl', ['-s', '-o', '/dev/null', '-w', '%{http_code}', '--cacert', path('server.pem'), '--cert', path('meter-1.pem'), '--key', keyPath, '-d', '{"kwh":8}', `https://127.0.0.1:${server.ports.http}/api/v1/x509/telemetry`]);
    assert.equal(https.stdout, '200');
  });

  test('over MQTT (mosquitto_rr), with the name taken from the CN through the profile pattern', async () => {
    const res = await profile('SignedPattern', 'csr-pattern-key', { caCertificate: ca.cert, caKeyFile: path('ca.key'), commonNamePattern: '^(meter-\\d+)\\.factory\\.example$' });
    assert.equal(res.status, 200, res.text);
    assert.equal(res.json.profileData.provisionConfiguration.certificateSigning.caKeyFile, path('ca.key'));
    const { csr } = csrFor('meter-12.factory.example');
    const reply = await provisionWithMosquitto(server, request(undefined, csr, 'csr-pattern-key'));
    assert.equal(reply.status, 'SUCCESS', JSON.stringify(reply));
    assert.equal(reply.deviceName, 'meter-12');
  });

  test('an X.509 device rotates its certificate with a new CSR over HTTPS (curl) and MQTT TLS (mosquitto_rr); the old one keeps working', async () => {
    const first = csrFor('meter-rot');
    const { reply } = await provisionWithCurl(server, request('meter-rot', first.csr));
    assert.equal(reply.status, 'SUCCESS');
    writeFileSync(path('rot-1.pem'), reply.credentialsValue);
    const rotateOverHttps = (certFile: string, keyFile: string, csr: string) =>
      curlCall(`${server.httpUrl}/api/v1/x509/credentials/rotate`, ['-X', 'POST', '--cert', certFile, '--key', keyFile, '-d', JSON.stringify({ csr })]);
    const wrongCn = await rotateOverHttps(path('rot-1.pem'), first.keyPath, csrFor('meter-other').csr);
    assert.deepEqual([wrongCn.status, JSON.parse(wrongCn.text).reason], [400, 'CN_NOT_MATCHED']);
    const second = csrFor('meter-rot');
    const rotated = await rotateOverHttps(path('rot-1.pem'), first.keyPath, second.csr);
    assert.equal(rotated.status, 200, rotated.text);
    const body = JSON.parse(rotated.text);
    assert.equal(body.credentialsType, 'X509_CERTIFICATE');
    writeFileSync(path('rot-2.pem'), body.credentialsValue);
    const telemetry = (certFile: string, keyFile: string) => curlCall(`${server.httpUrl}/api/v1/x509/telemetry`, ['-X', 'POST', '--cert', certFile, '--key', keyFile, '-d', '{"r":1}']);
    assert.equal((await telemetry(path('rot-2.pem'), second.keyPath)).status, 200, 'the new certificate works');
    assert.equal((await telemetry(path('rot-1.pem'), first.keyPath)).status, 200, 'the old certificate works during the grace period');
    const third = csrFor('meter-rot');
    const mqtt = await run('mosquitto_rr', ['-h', '127.0.0.1', '-p', String(server.ports.mqttTls), '--cafile', path('server.pem'), '--cert', path('rot-2.pem'), '--key', second.keyPath, '-q', '1', '-t', 'v1/devices/me/credentials/rotate/request', '-e', 'v1/devices/me/credentials/rotate/response', '-m', JSON.stringify({ csr: third.csr }), '-W', '20']);
    assert.equal(mqtt.code, 0, mqtt.stderr);
    const overMqtt = JSON.parse(mqtt.stdout);
    assert.equal(overMqtt.status, 'SUCCESS', mqtt.stdout);
    writeFileSync(path('rot-3.pem'), overMqtt.credentialsValue);
    assert.equal((await telemetry(path('rot-3.pem'), third.keyPath)).status, 200);
  });

  describe('bad CSRs: a clear FAILURE reason and nothing written', () => {
    const cases: [string, () => { name: string; csr: string }, string][] = [
      ['a broken signature', () => {
        const { csr } = csrFor('bad-sig');
        const der = Buffer.from(csr.replace(/-----[A-Z ]+-----/g, '').replace(/\s+/g, ''), 'base64');
        der[der.length - 1] ^= 0x01; // the last byte of the signature
        return { name: 'bad-sig', csr: `-----BEGIN CERTIFICATE REQUEST-----\n${der.toString('base64').replace(/(.{64})/g, '$1\n')}\n-----END CERTIFICATE REQUEST-----\n` };
      }, 'INVALID_CSR'],
      ['a CN that does not match the device name', () => ({ name: 'meter-2', csr: csrFor('meter-3').csr }), 'CN_NOT_MATCHED'],
      ['an oversized CSR', () => ({ name: 'big', csr: csrFor('big').csr.replace('-----END', `${'A'.repeat(17_000)}\n-----END`) }), 'INVALID_CSR'],
      ['a CSR that is not PEM', () => ({ name: 'not-pem', csr: 'hello, I am a certificate request' }), 'INVALID_CSR'],
      ['a PEM certificate instead of a CSR', () => ({ name: 'a-cert', csr: ca.cert }), 'INVALID_CSR'],
      ['PEM armour around garbage', () => ({ name: 'garbage', csr: '-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE REQUEST-----\n' }), 'INVALID_CSR'],
    ];
    for (const [what, make, reason] of cases) {
      test(what, async () => {
        const { name, csr } = make();
        const { status, reply } = await provisionWithCurl(server, request(name, csr));
        assert.equal(status, 200);
        assert.deepEqual([reply.status, reply.reason], ['FAILURE', reason], JSON.stringify(reply));
        assert.equal(await exists(name), false);
      });
    }
    test('a CSR without credentialsType X509_CERTIFICATE is INVALID_CREDENTIALS', async () => {
      const { reply } = await provisionWithCurl(server, { ...request('no-type', csrFor('no-type').csr), credentialsType: 'ACCESS_TOKEN' });
      assert.equal(reply.reason, 'INVALID_CREDENTIALS');
    });
    test('a CSR to a profile without certificateSigning, or to a pre-provisioned profile, is CSR_NOT_SUPPORTED', async () => {
      await admin(server, 'POST', '/api/deviceProfile', { name: 'NoSigning', provisionType: 'ALLOW_CREATE_NEW_DEVICES', provisionDeviceKey: 'no-signing-key', profileData: { provisionConfiguration: { type: 'ALLOW_CREATE_NEW_DEVICES', provisionDeviceSecret: 'csr-secret' } } });
      assert.equal((await provisionWithCurl(server, request('ns-1', csrFor('ns-1').csr, 'no-signing-key'))).reply.reason, 'CSR_NOT_SUPPORTED');
      assert.equal((await profile('SignedPre', 'csr-pre-key', { caCertificate: ca.cert, caKeyFile: path('ca.key') }, 'CHECK_PRE_PROVISIONED_DEVICES')).status, 200);
      await admin(server, 'POST', '/api/device', { name: 'pre-csr', type: 'SignedPre' });
      assert.equal((await provisionWithCurl(server, request('pre-csr', csrFor('pre-csr').csr, 'csr-pre-key'))).reply.reason, 'CSR_NOT_SUPPORTED');
    });
  });

  test('a signing profile whose key does not belong to its certificate, or has no key, is refused with 400', async () => {
    const other = certificateAuthority('Other CA');
    const mismatch = await profile('BadSigning', 'bad-signing-key', { caCertificate: ca.cert, caKey: other.key });
    assert.equal(mismatch.status, 400);
    assert.match(mismatch.json.message, /does not belong/);
    assert.equal((await profile('BadSigning', 'bad-signing-key', { caCertificate: ca.cert })).status, 400);
    assert.equal((await profile('BadSigning', 'bad-signing-key', { caCertificate: 'nope', caKey: ca.key })).status, 400);
    assert.equal((await profile('BadSigning', 'bad-signing-key', { caCertificate: ca.cert, caKeyFile: path('missing.key') })).status, 400);
  });
});
