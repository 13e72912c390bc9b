/**
 * The device API's lean path for telemetry and attribute posts (src/transports/http/fast-device-path.ts): every
 * answer it gives is the same, byte for byte (Date and error timestamps aside), as fastify's route gives for the same
 * request — the route is reached by adding an empty query string, which the lean path leaves to fastify — and the
 * requests it does not take still get fastify's answers. Also: it really is taken (its debug lines), it stores the
 * data before the 200, 401s still count as rejections and log an auth failure, the throttle still answers 429, a
 * database outage still answers 503 + Retry-After, and in a cluster the other node sees the data.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { connect } from 'node:net';
import { DependencyUnavailableError } from '../../../src/core/errors.ts';
import { DEFAULT_THROTTLE_LIMITS, parseRateLimit } from '../../../src/core/throttle/index.ts';
import { skipUnlessPostgres, startPostgres, type TestPostgres } from '../../support/postgres.ts';
import { skipUnlessRedis, startRedis, type TestRedis } from '../../support/redis.ts';
import { createDevice, randomId, startTestServer, TEST_ACTOR, type TestServer } from './http-support.ts';

const AUTH_LIMIT = parseRateLimit(DEFAULT_THROTTLE_LIMITS.authFailuresPerSource)[0]!;

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

/** A raw POST to `path` with `body`; `contentType` null sends none. */
function postRequest(path: string, body: string, contentType: string | null = 'application/json', extra = ''): string {
  const type = contentType === null ? '' : `Content-Type: ${contentType}\r\n`;
  return `POST ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\n${type}Content-Length: ${Buffer.byteLength(body)}\r\n${extra}\r\n${body}`;
}

/** The response with what changes by the moment blanked: the Date header and the error body's timestamp. */
function normalized(response: string): string {
  return response.replace(/\r\nDate: [^\r]*/i, '\r\nDate: -').replace(/"timestamp":\d+/, '"timestamp":0');
}

describe('HTTP device API lean path', () => {
  let server: TestServer;
  let token: string;
  let deviceId: string;
  let port: number;

  before(async () => {
    server = await startTestServer({ logLevel: 'debug', metrics: 'on' });
    const created = await createDevice(server, `fast-${randomId()}`);
    token = created.token;
    deviceId = created.device.id;
    port = server.ports.http;
  });
  after(() => server.close());

  /** Sends the request to the lean path and to fastify's route; asserts equal answers and returns the lean one. */
  async function sameAnswer(feature: string, body: string, contentType: string | null = 'application/json', who = token): Promise<string> {
    const fast = normalized(await rawExchange(port, postRequest(`/api/v1/${who}/${feature}`, body, contentType)));
    const routed = normalized(await rawExchange(port, postRequest(`/api/v1/${who}/${feature}?`, body, contentType)));
    assert.equal(fast, routed);
    return fast;
  }

  test('a stored post: 200 with an empty body, the same bytes as the route, data committed before the answer', async () => {
    const answer = await sameAnswer('telemetry', '{"fastKey":21.5,"on":true}');
    assert.match(answer, /^HTTP\/1\.1 200 OK\r\n/);
    assert.match(answer, /\r\ncontent-length: 0\r\n/i);
    const latest = await server.core.timeseries.latest(deviceId, ['fastKey']);
    assert.deepEqual(latest.fastKey?.[0]?.value, { type: 'DOUBLE', value: 21.5 });

    await sameAnswer('attributes', '{"fastAttribute":"x"}', 'text/plain');
    const attributes = await server.core.attributes.getForDevice(deviceId, ['fastAttribute'], undefined);
    assert.deepEqual((attributes as { client?: Record<string, unknown> }).client, { fastAttribute: 'x' });
    // The lean path answered the posts without a query string: its debug lines carry its own request ids.
    assert.ok(server.logLines.some((line) => line.includes('"reqId":"req-f') && line.includes('request completed')), 'lean path not taken');
    assert.ok(!server.logLines.some((line) => line.includes(token)), 'a log line holds the device token');
  });

  test('garbage, an unknown token, a JSON array of nothing: the same ThingsBoard errors as the route', async () => {
    const garbage = await sameAnswer('telemetry', '{"temperature":');
    assert.match(garbage, /^HTTP\/1\.1 400 Bad Request\r\n/);
    assert.match(garbage, /"status":400,"message":"[^"]+","errorCode":\d+,"timestamp":0\}$/);
    await sameAnswer('attributes', '[1,2');
    await sameAnswer('telemetry', 'not json at all', 'text/plain');
    await sameAnswer('attributes', '[]');
    const unknown = await sameAnswer('telemetry', '{"a":1}', 'application/json', `no-such-token-${randomId()}`);
    assert.match(unknown, /^HTTP\/1\.1 401 Unauthorized\r\n/);
  });

  test('requests the lean path leaves to fastify still get its answers', async () => {
    // No body (400 required body), no Content-Type, an invalid Content-Type (415), over the body limit (413).
    const empty = await rawExchange(port, postRequest(`/api/v1/${token}/telemetry`, ''));
    assert.match(empty, /^HTTP\/1\.1 400 /);
    assert.match(empty, /Required request body is missing/);
    const untyped = await rawExchange(port, postRequest(`/api/v1/${token}/telemetry`, '{"untyped":1}', null));
    assert.match(untyped, /^HTTP\/1\.1 200 /);
    const invalidType = await rawExchange(port, postRequest(`/api/v1/${token}/telemetry`, '{"a":1}', 'no/such/type;;'));
    assert.match(invalidType, /^HTTP\/1\.1 415 /);
    const big = 'x'.repeat(server.config.httpMaxPayload + 1);
    const tooLarge = await rawExchange(port, postRequest(`/api/v1/${token}/telemetry`, big));
    assert.match(tooLarge, /^HTTP\/1\.1 413 /);
    assert.match(tooLarge, new RegExp(`Payload size exceeds the limit of ${server.config.httpMaxPayload} bytes`));
    // GET of attributes and an escaped token go through the router as before.
    const escaped = await rawExchange(port, postRequest(`/api/v1/${encodeURIComponent(token).replace(/^./, (c) => `%${c.charCodeAt(0).toString(16)}`)}/telemetry`, '{"escaped":2}'));
    assert.match(escaped, /^HTTP\/1\.1 200 /);
    assert.deepEqual((await server.core.timeseries.latest(deviceId, ['escaped'])).escaped?.[0]?.value, { type: 'LONG', value: 2 });
  });

  test('a 401 on the lean path is counted as a rejection and logged as an auth failure without the token', async () => {
    const wrong = `wrong-${randomId()}`;
    const before = (await server.metrics!.render()).match(/fleetgate_rejected_connections_total\{transport="http",reason="UNAUTHORIZED"\} (\d+)/)?.[1] ?? '0';
    const answer = await rawExchange(port, postRequest(`/api/v1/${wrong}/telemetry`, '{"a":1}'));
    assert.match(answer, /^HTTP\/1\.1 401 /);
    const afterCount = (await server.metrics!.render()).match(/fleetgate_rejected_connections_total\{transport="http",reason="UNAUTHORIZED"\} (\d+)/)?.[1];
    assert.equal(Number(afterCount), Number(before) + 1);
    const failure = server.logLines.filter((line) => line.includes('"event":"auth_failure"')).at(-1);
    assert.ok(failure, 'no auth_failure line');
    assert.match(failure, /"url":"\/api\/v1\/\[token\]\/telemetry"/);
    assert.ok(!server.logLines.some((line) => line.includes(wrong)), 'a log line holds the wrong token');
  });

  test('the failed-authentication throttle still applies: wrong tokens, then 429 + Retry-After, the same bytes as the route', async () => {
    server.core.throttle.exempt.clear(); // loopback is exempt by default
    server.core.throttle.clear();
    try {
      for (let i = 0; i < AUTH_LIMIT.capacity; i++) {
        const answer = await rawExchange(port, postRequest(`/api/v1/wrong-${i}-${randomId()}/telemetry`, '{"a":1}'));
        assert.match(answer, /^HTTP\/1\.1 401 /);
      }
      const blocked = await sameAnswer('telemetry', '{"a":1}');
      assert.match(blocked, /^HTTP\/1\.1 429 /);
      assert.match(blocked, new RegExp(`\\r\\nretry-after: ${AUTH_LIMIT.windowMs / 1000}\\r\\n`));
    } finally {
      server.core.throttle.clear();
    }
  });

  test('while the database is down: 503 + Retry-After, the same bytes as the route, nothing acknowledged; 200 once it is back', async () => {
    // Fault injection: every write of the store fails as a database that went away does.
    const store = server.store as unknown as { writeBatch: (...args: unknown[]) => Promise<void> };
    const real = store.writeBatch;
    store.writeBatch = () => Promise.reject(new DependencyUnavailableError('database', 'injected by the test', 'none'));
    try {
      const down = await sameAnswer('telemetry', '{"outageKey":1}', 'text/plain;charset=UTF-8');
      assert.match(down, /^HTTP\/1\.1 503 /);
      assert.match(down, /\r\nretry-after: \d+\r\n/);
      assert.deepEqual(await server.core.timeseries.latest(deviceId, ['outageKey']), {});
    } finally {
      store.writeBatch = real;
    }
    let answer = '';
    for (let i = 0; i < 600 && !/^HTTP\/1\.1 200 /.test(answer); i++) {
      answer = await rawExchange(port, postRequest(`/api/v1/${token}/telemetry`, '{"outageKey":2}', 'text/plain;charset=UTF-8'));
      if (!/^HTTP\/1\.1 200 /.test(answer)) await new Promise((resolve) => setTimeout(resolve, 50));
    }
    assert.match(answer, /^HTTP\/1\.1 200 /);
    assert.deepEqual((await server.core.timeseries.latest(deviceId, ['outageKey'])).outageKey?.[0]?.value, { type: 'LONG', value: 2 });
  });
});

describe('HTTP device API lean path in a cluster (PostgreSQL + Redis, two nodes)', { skip: skipUnlessPostgres() || skipUnlessRedis() }, () => {
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

  test('a post answered by the lean path of one node is stored for the other; a deleted device is refused on both', async () => {
    const { token, device } = await createDevice(a!, `fast-cluster-${randomId()}`);
    const answer = await rawExchange(a!.ports.http, postRequest(`/api/v1/${token}/telemetry`, '{"clusterKey":7}'));
    assert.match(answer, /^HTTP\/1\.1 200 /);
    assert.ok(a!.logLines.some((line) => line.includes('"reqId":"req-f')), 'lean path not taken');
    assert.deepEqual((await b!.core.timeseries.latest(device.id, ['clusterKey'])).clusterKey?.[0]?.value, { type: 'LONG', value: 7 });
    const onB = await rawExchange(b!.ports.http, postRequest(`/api/v1/${token}/attributes`, '{"clusterAttribute":true}'));
    assert.match(onB, /^HTTP\/1\.1 200 /);
    // Both nodes have the token cached now; deleting the device on B must reach A's cache through the bus.
    await b!.core.devices.delete(device.tenantId, device.id, TEST_ACTOR);
    let refused = '';
    for (let i = 0; i < 200 && !/^HTTP\/1\.1 401 /.test(refused); i++) {
      refused = await rawExchange(a!.ports.http, postRequest(`/api/v1/${token}/telemetry`, '{"clusterKey":8}'));
      if (!/^HTTP\/1\.1 401 /.test(refused)) await new Promise((resolve) => setTimeout(resolve, 50));
    }
    assert.match(refused, /^HTTP\/1\.1 401 /);
  });
});
