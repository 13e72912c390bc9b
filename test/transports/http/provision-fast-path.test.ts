/**
 * The lean path of `POST /api/v1/provision` (src/transports/http/fast-provision-path.ts): every answer it gives is the
 * same, byte for byte (Date, error timestamps and the new device's id, name and token aside), as fastify's route
 * gives for the same request — the route is reached by adding an empty query string, which the lean path leaves to
 * fastify — across the outcome matrix of spec §4.1 and every error answer (400s, 429 + Retry-After, 503 +
 * Retry-After); requests it does not take still get fastify's answers. Also: it really is taken, the device is
 * committed before the 200, secrets never reach the log, and in a cluster the other node sees the device at once.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { connect } from 'node:net';
import { DependencyUnavailableError } from '../../../src/core/errors.ts';
import { DEFAULT_THROTTLE_LIMITS, parseRateLimit } from '../../../src/core/throttle/index.ts';
import { skipUnlessPostgres, startPostgres, type TestPostgres } from '../../support/postgres.ts';
import { skipUnlessRedis, startRedis, type TestRedis } from '../../support/redis.ts';
import { createDevice, provisioningProfile, randomId, startTestServer, TENANT, type TestServer } from './http-support.ts';

const PROVISION_LIMIT = parseRateLimit(DEFAULT_THROTTLE_LIMITS.provisionFailuresPerSource)[0]!;

/** Sends `request` on a new connection and returns the whole raw response (one response, Content-Length framed). */
function rawExchange(port: number, request: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1');
    let data = '';
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`no complete response within 30 s; got ${JSON.stringify(data)}`));
    }, 30_000);
    socket.setEncoding('latin1');
    socket.on('data', (chunk: string) => {
      data += chunk;
      const end = data.indexOf('\r\n\r\n');
      if (end < 0) return;
      const length = Number(/\r\ncontent-length: (\d+)/i.exec(data.slice(0, end))?.[1] ?? NaN);
      if (data.length >= end + 4 + length) {
        clearTimeout(timer);
        socket.destroy();
        resolve(data);
      }
    });
    socket.on('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    socket.write(request, 'latin1');
  });
}

/** A raw request to `path` with `body`; `contentType` null sends none. */
function rawRequest(path: string, body: string, contentType: string | null = 'application/json', method = 'POST'): string {
  const type = contentType === null ? '' : `Content-Type: ${contentType}\r\n`;
  return `${method} ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\n${type}Content-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`;
}

/** The response with what changes by the moment blanked: Date, the error timestamp, a new device's id, name and token. */
function normalized(response: string): string {
  return response
    .replace(/\r\nDate: [^\r]*/i, '\r\nDate: -')
    .replace(/"timestamp":\d+/, '"timestamp":0')
    .replace(/"(credentialsValue|deviceId|deviceName)":"[^"]*"/g, (_m, key: string) => `"${key}":"-"`);
}

const body = (fields: Record<string, unknown>) => JSON.stringify(fields);

describe('HTTP provisioning lean path', () => {
  let server: TestServer;
  let port: number;
  let allow: Awaited<ReturnType<typeof provisioningProfile>>;
  let check: Awaited<ReturnType<typeof provisioningProfile>>;
  let disabled: Awaited<ReturnType<typeof provisioningProfile>>;

  before(async () => {
    server = await startTestServer({ logLevel: 'debug', metrics: 'on' });
    port = server.ports.http;
    allow = await provisioningProfile(server, 'ALLOW_CREATE_NEW_DEVICES');
    check = await provisioningProfile(server, 'CHECK_PRE_PROVISIONED_DEVICES');
    disabled = await provisioningProfile(server, 'DISABLED', randomId(), randomId());
  });
  after(() => server.close());

  /** Sends the request to the lean path and to fastify's route; asserts equal answers and returns the lean one. */
  async function sameAnswer(text: string, contentType: string | null = 'application/json', second = text): Promise<string> {
    const fast = normalized(await rawExchange(port, rawRequest('/api/v1/provision', text, contentType)));
    const routed = normalized(await rawExchange(port, rawRequest('/api/v1/provision?', second, contentType)));
    assert.equal(fast, routed);
    return fast;
  }

  test('a new device: 200 with the §5.1 body, the same bytes as the route, the device committed before the answer', async () => {
    const [first, second] = [`fp-${randomId()}`, `fp-${randomId()}`]; // same length: same Content-Length
    const fields = { provisionDeviceKey: allow.key, provisionDeviceSecret: allow.secret };
    const answer = await sameAnswer(body({ deviceName: first, ...fields }), 'application/json', body({ deviceName: second, ...fields }));
    assert.match(answer, /^HTTP\/1\.1 200 OK\r\n/);
    assert.match(answer, /\r\ncontent-type: application\/json; charset=utf-8\r\n/i);
    assert.match(answer, /\r\n\r\n\{"credentialsValue":"-","credentialsType":"ACCESS_TOKEN","status":"SUCCESS","deviceId":"-","deviceName":"-"\}$/);
    for (const name of [first, second]) assert.ok(await server.core.devices.findByName(TENANT, name), `${name} not stored`);
    // The lean path answered the request without a query string: its debug lines carry its own request ids.
    assert.ok(server.logLines.some((line) => line.includes('"reqId":"req-p') && line.includes('request completed')), 'lean path not taken');
    assert.ok(!server.logLines.some((line) => line.includes(allow.secret)), 'a log line holds the provision secret');
  });

  test('the outcome matrix: NOT_FOUND and FAILURE answers are the same bytes as the route', async () => {
    const good = { provisionDeviceKey: allow.key, provisionDeviceSecret: allow.secret };
    const notFound = await sameAnswer(body({ ...good, deviceName: `x-${randomId()}`, provisionDeviceKey: randomId() }));
    assert.match(notFound, /^HTTP\/1\.1 200 OK\r\n[\s\S]*\{"errorMsg":"Provision data was not found!","status":"NOT_FOUND","reason":"BAD_KEY_OR_SECRET"\}$/);
    await sameAnswer(body({ ...good, provisionDeviceSecret: `${allow.secret}x` }));
    await sameAnswer(body({ ...good, provisionDeviceKey: '' }));
    const emptyName = await sameAnswer(body({ ...good, deviceName: '   ' }));
    assert.match(emptyName, /"reason":"EMPTY_NAME"\}$/);
    const { device } = await createDevice(server, `taken-${randomId()}`);
    const exists = await sameAnswer(body({ ...good, deviceName: device.name }));
    assert.match(exists, /\{"errorMsg":"Failed to provision device!","status":"FAILURE","reason":"DEVICE_EXISTS"\}$/);
    const taken = await createDevice(server, `token-${randomId()}`);
    const inUse = await sameAnswer(body({ ...good, deviceName: `t-${randomId()}`, token: taken.token }), 'application/json', body({ ...good, deviceName: `t-${randomId()}`, token: taken.token }));
    assert.match(inUse, /"reason":"CREDENTIALS_IN_USE"\}$/);
    const preProvisioned = await sameAnswer(body({ provisionDeviceKey: check.key, provisionDeviceSecret: check.secret, deviceName: `none-${randomId()}` }));
    assert.match(preProvisioned, /"status":"FAILURE","reason":"NOT_PRE_PROVISIONED"\}$/);
    const off = await sameAnswer(body({ provisionDeviceKey: disabled.key, provisionDeviceSecret: disabled.secret, deviceName: `off-${randomId()}` }));
    assert.match(off, /"status":"NOT_FOUND"/);
  });

  test('malformed requests: the same 400 ThingsBoard errors as the route, without the secret in the log', async () => {
    const garbage = await sameAnswer('{"provisionDeviceKey":');
    assert.match(garbage, /^HTTP\/1\.1 400 Bad Request\r\n/);
    assert.match(garbage, /\r\ncontent-type: application\/json; charset=utf-8\r\n/i);
    assert.match(garbage, /"status":400,"message":"[^"]+","errorCode":\d+,"timestamp":0\}$/);
    await sameAnswer('[1,2]');
    await sameAnswer('null');
    await sameAnswer('not json at all', 'text/plain');
    await sameAnswer(body({ provisionDeviceKey: allow.key }));
    await sameAnswer(body({ provisionDeviceKey: allow.key, provisionDeviceSecret: 'guessed-secret-xyz', credentialsType: 'NO_SUCH_TYPE' }));
    await sameAnswer(body({ provisionDeviceKey: allow.key, provisionDeviceSecret: { nested: 'guessed-secret-xyz' } }));
    assert.ok(!server.logLines.some((line) => line.includes('guessed-secret-xyz')), 'a log line holds a request secret');
  });

  test('requests the lean path leaves to fastify still get its answers', async () => {
    const good = { provisionDeviceKey: allow.key, provisionDeviceSecret: allow.secret };
    const untyped = await rawExchange(port, rawRequest('/api/v1/provision', body({ ...good, deviceName: `u-${randomId()}` }), null));
    assert.match(untyped, /^HTTP\/1\.1 200 [\s\S]*"status":"SUCCESS"/);
    const invalidType = await rawExchange(port, rawRequest('/api/v1/provision', body(good), 'no/such/type;;'));
    assert.match(invalidType, /^HTTP\/1\.1 415 /);
    const empty = await rawExchange(port, rawRequest('/api/v1/provision', ''));
    assert.match(empty, /^HTTP\/1\.1 400 /);
    const big = 'x'.repeat(server.config.httpMaxPayload + 1);
    const tooLarge = await rawExchange(port, rawRequest('/api/v1/provision', big));
    assert.match(tooLarge, /^HTTP\/1\.1 413 /);
    const get = await rawExchange(port, rawRequest('/api/v1/provision', '', null, 'GET'));
    assert.match(get, /^HTTP\/1\.1 404 /);
  });

  test('the provisioning throttle: failures, then 429 + Retry-After, the same bytes as the route', async () => {
    const exempt = [...server.core.throttle.exempt];
    server.core.throttle.exempt.clear(); // loopback is exempt by default
    server.core.throttle.clear();
    try {
      for (let i = 0; i < PROVISION_LIMIT.capacity; i++) {
        const answer = await rawExchange(port, rawRequest('/api/v1/provision', body({ provisionDeviceKey: allow.key, provisionDeviceSecret: `guess-${i}` })));
        assert.match(answer, /"status":"NOT_FOUND"/);
      }
      const blocked = await sameAnswer(body({ provisionDeviceKey: allow.key, provisionDeviceSecret: allow.secret, deviceName: `late-${randomId()}` }));
      assert.match(blocked, /^HTTP\/1\.1 429 /);
      assert.match(blocked, /\r\nretry-after: \d+\r\ncontent-type: application\/json; charset=utf-8\r\n/i);
      assert.match(blocked, /\{"errorMsg":"Failed to provision device!","status":"FAILURE","reason":"RATE_LIMITED"\}$/);
    } finally {
      server.core.throttle.clear();
      for (const address of exempt) server.core.throttle.exempt.add(address);
    }
  });

  test('while the database is down: 503 + Retry-After, the same bytes as the route, nothing created; SUCCESS once it is back', async () => {
    // Fault injection: every transaction of the store fails as a database that went away does.
    const store = server.store as unknown as { transaction: (...args: unknown[]) => Promise<unknown> };
    const real = store.transaction;
    store.transaction = () => Promise.reject(new DependencyUnavailableError('database', 'injected by the test', 'none'));
    const name = `down-${randomId()}`;
    try {
      const down = await sameAnswer(body({ provisionDeviceKey: allow.key, provisionDeviceSecret: allow.secret, deviceName: name }));
      assert.match(down, /^HTTP\/1\.1 503 /);
      assert.match(down, /\r\nretry-after: \d+\r\n/);
    } finally {
      store.transaction = real;
    }
    assert.equal(await server.store.findDeviceByName(TENANT, name), undefined);
    let answer = '';
    for (let i = 0; i < 600 && !/^HTTP\/1\.1 200 /.test(answer); i++) {
      answer = await rawExchange(port, rawRequest('/api/v1/provision', body({ provisionDeviceKey: allow.key, provisionDeviceSecret: allow.secret, deviceName: name })));
      if (!/^HTTP\/1\.1 200 /.test(answer)) await new Promise((resolve) => setTimeout(resolve, 50));
    }
    assert.match(answer, /"status":"SUCCESS"/);
    assert.ok(await server.store.findDeviceByName(TENANT, name));
  });
});

describe('HTTP provisioning lean path in a cluster (PostgreSQL + Redis, two nodes)', { skip: skipUnlessPostgres() || skipUnlessRedis() }, () => {
  let pg: TestPostgres | undefined;
  let redis: TestRedis | undefined;
  let a: TestServer | undefined;
  let b: TestServer | undefined;
  before(async () => {
    [pg, redis] = await Promise.all([startPostgres(), startRedis()]);
    const database = await pg.createDatabase();
    a = await startTestServer({ database, bus: redis.url, logLevel: 'debug' });
    b = await startTestServer({ database, bus: redis.url, logLevel: 'warn' });
  });
  after(async () => {
    await a?.close();
    await b?.close();
    await Promise.all([pg?.stop(), redis?.stop()]);
  });

  test('a device provisioned by the lean path of one node is stored for the other, which takes its token; its name is then taken on both', async () => {
    const profile = await provisioningProfile(a!, 'ALLOW_CREATE_NEW_DEVICES');
    const name = `cluster-${randomId()}`;
    const request = body({ deviceName: name, provisionDeviceKey: profile.key, provisionDeviceSecret: profile.secret });
    const answer = await rawExchange(a!.ports.http, rawRequest('/api/v1/provision', request));
    assert.match(answer, /^HTTP\/1\.1 200 /);
    assert.ok(a!.logLines.some((line) => line.includes('"reqId":"req-p')), 'lean path not taken');
    const token = /"credentialsValue":"([^"]+)"/.exec(answer)?.[1];
    assert.ok(token);
    const telemetry = await rawExchange(b!.ports.http, rawRequest(`/api/v1/${token}/telemetry`, '{"provisioned":1}'));
    assert.match(telemetry, /^HTTP\/1\.1 200 /);
    // Within DESIGN 3's retry window a repeat is a concurrent request: the name is taken, on either node.
    const again = await rawExchange(b!.ports.http, rawRequest('/api/v1/provision', request));
    assert.match(again, /"status":"FAILURE","reason":"DEVICE_EXISTS"/);
  });
});
