/**
 * Bad input on the HTTP device API: every malformed request gets a 4xx with ThingsBoard's error JSON (DESIGN 5),
 * oversized bodies are refused without being read (spec §10), and the server keeps answering.
 */
import assert from 'node:assert/strict';
import { connect, type Socket } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { call, createDevice, post, provision, provisioningProfile, randomId, startTestServer, tbError, type TestServer } from './http-support.ts';

/** Sends raw bytes on a fresh connection and collects the reply until the server closes it (bounded). */
function rawExchange(server: TestServer, send: (socket: Socket) => void): Promise<string> {
  const port = Number(new URL(server.httpUrl).port);
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1');
    let reply = '';
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`no complete reply within 10 s; got ${JSON.stringify(reply.slice(0, 200))}`));
    }, 10_000);
    socket.on('data', (chunk) => (reply += chunk.toString('latin1')));
    // Writing the rest of a refused body may fail once the server closed; only the reply matters.
    socket.on('error', () => {});
    socket.on('close', () => {
      clearTimeout(timer);
      resolve(reply);
    });
    socket.on('connect', () => send(socket));
  });
}

function parseRaw(raw: string): { status: number; headers: string; body: any } {
  const [head = '', body = ''] = raw.split('\r\n\r\n');
  return { status: Number(head.split(' ')[1]), headers: head.toLowerCase(), body: body === '' ? undefined : JSON.parse(body) };
}

describe('malformed provisioning requests -> 400 with a JSON error (DESIGN 5; ThingsBoard: 500)', () => {
  let server: TestServer;
  let key: string;
  let secret: string;
  before(async () => {
    server = await startTestServer({ logLevel: 'warn' });
    ({ key, secret } = await provisioningProfile(server, 'ALLOW_CREATE_NEW_DEVICES'));
  });
  after(() => server.close());

  const cases: Array<[string, () => string]> = [
    ['malformed JSON', () => `{"provisionDeviceKey":"${key}",`],
    ['a JSON array', () => '[1,2]'],
    ['a JSON string', () => '"provision me"'],
    ['JSON null', () => 'null'],
    ['a JSON number', () => '42'],
    ['no provisionDeviceKey', () => JSON.stringify({ deviceName: 'x', provisionDeviceSecret: secret })],
    ['no provisionDeviceSecret', () => JSON.stringify({ deviceName: 'x', provisionDeviceKey: key })],
    ['provisionDeviceKey null (null = absent, so missing)', () => JSON.stringify({ provisionDeviceKey: null, provisionDeviceSecret: secret })],
    ['provisionDeviceSecret null', () => JSON.stringify({ provisionDeviceKey: key, provisionDeviceSecret: null })],
    ['an unknown credentialsType', () => JSON.stringify({ deviceName: 'x', provisionDeviceKey: key, provisionDeviceSecret: secret, credentialsType: 'FOO' })],
  ];
  for (const [what, body] of cases) {
    it(`${what} -> 400`, async () => {
      const answer = await provision(server, body());
      assert.equal(answer.status, 400, answer.text);
      const error = tbError(answer);
      assert.ok(error.errorCode === 31, `errorCode 31 (bad request params), got ${error.errorCode}`);
      assert.ok(!answer.text.includes(secret), 'the error does not echo the secret');
    });
  }

  it('an empty body -> 400 (spec §5.5)', async () => {
    for (const headers of [{}, { 'content-type': 'application/json' }] as Record<string, string>[]) {
      const answer = await call(server, '/api/v1/provision', { method: 'POST', headers });
      assert.equal(answer.status, 400, JSON.stringify(headers));
      tbError(answer);
    }
  });

  it('an unparseable Content-Type header -> 415 with the same JSON shape', async () => {
    const answer = await provision(server, JSON.stringify({ provisionDeviceKey: key, provisionDeviceSecret: secret }), { 'content-type': 'no-slash' });
    assert.equal(answer.status, 415);
    tbError(answer);
  });

  it('JSON null in optional fields is absent: the request succeeds (DESIGN 1)', async () => {
    const answer = await provision(server, { deviceName: `n-${randomId()}`, provisionDeviceKey: key, provisionDeviceSecret: secret, credentialsType: null, token: null });
    assert.equal(answer.json?.status, 'SUCCESS', answer.text);
  });
});

describe('device API requests with bad parts', () => {
  let server: TestServer;
  let token: string;
  before(async () => {
    server = await startTestServer({ logLevel: 'warn' });
    ({ token } = await createDevice(server, `bad-${randomId()}`));
  });
  after(() => server.close());

  it('an unknown token -> 401 on every device route (spec §8.3)', async () => {
    const routes: Array<[string, string, string?]> = [
      ['POST', 'telemetry', '{"a":1}'], ['POST', 'attributes', '{"a":1}'], ['GET', 'attributes'],
      ['GET', 'attributes/updates?timeout=1'], ['GET', 'rpc?timeout=1'], ['POST', 'rpc/1', '{}'], ['POST', 'rpc', '{"method":"getSessionLimits"}'],
    ];
    for (const [method, path, body] of routes) {
      const answer = await call(server, `/api/v1/not-a-token-${randomId()}/${path}`, { method, ...(body ? { body } : {}) });
      assert.equal(answer.status, 401, `${method} ${path}`);
      assert.equal(tbError(answer).errorCode, 10);
    }
  });

  it('telemetry or attributes that are not JSON -> 400', async () => {
    for (const feature of ['telemetry', 'attributes']) {
      const answer = await post(server, token, feature, '{"temperature":');
      assert.equal(answer.status, 400, `${feature}: ${answer.text}`);
      tbError(answer);
    }
  });

  it('an empty telemetry body -> 400', async () => {
    const answer = await call(server, `/api/v1/${token}/telemetry`, { method: 'POST' });
    assert.equal(answer.status, 400);
  });

  it('a non-integer RPC request id -> 400', async () => {
    for (const id of ['abc', '1.5', '99999999999']) {
      const answer = await post(server, token, `rpc/${id}`, '{}');
      assert.equal(answer.status, 400, id);
      tbError(answer);
    }
  });

  it('a long-poll timeout that is not a number -> 400', async () => {
    const answer = await call(server, `/api/v1/${token}/rpc?timeout=soon`);
    assert.equal(answer.status, 400);
  });

  it('an RPC reply over 65536 bytes -> 413 naming the limit (spec §10)', async () => {
    const answer = await post(server, token, 'rpc/1', JSON.stringify({ data: 'x'.repeat(65_536) }));
    assert.equal(answer.status, 413);
    assert.equal(tbError(answer).message, 'Payload size exceeds the limit of 65536 bytes');
  });

  it('an unknown route -> 404 JSON that does not repeat the token', async () => {
    const answer = await call(server, `/api/v1/${token}/nothing-here`);
    assert.equal(answer.status, 404);
    assert.ok(!answer.text.includes(token));
    tbError(answer);
  });

  it('a malformed URL -> 400 JSON that does not repeat the token', async () => {
    const raw = await rawExchange(server, (s) => s.end(`GET /api/v1/${token}/attributes/%E0%A4%A HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`));
    const reply = parseRaw(raw);
    assert.equal(reply.status, 400, raw);
    assert.ok(!raw.includes(token));
    assert.deepEqual(Object.keys(reply.body), ['status', 'message', 'errorCode', 'timestamp']);
  });

  it('a 60 MB body is refused with 413 before it is read, and the server answers afterwards', async () => {
    const limit = server.config.httpMaxPayload;
    // Only 64 KiB of the announced 60 MB are sent: a server that waited for the body would never answer.
    const raw = await rawExchange(server, (s) => {
      s.write(`POST /api/v1/${token}/telemetry HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: ${60 * 1024 * 1024}\r\n\r\n`);
      s.write(Buffer.alloc(64 * 1024, 0x20));
    });
    const reply = parseRaw(raw);
    assert.equal(reply.status, 413, raw.slice(0, 300));
    assert.ok(reply.headers.includes('connection: close'));
    assert.equal(reply.body.message, `Payload size exceeds the limit of ${limit} bytes`);
    assert.equal(reply.body.errorCode, 31);
    assert.equal((await post(server, token, 'telemetry', '{"after":1}')).status, 200, 'still serving');
  });

  it('a chunked body without Content-Length is cut off at the limit with 413', async () => {
    const limit = server.config.httpMaxPayload;
    const raw = await rawExchange(server, (s) => {
      s.write(`POST /api/v1/${token}/telemetry HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n`);
      const chunk = Buffer.alloc(256 * 1024, 0x20);
      // Twice the limit at most (bounded); the server answers once it has seen more than the limit.
      for (let sent = 0; sent <= 2 * limit; sent += chunk.length) s.write(`${chunk.length.toString(16)}\r\n${chunk.toString('latin1')}\r\n`);
    });
    assert.equal(parseRaw(raw).status, 413, raw.slice(0, 300));
    assert.equal((await post(server, token, 'telemetry', '{"after":2}')).status, 200, 'still serving');
  });
});
