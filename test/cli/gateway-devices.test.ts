/**
 * Gateway devices (issue 14 item 1): made by the CLI (`device create --gateway`), CSV import (`isGateway` /
 * ThingsBoard's `IS_GATEWAY`), the admin API (`additionalInfo.gateway`) and provisioning with `"gateway": true`; each
 * then speaks the gateway API over MQTT (MQTT.js), and a device that is not one is refused.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import mqtt, { type MqttClient } from 'mqtt';
import { TENANT, TEST_ACTOR } from '../transports/mqtt/e2e-support.ts';
import { publishAck } from '../transports/mqtt/gateway/gateway-support.ts';
import { provisioningProfileInput } from '../support/fixtures.ts';
import { ADMIN_EMAIL, ADMIN_PASSWORD, startTestServer, type TestServer } from '../support/harness.ts';
import { runCli } from './run-cli.ts';

describe('gateway devices from the CLI, CSV import, the admin API and provisioning', () => {
  let server: TestServer;
  let env: Record<string, string>;
  let token: string;
  const clients: MqttClient[] = [];

  /** Connects with `accessToken` on MQTT 5 and returns the reason code of a v1/gateway/connect for `sub`. */
  const gatewayConnect = async (accessToken: string, sub: string): Promise<number> => {
    const client = await mqtt.connectAsync(`mqtt://127.0.0.1:${server.mqttPort}`, { username: accessToken, protocolVersion: 5, reconnectPeriod: 0 });
    clients.push(client);
    const { reasonCode } = await publishAck(client, 'v1/gateway/connect', { device: sub });
    await client.endAsync();
    return reasonCode;
  };
  const api = (method: string, path: string, body?: unknown, contentType = 'application/json') =>
    fetch(`${server.httpUrl}${path}`, {
      method,
      headers: { 'x-authorization': `Bearer ${token}`, ...(body === undefined ? {} : { 'content-type': contentType }) },
      body: body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body),
    });

  before(async () => {
    server = await startTestServer({ logLevel: 'warn' });
    env = { FLEETGATE_URL: server.httpUrl, FLEETGATE_ADMIN_USERNAME: ADMIN_EMAIL, FLEETGATE_ADMIN_PASSWORD: ADMIN_PASSWORD };
    token = await server.adminToken();
  });

  after(async () => {
    await Promise.allSettled(clients.map((c) => c.endAsync(true)));
    await server.close();
  });

  test('fleetgate device create --gateway makes a gateway; show says so', async () => {
    const created = await runCli(['device', 'create', 'cli-gw', '--gateway', '--token', 'cli-gw-token', '--json'], env);
    assert.equal(created.code, 0, created.stderr);
    assert.deepEqual(JSON.parse(created.stdout).additionalInfo, { gateway: true });
    const shown = await runCli(['device', 'show', 'cli-gw'], env);
    assert.match(shown.stdout, /^gateway\s+yes$/m);
    assert.equal(await gatewayConnect('cli-gw-token', 'cli-sub'), 0);
    const sub = await runCli(['device', 'show', 'cli-sub'], env);
    assert.match(sub.stdout, new RegExp(`^gateway\\s+${(await server.core.devices.findByName(TENANT, 'cli-gw')).id}$`, 'm'));
    assert.equal((await runCli(['device', 'create', 'cli-plain', '--token', 'cli-plain-token'], env)).code, 0);
    assert.equal(await gatewayConnect('cli-plain-token', 'cli-sub-2'), 0x87);
  });

  test('CSV import reads ThingsBoard\'s IS_GATEWAY column; a bad value rejects its row', async () => {
    const profile = await server.core.profiles.save(TENANT, provisioningProfileInput('Factory GW', 'CHECK_PRE_PROVISIONED_DEVICES', 'fgw-key', 'fgw-secret'), TEST_ACTOR);
    const csv = 'name,ACCESS_TOKEN,IS_GATEWAY\nimp-gw,imp-gw-token,true\nimp-dev,imp-dev-token,false\nimp-bad,imp-bad-token,maybe\nimp-none,imp-none-token,\n';
    const res = await api('POST', `/api/devices/import?deviceProfileId=${profile.id}`, csv, 'text/csv');
    const body = (await res.json()) as { created: number; errors: { line: number; error: string }[] };
    assert.equal(res.status, 200);
    assert.equal(body.created, 3);
    assert.deepEqual(body.errors.map((e) => e.line), [4]);
    assert.match(body.errors[0].error, /isGateway must be true or false/);
    assert.deepEqual((await server.core.devices.findByName(TENANT, 'imp-gw')).additionalInfo, { gateway: true });
    assert.equal((await server.core.devices.findByName(TENANT, 'imp-dev')).additionalInfo, null);
    assert.equal(await gatewayConnect('imp-gw-token', 'imp-sub'), 0);
    const json = await api('POST', `/api/devices/import?deviceProfileId=${profile.id}`, { rows: [{ name: 'imp-json-gw', accessToken: 'imp-json-token', isGateway: true }] });
    assert.equal(((await json.json()) as { created: number }).created, 1);
    assert.deepEqual((await server.core.devices.findByName(TENANT, 'imp-json-gw')).additionalInfo, { gateway: true });
  });

  test('the admin API turns a device into a gateway; its next connection may use v1/gateway', async () => {
    const created = await api('POST', '/api/device?accessToken=flip-token', { name: 'flip' });
    const device = (await created.json()) as Record<string, unknown>;
    assert.equal(await gatewayConnect('flip-token', 'flip-sub'), 0x87);
    const updated = await api('POST', '/api/device', { ...device, additionalInfo: { gateway: true, description: '' } });
    assert.equal(updated.status, 200);
    assert.equal(await gatewayConnect('flip-token', 'flip-sub'), 0, 'the cached authentication learnt the flag');
  });

  test('provisioning with "gateway": true over HTTP and MQTT creates gateways that work as such', async () => {
    await server.core.profiles.save(TENANT, provisioningProfileInput('Gateways', 'ALLOW_CREATE_NEW_DEVICES', 'gw-prov-key', 'gw-prov-secret'), TEST_ACTOR);
    const request = (deviceName: string) => ({ deviceName, provisionDeviceKey: 'gw-prov-key', provisionDeviceSecret: 'gw-prov-secret', gateway: true });
    const http = (await (await fetch(`${server.httpUrl}/api/v1/provision`, { method: 'POST', body: JSON.stringify(request('http-gw')) })).json()) as { status: string; credentialsValue: string };
    assert.equal(http.status, 'SUCCESS');
    assert.equal(await gatewayConnect(http.credentialsValue, 'http-sub'), 0);

    const provisioner = await mqtt.connectAsync(`mqtt://127.0.0.1:${server.mqttPort}`, { username: 'provision', reconnectPeriod: 0 });
    clients.push(provisioner);
    await provisioner.subscribeAsync('/provision/response', { qos: 1 });
    const answer = new Promise<{ status: string; credentialsValue: string }>((resolve) => provisioner.once('message', (_t, p) => resolve(JSON.parse(p.toString()))));
    await provisioner.publishAsync('/provision/request', JSON.stringify(request('mqtt-gw')), { qos: 1 });
    const mqttAnswer = await answer;
    assert.equal(mqttAnswer.status, 'SUCCESS');
    assert.deepEqual((await server.core.devices.findByName(TENANT, 'mqtt-gw')).additionalInfo, { gateway: true });
    assert.equal(await gatewayConnect(mqttAnswer.credentialsValue, 'mqtt-sub'), 0);
  });
});
