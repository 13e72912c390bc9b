/**
 * The pre-provisioning hook on X.509 certificate-chain provisioning, with real TLS clients: curl on
 * `POST /api/v1/provision/x509` (HTTPS), mosquitto_pub and MQTT.js on MQTT over TLS, against a real HTTP hook server.
 * The hook is asked before a device is created or its certificate replaced, with the same signed facts as on the
 * key/secret path (credentialsType X509_CERTIFICATE, never a certificate or key), and decides the same way.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import mqtt, { type MqttClient } from 'mqtt';
import { stripCertificate } from '../../src/core/credentials.ts';
import { DEFAULT_TENANT_ID } from '../../src/core/model.ts';
import { certificateAuthority, deviceCertificate, pemChain, selfSigned, type Authority, type KeyPair } from '../hardening/certificates.ts';
import { ADMIN_EMAIL, ADMIN_PASSWORD, startTestServer, type TestServer } from '../support/harness.ts';
import { skipSuiteForMissingTool } from '../support/tools.ts';
import { json, TestHook } from './hook-server.ts';
import { missingClients, run } from './support.ts';

const T = DEFAULT_TENANT_ID;
const HOOK_SECRET = 'x509-hook-signing-secret-0123';

describe('the pre-provisioning hook on X.509 chain provisioning (HTTPS and MQTT over TLS)', { skip: skipSuiteForMissingTool(missingClients('curl', 'openssl', 'mosquitto_pub')) }, () => {
  let dir: string;
  let server: TestServer;
  let hook: TestHook;
  let root: Authority;
  let base: string;
  let token: string;
  let serverCert: string;
  let n = 0;
  const file = (name: string, text: string) => {
    const path = join(dir, name);
    writeFileSync(path, text);
    return path;
  };
  const clientFiles = (client: { chain: string; key: string }) => {
    const id = Math.random().toString(36).slice(2);
    return { cert: file(`${id}.pem`, client.chain), key: file(`${id}.key`, client.key) };
  };

  /** curl over HTTPS (optionally presenting a client chain, or as the administrator): status and parsed body. */
  async function curl(method: string, path: string, options: { client?: { chain: string; key: string }; body?: unknown; admin?: boolean } = {}): Promise<{ status: number; json: any; text: string }> {
    const args = ['-s', '-w', '\n%{http_code}', '--cacert', join(dir, 'server.pem'), '-X', method, `${base}${path}`];
    if (options.body !== undefined) args.push('-H', 'content-type: application/json', '-d', JSON.stringify(options.body));
    if (options.admin) args.push('-H', `x-authorization: Bearer ${token}`);
    if (options.client) {
      const files = clientFiles(options.client);
      args.push('--cert', files.cert, '--key', files.key);
    }
    const out = await run('curl', args);
    assert.equal(out.code, 0, out.stderr);
    const lines = out.stdout.trimEnd().split('\n');
    const status = Number(lines.pop());
    const text = lines.join('\n');
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch {
      parsed = undefined;
    }
    return { status, json: parsed, text };
  }

  const provisionOverHttps = (leaf: KeyPair, fleet: Authority) => curl('POST', '/api/v1/provision/x509', { client: { chain: pemChain(leaf, fleet, root), key: leaf.key }, body: {} });

  /** MQTT.js over TLS presenting the chain; resolves on CONNACK success, rejects with the refusal code. */
  function connectMqtt(leaf: KeyPair, fleet: Authority, protocolVersion: 4 | 5): Promise<MqttClient> {
    return mqtt.connectAsync(
      `mqtts://127.0.0.1:${server.ports.mqttTls}`,
      { ca: serverCert, key: leaf.key, cert: pemChain(leaf, fleet, root), protocolVersion, clientId: `c-${Math.random()}`, reconnectPeriod: 0, connectTimeout: 20_000 },
      false,
    );
  }
  async function refusedOnMqtt(leaf: KeyPair, fleet: Authority, protocolVersion: 4 | 5, code: number): Promise<void> {
    await assert.rejects(connectMqtt(leaf, fleet, protocolVersion), (err: Error & { code?: number }) => {
      assert.equal(err.code, code, err.message);
      return true;
    });
  }

  /** A chain profile of its own (its own fleet CA) with a hook, saved through the admin REST API. */
  async function chainProfile(hookOptions: Record<string, unknown> | undefined, allowCreate = true): Promise<{ id: string; name: string; fleet: Authority }> {
    const i = ++n;
    const fleet = certificateAuthority(`Hooked Fleet ${i}`, root);
    const name = `X509 Hooked ${i}`;
    const res = await curl('POST', '/api/deviceProfile', {
      admin: true,
      body: {
        name,
        provisionType: 'X509_CERTIFICATE_CHAIN',
        profileData: {
          provisionConfiguration: {
            type: 'X509_CERTIFICATE_CHAIN',
            provisionDeviceSecret: fleet.cert,
            certificateRegExPattern: '^(meter-\\d+)$',
            allowCreateNewDevicesByX509Certificate: allowCreate,
            ...(hookOptions ? { preProvisioningHook: { url: hook.url, secret: HOOK_SECRET, ...hookOptions } } : {}),
          },
        },
      },
    });
    assert.equal(res.status, 200, res.text);
    return { id: res.json.id.id, name, fleet };
  }

  const deviceNamed = (name: string) => server.core.devices.findByName(T, name).catch(() => undefined);
  const attribute = async (deviceId: string, scope: 'SERVER_SCOPE' | 'SHARED_SCOPE', key: string) => (await server.core.attributes.get(deviceId, scope, [key]))[0]?.value.value;
  const auditRows = async () => (await server.core.audit.list(T, { page: 0, pageSize: 1000 })).data;

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'fleetgate-x509-hook-'));
    const pair = selfSigned('fleetgate-test', '127.0.0.1');
    serverCert = pair.cert;
    file('server.pem', pair.cert);
    file('server.key', pair.key);
    root = certificateAuthority('Hook Root');
    hook = await TestHook.start(HOOK_SECRET);
    server = await startTestServer({ logLevel: 'warn', tlsCert: join(dir, 'server.pem'), tlsKey: join(dir, 'server.key') });
    base = `https://127.0.0.1:${server.ports.http}`;
    const login = await curl('POST', '/api/auth/login', { body: { username: ADMIN_EMAIL, password: ADMIN_PASSWORD } });
    assert.equal(login.status, 200, login.text);
    token = login.json.token;
  });
  after(async () => {
    await server?.close();
    await hook?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  test('an X509_CERTIFICATE_CHAIN profile accepts preProvisioningHook, and refuses a bad one with 400', async () => {
    const saved = await chainProfile({ timeoutMs: 1500, failOpen: false });
    const read = await curl('GET', `/api/deviceProfile/${saved.id}`, { admin: true });
    assert.equal(read.json.profileData.provisionConfiguration.preProvisioningHook.url, hook.url, read.text);
    const fleet = certificateAuthority('Bad Hook Fleet', root);
    const bad = await curl('POST', '/api/deviceProfile', {
      admin: true,
      body: {
        name: 'X509 Bad Hook',
        provisionType: 'X509_CERTIFICATE_CHAIN',
        profileData: { provisionConfiguration: { type: 'X509_CERTIFICATE_CHAIN', provisionDeviceSecret: fleet.cert, preProvisioningHook: { url: 'ftp://x/', secret: HOOK_SECRET } } },
      },
    });
    assert.equal(bad.status, 400, bad.text);
    assert.match(bad.json.message, /preProvisioningHook/);
  });

  test('HTTPS: an allowing hook gets the signed facts (no certificate, no key); the device gets its label and attributes', async () => {
    const p = await chainProfile({});
    hook.respond = (_c, res) => json(res, 200, { allow: true, label: 'Line 7', serverAttributes: { batch: 'X-9' }, sharedAttributes: { interval: 15 } });
    const leaf = deviceCertificate('meter-100', p.fleet);
    const calls = hook.calls.length;
    const res = await provisionOverHttps(leaf, p.fleet);
    assert.deepEqual([res.status, res.json.status, res.json.deviceName], [200, 'SUCCESS', 'meter-100'], res.text);
    assert.equal(hook.calls.length, calls + 1);
    const call = hook.calls.at(-1)!;
    assert.equal(call.signatureValid, true);
    assert.deepEqual(
      { ...call.body, timestamp: 0 },
      { event: 'PRE_PROVISION', deviceName: 'meter-100', deviceProfileId: p.id, deviceProfileName: p.name, provisionType: 'X509_CERTIFICATE_CHAIN', transport: 'http', sourceAddress: '127.0.0.1', credentialsType: 'X509_CERTIFICATE', gateway: false, timestamp: 0 },
    );
    for (const secret of [stripCertificate(leaf.cert).slice(0, 40), 'PRIVATE KEY', 'BEGIN CERTIFICATE']) assert.ok(!call.raw.includes(secret), `hook body has no ${secret}`);
    const device = await deviceNamed('meter-100');
    assert.equal(device?.label, 'Line 7');
    assert.equal(await attribute(device!.id, 'SERVER_SCOPE', 'batch'), 'X-9');
    assert.equal(await attribute(device!.id, 'SHARED_SCOPE', 'interval'), 15);
    assert.equal(await attribute(device!.id, 'SERVER_SCOPE', 'provisionState'), 'provisioned');
    const row = (await auditRows()).find((r) => r.entityId === device!.id && r.actionType === 'PROVISION_SUCCESS');
    assert.match(String((row?.actionData as any)?.note), /hook allowed/);
    // The same chain again: its device already holds this certificate, nothing is written and the hook is not asked.
    const again = await provisionOverHttps(leaf, p.fleet);
    assert.equal(again.json.deviceId, res.json.deviceId);
    assert.equal(hook.calls.length, calls + 1);
  });

  test('MQTT over TLS (mosquitto_pub): an allowing hook is asked with transport mqtt; the device is created with its label', async () => {
    const p = await chainProfile({});
    hook.respond = (_c, res) => json(res, 200, { allow: true, label: 'Mqtt line', serverAttributes: { site: 'north' } });
    const leaf = deviceCertificate('meter-200', p.fleet);
    const files = clientFiles({ chain: pemChain(leaf, p.fleet, root), key: leaf.key });
    const out = await run('mosquitto_pub', ['-h', '127.0.0.1', '-p', String(server.ports.mqttTls), '--cafile', join(dir, 'server.pem'), '--cert', files.cert, '--key', files.key, '-q', '1', '-t', 'v1/devices/me/telemetry', '-m', '{"energy":7}']);
    assert.equal(out.code, 0, out.stderr);
    assert.equal(hook.calls.at(-1)?.body.transport, 'mqtt');
    assert.equal(hook.calls.at(-1)?.body.deviceName, 'meter-200');
    const device = await deviceNamed('meter-200');
    assert.equal(device?.label, 'Mqtt line');
    assert.equal(await attribute(device!.id, 'SERVER_SCOPE', 'site'), 'north');
    assert.equal((await server.core.timeseries.latest(device!.id, ['energy'])).energy?.[0]?.value.value, 7);
  });

  test('a denying hook: HTTPS answers FAILURE HOOK_DENIED, MQTT refuses the CONNECT (v3 5, v5 0x87), nothing written, audited and counted', async () => {
    const p = await chainProfile({});
    hook.respond = (_c, res) => json(res, 200, { allow: false });
    const leaf = deviceCertificate('meter-300', p.fleet);
    const res = await provisionOverHttps(leaf, p.fleet);
    assert.deepEqual([res.status, res.json.status, res.json.reason], [200, 'FAILURE', 'HOOK_DENIED'], res.text);
    await refusedOnMqtt(leaf, p.fleet, 4, 5);
    await refusedOnMqtt(leaf, p.fleet, 5, 0x87);
    assert.deepEqual(hook.calls.slice(-3).map((c) => [c.body.transport, c.body.deviceName]), [['http', 'meter-300'], ['mqtt', 'meter-300'], ['mqtt', 'meter-300']]);
    assert.equal(await deviceNamed('meter-300'), undefined);
    const rows = (await auditRows()).filter((r) => r.actionType === 'PROVISION_FAILURE' && r.entityName === 'meter-300');
    assert.ok(rows.length >= 3, JSON.stringify(rows));
    assert.ok(rows.every((r) => (r.actionData as any)?.reason === 'HOOK_DENIED' && (r.actionData as any)?.strategy === 'X509_CERTIFICATE_CHAIN'));
    assert.deepEqual(rows.map((r) => r.source).sort(), ['http:127.0.0.1', 'mqtt:127.0.0.1', 'mqtt:127.0.0.1']);
    const metrics = await curl('GET', '/metrics');
    assert.match(metrics.text, /fleetgate_provision_hook_calls_total\{outcome="denied"\} [3-9]/);
  });

  test('a denying hook keeps the old certificate: a new leaf for an existing device is not rotated until the hook allows it', async () => {
    const p = await chainProfile({});
    hook.respond = (_c, res) => json(res, 200, { allow: true });
    const first = deviceCertificate('meter-400', p.fleet);
    const created = await provisionOverHttps(first, p.fleet);
    assert.equal(created.json.status, 'SUCCESS', created.text);
    const deviceId = created.json.deviceId as string;
    const before = (await server.core.devices.getCredentials(T, deviceId)).credentialsId;
    const renewed = deviceCertificate('meter-400', p.fleet);
    hook.respond = (_c, res) => json(res, 200, { allow: false });
    const denied = await provisionOverHttps(renewed, p.fleet);
    assert.deepEqual([denied.json.status, denied.json.reason], ['FAILURE', 'HOOK_DENIED'], denied.text);
    await refusedOnMqtt(renewed, p.fleet, 4, 5);
    assert.equal((await server.core.devices.getCredentials(T, deviceId)).credentialsId, before);
    // The old certificate still authenticates.
    assert.equal((await curl('POST', '/api/v1/x509/telemetry', { client: { chain: first.cert, key: first.key }, body: { still: 1 } })).status, 200);
    hook.respond = (_c, res) => json(res, 200, { allow: true, label: 'renewed' });
    const rotated = await provisionOverHttps(renewed, p.fleet);
    assert.deepEqual([rotated.json.status, rotated.json.deviceId], ['SUCCESS', deviceId], rotated.text);
    assert.notEqual((await server.core.devices.getCredentials(T, deviceId)).credentialsId, before);
    assert.equal((await deviceNamed('meter-400'))?.label, 'renewed');
  });

  test('a chain the profile refuses anyway (no such device, creation not allowed) is refused without asking the hook', async () => {
    const p = await chainProfile({}, false);
    hook.respond = (_c, res) => json(res, 200, { allow: true });
    const calls = hook.calls.length;
    const res = await provisionOverHttps(deviceCertificate('meter-500', p.fleet), p.fleet);
    assert.deepEqual([res.json.status, res.json.reason], ['FAILURE', 'NOT_PRE_PROVISIONED'], res.text);
    assert.equal(hook.calls.length, calls);
  });

  test('an unavailable hook under fail-closed: HOOK_UNAVAILABLE on HTTPS, CONNECT refused on MQTT, nothing written', async () => {
    const p = await chainProfile({ timeoutMs: 500 });
    hook.respond = (_c, res) => json(res, 500, { allow: true });
    const leaf = deviceCertificate('meter-600', p.fleet);
    const res = await provisionOverHttps(leaf, p.fleet);
    assert.deepEqual([res.status, res.json.status, res.json.reason], [200, 'FAILURE', 'HOOK_UNAVAILABLE'], res.text);
    hook.respond = (_c, res) => hook.hold(res); // never answers
    await refusedOnMqtt(leaf, p.fleet, 5, 0x87);
    hook.releaseAll({ allow: true }); // a late answer changes nothing
    assert.equal(await deviceNamed('meter-600'), undefined);
    const rows = (await auditRows()).filter((r) => r.actionType === 'PROVISION_FAILURE' && r.entityName === 'meter-600');
    assert.ok(rows.length >= 2 && rows.every((r) => (r.actionData as any)?.reason === 'HOOK_UNAVAILABLE'), JSON.stringify(rows));
  });

  test('an unreachable hook under fail-open: the device is provisioned (HTTPS and MQTT), without label or attributes', async () => {
    const i = ++n;
    const fleet = certificateAuthority(`Fail Open Fleet ${i}`, root);
    const saved = await curl('POST', '/api/deviceProfile', {
      admin: true,
      body: {
        name: `X509 Fail Open ${i}`,
        provisionType: 'X509_CERTIFICATE_CHAIN',
        profileData: {
          provisionConfiguration: {
            type: 'X509_CERTIFICATE_CHAIN',
            provisionDeviceSecret: fleet.cert,
            certificateRegExPattern: '^(meter-\\d+)$',
            allowCreateNewDevicesByX509Certificate: true,
            preProvisioningHook: { url: 'http://127.0.0.1:1/hook', secret: HOOK_SECRET, timeoutMs: 1000, failOpen: true },
          },
        },
      },
    });
    assert.equal(saved.status, 200, saved.text);
    const res = await provisionOverHttps(deviceCertificate('meter-700', fleet), fleet);
    assert.equal(res.json.status, 'SUCCESS', res.text);
    assert.equal((await deviceNamed('meter-700'))?.label ?? null, null);
    const client = await connectMqtt(deviceCertificate('meter-701', fleet), fleet, 4);
    await client.endAsync();
    const device = await deviceNamed('meter-701');
    assert.ok(device, 'created over MQTT');
    const row = (await auditRows()).find((r) => r.entityId === device.id && r.actionType === 'PROVISION_SUCCESS');
    assert.match(String((row?.actionData as any)?.note), /failed open/);
    const metrics = await curl('GET', '/metrics');
    assert.match(metrics.text, /fleetgate_provision_hook_calls_total\{outcome="failedOpen"\} [2-9]/);
  });
});
