/**
 * Transport security (issue 7 §5): MQTT over TLS with X.509 client-certificate authentication (spec §8.1 step 1:
 * SHA3 of the certificate), basic authentication over TLS, and HTTPS for the device API. Certificates are made with
 * openssl at test time.
 */
import assert from 'node:assert/strict';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import tls from 'node:tls';
import { after, before, describe, it } from 'node:test';
import { loadConfig } from '../../src/config.ts';
import { DEFAULT_TENANT_ID } from '../../src/core/model.ts';
import { Throttle } from '../../src/core/throttle/index.ts';
import { createLogger } from '../../src/log.ts';
import { createHttpApp } from '../../src/transports/http/app.ts';
import { registerDeviceApi } from '../../src/transports/http/device-api.ts';
import { startMqttTransport, type MqttTransport } from '../../src/transports/mqtt/index.ts';
import { silentLogger } from '../support/core.ts';
import { TEST_ACTOR } from '../support/harness.ts';
import { WireClient } from '../transports/mqtt/wire-client.ts';
import { selfSigned, skipUnlessOpenssl, type KeyPair } from './certificates.ts';
import { coreWith } from './support.ts';

const config = { ...loadConfig({ env: {} }), host: '127.0.0.1' };

describe('TLS', { skip: skipUnlessOpenssl() }, () => {
  let server: KeyPair;
  let deviceCert: KeyPair;
  let strangerCert: KeyPair;
  let t: Awaited<ReturnType<typeof coreWith>>;
  let mqtt: MqttTransport;
  let x509DeviceId: string;

  before(async () => {
    server = selfSigned('fleetgate-test', '127.0.0.1');
    deviceCert = selfSigned('x509-device');
    strangerCert = selfSigned('unknown-device');
    t = await coreWith(new Throttle());
    const device = await t.core.devices.save(DEFAULT_TENANT_ID, { name: 'x509-device' }, TEST_ACTOR);
    await t.core.devices.saveCredentials(DEFAULT_TENANT_ID, { deviceId: device.id, credentialsType: 'X509_CERTIFICATE', credentialsValue: deviceCert.cert }, TEST_ACTOR);
    x509DeviceId = device.id;
    mqtt = await startMqttTransport({ core: t.core, config, logger: silentLogger, host: '127.0.0.1', port: 0, tls: { port: 0, cert: server.cert, key: server.key } });
  });
  after(async () => {
    await mqtt.close();
    await t.close();
  });

  async function tlsClient(version: 4 | 5, client?: KeyPair): Promise<WireClient> {
    const socket = tls.connect({ host: '127.0.0.1', port: mqtt.tlsPort!, ca: server.cert, ...(client ?? {}) });
    await new Promise<void>((resolve, reject) => socket.once('secureConnect', resolve).once('error', reject));
    return new WireClient(socket, version);
  }

  it('MQTT over TLS: a registered client certificate authenticates the device (SHA3 of the certificate)', async () => {
    const client = await tlsClient(4, deviceCert);
    assert.equal((await client.connect({ clientId: 'x509' })).returnCode, 0);
    assert.equal((await client.publish('v1/devices/me/telemetry', '{"overTls":7}', 1, 1))?.cmd, 'puback');
    client.destroy();
    const latest = await t.core.timeseries.latest(x509DeviceId, ['overTls']);
    assert.equal(Number((latest.overTls?.[0]?.value as { value: unknown } | undefined)?.value), 7);
  });

  it('an unknown client certificate is refused: v3 CONNACK 5, v5 0x87 (spec §8.1), even with a valid token', async () => {
    const v3 = await tlsClient(4, strangerCert);
    assert.equal((await v3.connect({ username: 'token-1' })).returnCode, 5);
    v3.destroy();
    const v5 = await tlsClient(5, strangerCert);
    assert.equal((await v5.connect({ username: 'token-1' })).reasonCode, 0x87);
    v5.destroy();
  });

  it('without a client certificate, basic authentication works over TLS, and plain MQTT still works', async () => {
    const secure = await tlsClient(4);
    assert.equal((await secure.connect({ username: 'token-1', clientId: 'tls-basic' })).returnCode, 0);
    secure.destroy();
    const plain = await WireClient.tcp(mqtt.port, 4);
    assert.equal((await plain.connect({ username: 'token-1', clientId: 'plain' })).returnCode, 0);
    plain.destroy();
  });

  it('refuses TLS below 1.2', async () => {
    const socket = tls.connect({ host: '127.0.0.1', port: mqtt.tlsPort!, ca: server.cert, maxVersion: 'TLSv1.1', minVersion: 'TLSv1' });
    await assert.rejects(new Promise((resolve, reject) => socket.once('secureConnect', resolve).once('error', reject)));
    socket.destroy();
  });

  it('HTTPS: the device API over TLS when a certificate and key are given', async () => {
    const logger = createLogger('silent');
    const app = createHttpApp({ logger, bodyLimit: 65536, https: { cert: server.cert, key: server.key } });
    registerDeviceApi(app, { core: t.core, config, logger });
    await app.listen({ host: '127.0.0.1', port: 0 });
    try {
      const port = (app.server.address() as AddressInfo).port;
      const status = await new Promise<number>((resolve, reject) => {
        const req = https.request({ host: '127.0.0.1', port, method: 'POST', path: '/api/v1/token-1/telemetry', ca: server.cert, headers: { 'content-type': 'application/json' } }, (res) => {
          res.resume();
          resolve(res.statusCode ?? 0);
        });
        req.on('error', reject);
        req.end('{"https":1}');
      });
      assert.equal(status, 200);
    } finally {
      await app.close();
    }
  });
});
