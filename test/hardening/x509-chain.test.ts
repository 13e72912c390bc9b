/**
 * X.509 certificate-chain provisioning over MQTT TLS (spec §7), end to end: real TLS sockets, MQTT.js presenting
 * openssl-made chains (root CA -> intermediate CA -> device) as one concatenated PEM `cert`.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import mqtt, { type MqttClient } from 'mqtt';
import { loadConfig } from '../../src/config.ts';
import { sha3Hex, stripCertificate } from '../../src/core/credentials.ts';
import { DEFAULT_TENANT_ID, type DeviceProfile } from '../../src/core/model.ts';
import { Throttle } from '../../src/core/throttle/index.ts';
import { startMqttTransport, type MqttTransport } from '../../src/transports/mqtt/index.ts';
import { TEST_ACTOR } from '../support/harness.ts';
import { certificateAuthority, deviceCertificate, impersonatorOf, pemChain, selfSigned, skipUnlessOpenssl, type Authority, type KeyPair } from './certificates.ts';
import { coreWith } from './support.ts';

const T = DEFAULT_TENANT_ID;
const config = { ...loadConfig({ env: {} }), host: '127.0.0.1' };

/** A logger that keeps every line, to check what reaches the logs. */
function recordingLogger() {
  const lines: string[] = [];
  const log = (obj: object, msg?: string) => void lines.push(`${JSON.stringify(obj)} ${msg ?? ''}`);
  return { lines, logger: { info: log, warn: log, error: log, debug: log } };
}

describe('X.509 chain provisioning over MQTT TLS (spec §7)', { skip: skipUnlessOpenssl() }, () => {
  let server: KeyPair;
  let root: Authority;
  let fleet: Authority;
  let strictCa: Authority;
  let fleetProfile: DeviceProfile;
  let t: Awaited<ReturnType<typeof coreWith>>;
  let transport: MqttTransport;
  const logs = recordingLogger();

  /** MQTT.js over TLS presenting `leaf` and the rest of `chain`; resolves on CONNACK success, rejects on refusal or close. */
  function connect(leaf: KeyPair, chain: KeyPair[], protocolVersion: 4 | 5 = 4): Promise<MqttClient> {
    return mqtt.connectAsync(
      `mqtts://127.0.0.1:${transport.tlsPort}`,
      { ca: server.cert, key: leaf.key, cert: pemChain(leaf, ...chain), protocolVersion, clientId: `c-${Math.random()}`, reconnectPeriod: 0, connectTimeout: 5000 },
      false,
    );
  }
  /** Asserts the CONNECT is refused with `code` (spec §7 step 5: v3 5, v5 0x87). */
  async function refused(attempt: Promise<MqttClient>, code: number): Promise<void> {
    await assert.rejects(attempt, (err: Error & { code?: number }) => {
      assert.equal(err.code, code, err.message);
      return true;
    });
  }
  const devicesNamed = async (name: string) => (await t.core.devices.list(T, { page: 0, pageSize: 100, textSearch: name })).data.filter((d) => d.name === name);
  const profileInput = (name: string, anchor: KeyPair, pattern: string, allowCreate: boolean) => ({
    name,
    provisionType: 'X509_CERTIFICATE_CHAIN' as const,
    profileData: { provisionConfiguration: { type: 'X509_CERTIFICATE_CHAIN' as const, provisionDeviceSecret: anchor.cert, certificateRegExPattern: pattern, allowCreateNewDevicesByX509Certificate: allowCreate } },
  });

  before(async () => {
    server = selfSigned('fleetgate-test', '127.0.0.1');
    root = certificateAuthority('Fleet Root');
    fleet = certificateAuthority('Fleet Intermediate', root);
    strictCa = certificateAuthority('Strict Intermediate', root);
    t = await coreWith(new Throttle());
    fleetProfile = await t.core.profiles.save(T, profileInput('Fleet', fleet, '^(device-\\d+)$', true), TEST_ACTOR);
    await t.core.profiles.save(T, profileInput('Strict', strictCa, '(.*)', false), TEST_ACTOR);
    transport = await startMqttTransport({ core: t.core, config, logger: logs.logger, host: '127.0.0.1', port: 0, tls: { port: 0, cert: server.cert, key: server.key } });
  });
  after(async () => {
    await transport.close();
    await t.close();
  });

  it('creates the device on its first connection (CONNACK 0), accepts its telemetry, sets provisionState and audits it', async () => {
    const leaf = deviceCertificate('device-42', fleet);
    const client = await connect(leaf, [fleet, root]);
    await client.publishAsync('v1/devices/me/telemetry', '{"temperature":21.5}', { qos: 1 });
    await client.endAsync();
    const [device] = await devicesNamed('device-42');
    assert.ok(device, 'device created');
    assert.equal(device.profileId, fleetProfile.id);
    const latest = await t.core.timeseries.latest(device.id, ['temperature']);
    assert.equal(Number((latest.temperature?.[0]?.value as { value: unknown } | undefined)?.value), 21.5);
    const [state] = await t.core.attributes.get(device.id, 'SERVER_SCOPE', ['provisionState']);
    assert.deepEqual(state?.value, { type: 'STRING', value: 'provisioned' });
    const audit = await t.core.audit.list(T, { page: 0, pageSize: 100 });
    const row = audit.data.find((e) => e.entityId === device.id && e.actionType === 'PROVISION_SUCCESS');
    assert.equal(row?.source, 'mqtt:127.0.0.1');
    // The same device again, on MQTT 5: the same device, not a second one.
    const again = await connect(leaf, [fleet, root], 5);
    await again.endAsync();
    assert.equal((await devicesNamed('device-42')).length, 1);
  });

  it('two connections of the same new device at once: both accepted, one device', async () => {
    const leaf = deviceCertificate('device-43', fleet);
    const clients = await Promise.all([connect(leaf, [fleet]), connect(leaf, [fleet, root]), connect(leaf, [fleet], 5)]);
    await Promise.all(clients.map((c) => c.endAsync()));
    assert.equal((await devicesNamed('device-43')).length, 1);
  });

  it('a new leaf with the same CN replaces the certificate; the old leaf is then refused', async () => {
    const first = deviceCertificate('device-44', fleet);
    await (await connect(first, [fleet])).endAsync();
    const renewed = deviceCertificate('device-44', fleet);
    const client = await connect(renewed, [fleet, root]);
    await client.publishAsync('v1/devices/me/telemetry', '{"rotated":1}', { qos: 1 });
    await client.endAsync();
    const [device] = await devicesNamed('device-44');
    assert.equal((await t.core.devices.getCredentials(T, device!.id)).credentialsId, sha3Hex(stripCertificate(renewed.cert)));
    // The old leaf is no longer anyone's credentials; the profile would rotate back only through a chain.
    await refused(mqtt.connectAsync(`mqtts://127.0.0.1:${transport.tlsPort}`, { ca: server.cert, key: first.key, cert: first.cert, reconnectPeriod: 0 }, false), 5);
  });

  it('a CN the pattern does not match is refused at CONNECT (v3 5, v5 0x87) and creates nothing', async () => {
    const leaf = deviceCertificate('sensor-1', fleet);
    await refused(connect(leaf, [fleet, root], 4), 5);
    await refused(connect(leaf, [fleet, root], 5), 0x87);
    assert.deepEqual(await devicesNamed('sensor-1'), []);
  });

  it('allowCreateNewDevicesByX509Certificate false and no such device: refused, nothing created', async () => {
    await refused(connect(deviceCertificate('strict-1', strictCa), [strictCa, root]), 5);
    assert.deepEqual(await devicesNamed('strict-1'), []);
  });

  it('a leaf not signed by the presented intermediate: connection closed without CONNACK, nothing created, logged without certificates', async () => {
    const forged = deviceCertificate('device-66', impersonatorOf(fleet));
    await assert.rejects(connect(forged, [fleet, root]), (err: Error & { code?: unknown }) => {
      assert.notEqual(typeof err.code, 'number', `no CONNACK expected: ${err.message}`);
      return true;
    });
    assert.deepEqual(await devicesNamed('device-66'), []);
    const line = logs.lines.find((l) => l.includes('x509_chain_invalid'));
    assert.match(line ?? '', /CN=device-66/);
    const body = stripCertificate(forged.cert).slice(0, 40);
    assert.ok(!logs.lines.some((l) => l.includes(body) || l.includes('PRIVATE KEY')), 'no certificate or key in the logs');
  });

  it('a leaf registered directly as X509_CERTIFICATE still authenticates as before', async () => {
    const own = selfSigned('registered-device');
    const device = await t.core.devices.save(T, { name: 'registered-device' }, TEST_ACTOR);
    await t.core.devices.saveCredentials(T, { deviceId: device.id, credentialsType: 'X509_CERTIFICATE', credentialsValue: own.cert }, TEST_ACTOR);
    const client = await connect(own, []);
    await client.publishAsync('v1/devices/me/telemetry', '{"direct":1}', { qos: 1 });
    await client.endAsync();
    assert.equal(Number(((await t.core.timeseries.latest(device.id, ['direct'])).direct?.[0]?.value as { value: unknown }).value), 1);
  });
});
