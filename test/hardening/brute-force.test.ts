/**
 * Brute-force protection over the real transports (DESIGN 6, issue 7 §1): failed provisioning attempts and failed
 * device authentications are counted per source address; past the limit every transport answers at once, without a
 * database lookup — HTTP 429 + Retry-After, CoAP 4.29 + Max-Age, MQTT `reason: RATE_LIMITED` / CONNACK 0x97 or 5.
 * The server runs with default limits, so the tests read them from DEFAULT_THROTTLE_LIMITS; loopback, exempt by
 * default, is made an ordinary source.
 */
import assert from 'node:assert/strict';
import { after, before, beforeEach, describe, it } from 'node:test';
import { DEFAULT_THROTTLE_LIMITS, parseRateLimit } from '../../src/core/throttle/index.ts';
import { createDevice, provisioningProfile, randomId, type TestServer } from '../transports/http/http-support.ts';
import { startTestServer } from '../support/harness.ts';
import { WireClient } from '../transports/mqtt/wire-client.ts';
import { coapRequest, jsonBody } from '../transports/coap/support.ts';

const PROVISION_LIMIT = parseRateLimit(DEFAULT_THROTTLE_LIMITS.provisionFailuresPerSource)[0]!;
const AUTH_LIMIT = parseRateLimit(DEFAULT_THROTTLE_LIMITS.authFailuresPerSource)[0]!;
const WINDOW_SECONDS = String(PROVISION_LIMIT.windowMs / 1000);

/** Counts calls of one store method (to show a throttled request never reaches the database). */
function countCalls(server: TestServer, method: 'findProfileByProvisionKey' | 'findCredentialsById'): () => number {
  const store = server.store as unknown as Record<string, (...args: unknown[]) => unknown>;
  const original = store[method]!.bind(server.store);
  let calls = 0;
  store[method] = (...args: unknown[]) => {
    calls++;
    return original(...args);
  };
  return () => calls;
}

async function httpProvision(server: TestServer, body: object): Promise<{ status: number; retryAfter: string | null; json: any }> {
  const res = await fetch(`${server.httpUrl}/api/v1/provision`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
  return { status: res.status, retryAfter: res.headers.get('retry-after'), json: await res.json() };
}

/** Provisions over an MQTT provision session and returns the parsed `/provision/response`. */
async function mqttProvision(server: TestServer, body: object): Promise<any> {
  const client = await WireClient.tcp(server.mqttPort, 4);
  try {
    assert.equal((await client.connect({ username: 'provision', clientId: `prov-${randomId()}` })).returnCode, 0);
    await client.publish('/provision/request', JSON.stringify(body), 1);
    const response = await client.next('publish');
    return JSON.parse(String(response.payload));
  } finally {
    client.destroy();
  }
}

describe('provisioning brute force: failures per source address', () => {
  let server: TestServer;
  let good: { provisionDeviceKey: string; provisionDeviceSecret: string };
  before(async () => {
    server = await startTestServer({ logLevel: 'error' });
    server.core.throttle.exempt.clear(); // every test client is on loopback, which is exempt by default
    const profile = await provisioningProfile(server, 'ALLOW_CREATE_NEW_DEVICES');
    good = { provisionDeviceKey: profile.key, provisionDeviceSecret: profile.secret };
  });
  beforeEach(() => server.core.throttle.clear());
  after(() => server.close());

  it(`answers the first ${PROVISION_LIMIT.capacity} wrong secrets normally, then 429 with Retry-After without a database lookup`, async () => {
    for (let i = 0; i < PROVISION_LIMIT.capacity; i++) {
      const answer = await httpProvision(server, { ...good, provisionDeviceSecret: `guess-${i}` });
      assert.equal(answer.status, 200);
      assert.deepEqual(answer.json, { errorMsg: 'Provision data was not found!', status: 'NOT_FOUND', reason: 'BAD_KEY_OR_SECRET' });
    }
    const lookups = countCalls(server, 'findProfileByProvisionKey');
    const blocked = await httpProvision(server, { ...good, deviceName: 'right-secret-too-late' });
    assert.equal(blocked.status, 429);
    assert.equal(blocked.retryAfter, WINDOW_SECONDS);
    // ThingsBoard-valid body (spec §5.1): FAILURE with its text, plus fleetgate's reason (DESIGN 2).
    assert.deepEqual(blocked.json, { errorMsg: 'Failed to provision device!', status: 'FAILURE', reason: 'RATE_LIMITED' });
    assert.equal(lookups(), 0, 'the throttled request never reached the store');
  });

  it('blocks the same source on MQTT and CoAP too (one decision in core)', async () => {
    for (let i = 0; i < PROVISION_LIMIT.capacity; i++) {
      const answer = await mqttProvision(server, { ...good, provisionDeviceSecret: `guess-${i}` });
      assert.equal(answer.reason, 'BAD_KEY_OR_SECRET');
    }
    assert.deepEqual(await mqttProvision(server, { ...good, deviceName: 'mqtt-late' }), { errorMsg: 'Failed to provision device!', status: 'FAILURE', reason: 'RATE_LIMITED' });
    const coap = await coapRequest(server.coapPort, '/api/v1/provision', { payload: JSON.stringify({ ...good, deviceName: 'coap-late' }) });
    assert.equal(coap.code, '4.29');
    assert.equal(jsonBody(coap).reason, 'RATE_LIMITED');
    assert.equal(coap.res.headers['Max-Age'], Number(WINDOW_SECONDS), 'RFC 8516: Max-Age says when to retry');
  });

  it('does not count a device’s own mistakes (name taken, empty name) as guesses', async () => {
    await httpProvision(server, { ...good, deviceName: 'taken-name' });
    for (let i = 0; i < PROVISION_LIMIT.capacity + 2; i++) {
      const answer = await httpProvision(server, { ...good, deviceName: i % 2 ? 'taken-name' : '   ' });
      assert.equal(answer.status, 200);
      assert.equal(answer.json.status, 'FAILURE');
      assert.notEqual(answer.json.reason, 'RATE_LIMITED');
    }
    assert.equal((await httpProvision(server, { ...good, deviceName: 'still-fine' })).json.status, 'SUCCESS');
  });

  it('lets the source in again once the block is lifted', async () => {
    for (let i = 0; i < PROVISION_LIMIT.capacity; i++) await httpProvision(server, { ...good, provisionDeviceSecret: `x${i}` });
    assert.equal((await httpProvision(server, { ...good, deviceName: 'after-block' })).status, 429);
    server.core.throttle.clear();
    assert.equal((await httpProvision(server, { ...good, deviceName: 'after-block' })).json.status, 'SUCCESS');
  });
});

describe('device authentication brute force: failures per source address', () => {
  let server: TestServer;
  let token: string;
  before(async () => {
    server = await startTestServer({ logLevel: 'error' });
    server.core.throttle.exempt.clear(); // every test client is on loopback, which is exempt by default
    token = (await createDevice(server, `auth-${randomId()}`)).token;
  });
  beforeEach(() => server.core.throttle.clear());
  after(() => server.close());

  /** Fails AUTH_LIMIT times, half on MQTT 3.1.1 (CONNACK 5), half on HTTP (401). */
  async function failUntilLimit(): Promise<void> {
    for (let i = 0; i < AUTH_LIMIT.capacity; i++) {
      if (i % 2 === 0) {
        const client = await WireClient.tcp(server.mqttPort, 4);
        assert.equal((await client.connect({ username: `wrong-${i}` })).returnCode, 5);
        client.destroy();
      } else {
        const res = await fetch(`${server.httpUrl}/api/v1/wrong-${i}/telemetry`, { method: 'POST', body: '{"t":1}', headers: { 'content-type': 'application/json' } });
        assert.equal(res.status, 401);
      }
    }
  }

  it('refuses even a valid token past the limit: HTTP 429 + Retry-After, no credentials lookup', async () => {
    await failUntilLimit();
    const lookups = countCalls(server, 'findCredentialsById');
    const res = await fetch(`${server.httpUrl}/api/v1/${token}/telemetry`, { method: 'POST', body: '{"t":1}', headers: { 'content-type': 'application/json' } });
    assert.equal(res.status, 429);
    assert.equal(res.headers.get('retry-after'), String(AUTH_LIMIT.windowMs / 1000));
    assert.equal(((await res.json()) as { errorCode: number }).errorCode, 33, "ThingsBoard's TOO_MANY_REQUESTS errorCode");
    assert.equal(lookups(), 0);
  });

  it('MQTT 5: CONNACK 0x97 quota exceeded, then DISCONNECT 0x97', async () => {
    await failUntilLimit();
    const client = await WireClient.tcp(server.mqttPort, 5);
    assert.equal((await client.connect({ username: token })).reasonCode, 0x97);
    const rest = await client.waitClosed();
    assert.deepEqual(rest.map((p) => [p.cmd, (p as { reasonCode?: number }).reasonCode]), [['disconnect', 0x97]]);
  });

  it('MQTT 3.1.1: CONNACK 5 not authorized; CoAP: 4.29 with Max-Age', async () => {
    await failUntilLimit();
    const client = await WireClient.tcp(server.mqttPort, 4);
    assert.equal((await client.connect({ username: token })).returnCode, 5);
    client.destroy();
    const coap = await coapRequest(server.coapPort, `/api/v1/${token}/telemetry`, { payload: '{"t":1}' });
    assert.equal(coap.code, '4.29');
    assert.equal(coap.res.headers['Max-Age'], AUTH_LIMIT.windowMs / 1000);
  });

  it('counts nothing for successful logins', async () => {
    for (let i = 0; i < AUTH_LIMIT.capacity * 2; i++) {
      const client = await WireClient.tcp(server.mqttPort, 4);
      assert.equal((await client.connect({ username: token, clientId: `ok-${i}` })).returnCode, 0);
      client.destroy();
    }
    const res = await fetch(`${server.httpUrl}/api/v1/${token}/telemetry`, { method: 'POST', body: '{"t":1}', headers: { 'content-type': 'application/json' } });
    assert.equal(res.status, 200);
  });
});
