/**
 * The seed guide's CoAP flow (spec/seed-device-provisioning.md, "CoAP Example script"): POST /api/v1/provision, then
 * telemetry with the returned token, read back through the admin API. The guide's script uses aiocoap, which is
 * not installable here; the same requests are made with coap-client-notls and with node-coap.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { startCoapTransport, type CoapTransport } from '../../../src/transports/coap/index.ts';
import { silentLogger } from '../../support/core.ts';
import { startTestServer, type TestServer } from '../../support/harness.ts';
import { coapClient, coapClientSkip, coapRequest } from './support.ts';

let server: TestServer;
let coap: CoapTransport;
let auth: Record<string, string>;

before(async () => {
  server = await startTestServer({ logLevel: 'silent' });
  coap = await startCoapTransport({ core: server.core, config: server.config, logger: silentLogger, host: '127.0.0.1', port: 0 });
  auth = { 'x-authorization': `Bearer ${await server.adminToken()}`, 'content-type': 'application/json' };
  // The guide's profile: key u7piawkboq8v32dmcmpp, secret jpmwdn8ptlswmf4m29bw (spec §3.2 example).
  const res = await fetch(`${server.httpUrl}/api/deviceProfile`, {
    method: 'POST',
    headers: auth,
    body: JSON.stringify({
      name: 'Sensors',
      type: 'DEFAULT',
      transportType: 'DEFAULT',
      provisionType: 'ALLOW_CREATE_NEW_DEVICES',
      provisionDeviceKey: 'u7piawkboq8v32dmcmpp',
      profileData: { configuration: { type: 'DEFAULT' }, transportConfiguration: { type: 'DEFAULT' }, provisionConfiguration: { type: 'ALLOW_CREATE_NEW_DEVICES', provisionDeviceSecret: 'jpmwdn8ptlswmf4m29bw' } },
    }),
  });
  assert.equal(res.status, 200, await res.text());
});
after(async () => {
  await coap?.close();
  await server?.close();
});

const toPublish = (name: string) => JSON.stringify({ provisionDeviceKey: 'u7piawkboq8v32dmcmpp', provisionDeviceSecret: 'jpmwdn8ptlswmf4m29bw', deviceName: name });

async function readBack(deviceId: string, key: string): Promise<unknown> {
  const res = await fetch(`${server.httpUrl}/api/plugins/telemetry/DEVICE/${deviceId}/values/timeseries?keys=${key}`, { headers: auth });
  assert.equal(res.status, 200);
  return ((await res.json()) as Record<string, { value: unknown }[]>)[key]?.[0]?.value;
}

test('seed CoAP flow with coap-client-notls: provision, telemetry with the token, read back via the admin API', { skip: coapClientSkip() }, async () => {
  const url = (p: string) => `coap://127.0.0.1:${coap.port}${p}`;
  const provisioned = JSON.parse((await coapClient(['-m', 'post', '-e', toPublish('DEVICE_NAME'), url('/api/v1/provision')])).stdout.trim());
  assert.equal(provisioned.status, 'SUCCESS');
  const token = provisioned.credentialsValue as string; // the guide: decoded_response.get("credentialsValue")
  const sent = await coapClient(['-m', 'post', '-e', '{"temperature":22.5}', url(`/api/v1/${token}/telemetry`)]);
  assert.equal(sent.stderr, '');
  assert.equal(await readBack(provisioned.deviceId, 'temperature'), '22.5');
});

test('seed CoAP flow with node-coap', async () => {
  const a = await coapRequest(coap.port, '/api/v1/provision', { payload: toPublish('NODE_COAP_DEVICE') });
  assert.equal(a.code, '2.01');
  const { credentialsValue, deviceId } = JSON.parse(a.text);
  assert.equal((await coapRequest(coap.port, `/api/v1/${credentialsValue}/telemetry`, { payload: '{"humidity":40}' })).code, '2.01');
  assert.equal(await readBack(deviceId, 'humidity'), '40');
});
