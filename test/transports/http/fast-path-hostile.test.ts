/**
 * Hostile and odd requests against the device API's lean path (src/transports/http/fast-device-path.ts), on real
 * sockets: URL forms it takes answer exactly as fastify's route does (the route is reached by adding an empty query
 * string), pipelined requests mixing the lean path and fastify are answered in order with every post stored, an upload
 * cut short stores nothing and leaves the server serving, and HEAD is left to fastify.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { connect } from 'node:net';
import { createDevice, randomId, startTestServer, type TestServer } from './http-support.ts';

/**
 * Writes `request` on a new connection and collects `count` responses (Content-Length framed; a HEAD response has no
 * body whatever its Content-Length).
 */
function exchange(port: number, request: string, count = 1, head = false): Promise<string[]> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1');
    let data = '';
    const responses: string[] = [];
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`${responses.length}/${count} responses within 30 s; got ${JSON.stringify(data)}`));
    }, 30_000);
    socket.setEncoding('latin1');
    socket.on('data', (chunk: string) => {
      data += chunk;
      for (;;) {
        const end = data.indexOf('\r\n\r\n');
        if (end < 0) return;
        const length = head ? 0 : Number(/\r\ncontent-length: (\d+)/i.exec(data.slice(0, end))?.[1] ?? NaN);
        if (data.length < end + 4 + length) return;
        responses.push(data.slice(0, end + 4 + length));
        data = data.slice(end + 4 + length);
        if (responses.length === count) {
          clearTimeout(timer);
          socket.destroy();
          resolve(responses);
          return;
        }
      }
    });
    socket.on('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    socket.write(request, 'latin1');
  });
}

function postRequest(path: string, body: string): string {
  return `POST ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`;
}

/** The response with what changes by the moment blanked: the Date header and the error body's timestamp. */
function normalized(response: string): string {
  return response.replace(/\r\nDate: [^\r]*/i, '\r\nDate: -').replace(/"timestamp":\d+/, '"timestamp":0');
}

describe('HTTP device API lean path: hostile and odd requests', () => {
  let server: TestServer;
  let token: string;
  let deviceId: string;
  let port: number;

  before(async () => {
    server = await startTestServer({ logLevel: 'debug' });
    const created = await createDevice(server, `fast-hostile-${randomId()}`);
    token = created.token;
    deviceId = created.device.id;
    port = server.ports.http;
  });
  after(() => server.close());

  test('tokens of odd but legal characters get the route\'s answer, byte for byte', async () => {
    for (const odd of ['.', '..', 'a:b', "!$&'()*+,=", '@~', 'x'.repeat(512)]) {
      const [fast] = await exchange(port, postRequest(`/api/v1/${odd}/telemetry`, '{"a":1}'));
      const [routed] = await exchange(port, postRequest(`/api/v1/${odd}/telemetry?`, '{"a":1}'));
      assert.equal(normalized(fast!), normalized(routed!), `token ${JSON.stringify(odd.slice(0, 20))}`);
      assert.match(fast!, /^HTTP\/1\.1 401 /);
    }
    // Forms the lean path leaves to fastify, answered as fastify answers them with a query string too.
    for (const path of [`//api/v1/${token}/telemetry`, `/api/v1/${token}/telemetry/`, `/api/v1/${token}%2Fx/telemetry`, `/API/v1/${token}/telemetry`, `/api/v1//${token}/telemetry`, `http://127.0.0.1/api/v1/${token}/telemetry`]) {
      const [plain] = await exchange(port, postRequest(path, '{"a":1}'));
      const [query] = await exchange(port, postRequest(`${path}?`, '{"a":1}'));
      assert.equal(normalized(plain!).replace(/\\?\?/, ''), normalized(query!).replace(/\\?\?/, ''), path.replace(token, '[token]'));
    }
    // Logged (404 at debug) without the token, whatever the form.
    assert.ok(!server.logLines.some((line) => line.includes(token)), 'a log line holds the device token');
  });

  test('pipelined posts, lean and routed mixed, are answered in order and all stored', async () => {
    const requests = [
      postRequest(`/api/v1/${token}/telemetry`, '{"ts":1001,"values":{"piped":1}}'),
      postRequest(`/api/v1/${token}/telemetry?`, '{"ts":1002,"values":{"piped":2}}'),
      postRequest(`/api/v1/${token}/attributes`, '{"pipedAttribute":3}'),
      postRequest(`/api/v1/no-such-${randomId()}/telemetry`, '{"piped":4}'),
      postRequest(`/api/v1/${token}/telemetry`, '{"ts":1005,"values":{"piped":5}}'),
    ];
    const answers = await exchange(port, requests.join(''), requests.length);
    assert.deepEqual(answers.map((a) => /^HTTP\/1\.1 (\d+)/.exec(a)?.[1]), ['200', '200', '200', '401', '200']);
    const stored = await server.core.timeseries.get(deviceId, { keys: ['piped'], startTs: 1000, endTs: 1010, limit: 10, orderBy: 'ASC' });
    assert.deepEqual(stored.piped?.map((p) => p.ts), [1001, 1002, 1005]);
    const attributes = await server.core.attributes.getForDevice(deviceId, ['pipedAttribute'], undefined);
    assert.deepEqual((attributes as { client?: Record<string, unknown> }).client, { pipedAttribute: 3 });
  });

  test('an upload cut short stores nothing and the server keeps serving', async () => {
    const socket = connect(port, '127.0.0.1');
    socket.on('error', () => {});
    await new Promise<void>((resolve) => socket.once('connect', () => resolve()));
    socket.write(`POST /api/v1/${token}/telemetry HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{"cutShort":`);
    // The server has the headers and part of the body once the lean path logs nothing yet; wait for the bytes to leave.
    await new Promise<void>((resolve) => socket.write('', () => resolve()));
    socket.destroy();
    const [answer] = await exchange(port, postRequest(`/api/v1/${token}/telemetry`, '{"afterCut":1}'));
    assert.match(answer!, /^HTTP\/1\.1 200 /);
    assert.deepEqual(Object.keys(await server.core.timeseries.latest(deviceId, ['cutShort', 'afterCut'])), ['afterCut']);
  });

  test('Expect: 100-continue: the body follows the interim answer and is stored before the 200', async () => {
    const socket = connect(port, '127.0.0.1');
    socket.setEncoding('latin1');
    let data = '';
    socket.on('data', (chunk: string) => (data += chunk));
    socket.on('error', () => {});
    try {
      const body = '{"ts":2001,"values":{"continued":1}}';
      socket.write(`POST /api/v1/${token}/telemetry HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\nExpect: 100-continue\r\n\r\n`);
      const deadline = Date.now() + 30_000;
      while (!data.includes('100 Continue') && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
      assert.match(data, /^HTTP\/1\.1 100 Continue\r\n\r\n$/);
      socket.write(body);
      while (!/\r\n\r\nHTTP\/1\.1 \d+[^]*\r\n\r\n/.test(data) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
      assert.match(data, /\r\n\r\nHTTP\/1\.1 200 OK\r\n/);
      assert.deepEqual((await server.core.timeseries.latest(deviceId, ['continued'])).continued?.[0]?.ts, 2001);
    } finally {
      socket.destroy();
    }
  });

  test('HEAD and GET on the post paths get fastify\'s answers', async () => {
    for (const method of ['HEAD', 'GET', 'PUT']) {
      const head = method === 'HEAD';
      const [plain] = await exchange(port, `${method} /api/v1/${token}/telemetry HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n`, 1, head);
      const [query] = await exchange(port, `${method} /api/v1/${token}/telemetry? HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n`, 1, head);
      assert.equal(normalized(plain!).replace(/\\?\?/, ''), normalized(query!).replace(/\\?\?/, ''), method);
      assert.match(plain!, /^HTTP\/1\.1 404 /);
    }
  });
});

describe('HTTP device API lean path under the connection limit', () => {
  let server: TestServer;
  before(async () => (server = await startTestServer({ logLevel: 'warn', httpMaxConnections: 2 })));
  after(() => server.close());

  test('a post on a connection beyond httpMaxConnections gets the 503 and is not stored', async () => {
    const { token, device } = await createDevice(server, `fast-limit-${randomId()}`);
    const port = server.ports.http;
    const held = [connect(port, '127.0.0.1'), connect(port, '127.0.0.1')];
    try {
      await Promise.all(held.map((s) => new Promise((resolve) => s.once('connect', resolve))));
      const [refused] = await exchange(port, postRequest(`/api/v1/${token}/telemetry`, '{"overLimit":1}'));
      assert.match(refused!, /^HTTP\/1\.1 503 /);
      assert.match(refused!, /at most 2 \(httpMaxConnections\)/);
      assert.deepEqual(await server.core.timeseries.latest(device.id, ['overLimit']), {});
    } finally {
      for (const s of held) s.destroy();
    }
  });
});

describe('HTTP device API lean path and a body that trickles in', () => {
  let server: TestServer;
  before(async () => (server = await startTestServer({ logLevel: 'warn', httpHeadersTimeoutMs: 1000, httpRequestTimeoutMs: 1000 })));
  after(() => server.close());

  test('a body not received within httpRequestTimeoutMs gets the 408 naming it; nothing is stored', async () => {
    const { token, device } = await createDevice(server, `fast-slow-${randomId()}`);
    const socket = connect(server.ports.http, '127.0.0.1');
    socket.setEncoding('latin1');
    let data = '';
    let closed = false;
    socket.on('data', (chunk: string) => (data += chunk));
    socket.on('close', () => (closed = true));
    socket.on('error', () => {});
    socket.write(`POST /api/v1/${token}/telemetry HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: 50\r\n\r\n{"slow":`);
    const deadline = Date.now() + 30_000;
    while (!closed && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    socket.destroy();
    assert.match(data, /^HTTP\/1\.1 408 /);
    assert.match(data, /Request not received within 1000 ms \(httpRequestTimeoutMs\)/);
    assert.deepEqual(await server.core.timeseries.latest(device.id, ['slow']), {});
  });
});
