/**
 * The socket front's connection handling (src/transports/http/socket-front.ts, front-connection.ts) on an HTTP app
 * with a lean route whose answers the test releases: the front (not node:http) serves the plain posts, answers stay
 * in request order when a connection is handed over to fastify mid-stream, node:http's 400 for garbage after a post
 * drops the post's answer as node:http alone does, the headers, request and keep-alive timeouts, the connection
 * limit, and a prompt drain on close (in-flight answers written, idle connections closed).
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { IncomingMessage } from 'node:http';
import { once } from 'node:events';
import { connect, type AddressInfo, type Socket } from 'node:net';
import { Writable } from 'node:stream';
import type { FastifyInstance } from 'fastify';
import { createLogger } from '../../../src/log.ts';
import { createHttpApp } from '../../../src/transports/http/app.ts';
import type { HttpLimits } from '../../../src/transports/http/admission.ts';
import { installLeanRoute, type LeanRequest } from '../../../src/transports/http/lean-route.ts';
import { client, normalized, rawPost, runScript } from './front-support.ts';

/** An app with the lean route `POST /lean` (answers held until released) and fastify's `GET /other`. */
async function leanApp(limits: Partial<HttpLimits> = {}, socketFront = true, answerAtOnce?: string) {
  const held: { body: string; release: () => void }[] = [];
  const seen: LeanRequest[] = [];
  const logger = createLogger('warn', new Writable({ write: (_c, _e, cb) => cb() }));
  const app: FastifyInstance = createHttpApp({ logger, bodyLimit: 1024, limits, socketFront });
  app.get('/other', async () => 'other');
  installLeanRoute(app, 1024, {
    name: 'test lean route',
    idPrefix: 't',
    match: (url) => (url === '/lean' ? true : undefined),
    async serve(req, _match, body) {
      seen.push(req);
      if (answerAtOnce !== undefined) return { status: 200, contentType: 'text/plain', body: answerAtOnce };
      await new Promise<void>((release) => held.push({ body: body.toString(), release }));
      return { status: 200, body: '' };
    },
  });
  await app.listen({ host: '127.0.0.1', port: 0 });
  const port = (app.server.address() as AddressInfo).port;
  return { app, port, held, seen };
}

async function until(condition: () => boolean, what: string): Promise<void> {
  const deadline = Date.now() + 30_000;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

const lean = (body: string, extra = ''): string => rawPost('/lean', body, `Content-Type: application/json\r\n${extra}`);

describe('HTTP socket front', () => {
  let server: Awaited<ReturnType<typeof leanApp>>;
  before(async () => {
    server = await leanApp({ headersTimeoutMs: 600, requestTimeoutMs: 900, keepAliveTimeoutMs: 400 });
  });
  after(async () => {
    for (const h of server.held) h.release();
    await server.app.close();
  });

  test('serves the plain post itself (no IncomingMessage), and node:http serves it when the front is off', async () => {
    const c = await client(server.port);
    c.socket.write(lean('{"a":1}'));
    await until(() => server.held.length === 1, 'the post to reach the route');
    assert.ok(!(server.seen[0] instanceof IncomingMessage));
    assert.equal(server.seen[0]!.url, '/lean');
    server.held.shift()!.release();
    await until(() => c.text.includes('\r\n\r\n'), 'the answer');
    assert.match(c.text, /^HTTP\/1\.1 200 OK\r\ncontent-length: 0\r\nDate: [^\r]+\r\nConnection: keep-alive\r\nKeep-Alive: timeout=0\r\n\r\n$/);
    c.socket.destroy();
    server.seen.length = 0;

    const off = await leanApp({}, false);
    try {
      const answer = runScript(off.port, [lean('{"a":2}', 'Connection: close\r\n')]);
      await until(() => off.held.length === 1, 'the post to reach the route');
      assert.ok(off.seen[0] instanceof IncomingMessage);
      off.held[0]!.release();
      assert.match(await answer, /^HTTP\/1\.1 200 OK\r\ncontent-length: 0\r\nDate: [^\r]+\r\nConnection: close\r\n\r\n$/);
    } finally {
      await off.app.close();
    }
  });

  test('a GET pipelined behind a post in flight is handed to fastify and answered after the post, in order', async () => {
    const c = await client(server.port);
    c.socket.write(lean('{"first":1}') + 'GET /other HTTP/1.1\r\nHost: x\r\n\r\n' + lean('{"third":3}'));
    // The front holds the first post; node:http took the rest of the connection at once: the GET and the third
    // request, a post its lean route (the request event) takes.
    await until(() => server.held.length === 2, 'both posts to reach the route');
    assert.ok(!(server.seen.at(-2) instanceof IncomingMessage));
    assert.ok(server.seen.at(-1) instanceof IncomingMessage);
    assert.equal(server.held[1]!.body, '{"third":3}');
    // The third answers first and fastify has answered the GET: nothing may be written before the first post's answer.
    server.held[1]!.release();
    await new Promise((resolve) => setTimeout(resolve, 100));
    assert.equal(c.text, '');
    server.held[0]!.release();
    server.held.length = 0;
    await until(() => c.text.split('HTTP/1.1 ').length === 4, 'three answers');
    const statuses = [...c.text.matchAll(/HTTP\/1\.1 (\d+)[^]*?\r\n\r\n(other)?/g)].map((m) => `${m[1]}${m[2] ?? ''}`);
    assert.deepEqual(statuses, ['200', '200other', '200']);
    c.socket.destroy();
  });

  test('garbage after a post in flight gets node:http\'s 400 at once and the post\'s answer is dropped, as without the front', async () => {
    const c = await client(server.port);
    c.socket.write(lean('{"a":1}') + 'GARBAGE \x00\r\n\r\n');
    await until(() => c.closed, 'the server to close the connection');
    assert.match(c.text, /^HTTP\/1\.1 400 Bad Request\r\n[^]*"message":"Bad request"/);
    assert.equal(c.text.split('HTTP/1.1 ').length, 2);
    for (const h of server.held.splice(0)) h.release();
  });

  test('headers timeout, request timeout and a silent connection: 408 with the limit named; an idle kept-alive connection closes', async () => {
    const [headers, body, silent] = await Promise.all([
      runScript(server.port, [lean('{"a":1}').slice(0, 30)]),
      runScript(server.port, [lean('{"a":1}').slice(0, -2)]),
      runScript(server.port, []),
    ]);
    assert.match(normalized(headers), /^HTTP\/1\.1 408 Request Timeout\r\n[^]*"message":"Request headers not received within 600 ms \(httpHeadersTimeoutMs\)"/);
    assert.match(normalized(body), /^HTTP\/1\.1 408 Request Timeout\r\n[^]*"message":"Request not received within 900 ms \(httpRequestTimeoutMs\)"/);
    assert.match(normalized(silent), /^HTTP\/1\.1 408 Request Timeout\r\n[^]*httpHeadersTimeoutMs/);
    const c = await client(server.port);
    c.socket.write(lean('{"a":1}'));
    await until(() => server.held.length === 1, 'the post');
    server.held.shift()!.release();
    await until(() => c.closed, 'the kept-alive connection to close after 400 ms idle');
    assert.match(c.text, /^HTTP\/1\.1 200 OK\r\n/);
    assert.equal(c.text.split('HTTP/1.1 ').length, 2, 'no 408 for an idle kept-alive connection');
  });
});

describe('HTTP socket front: connection limit and drain', () => {
  test('a client that does not read its answers is not read either until they drain, then gets them all in order', async () => {
    const server = await leanApp({}, true, 'x'.repeat(8192));
    try {
      const total = 3000;
      const socket = connect(server.port, '127.0.0.1');
      await once(socket, 'connect');
      socket.pause(); // reads nothing for now
      const requests = Array.from({ length: total }, (_, n) => lean(`{"n":${n}}`)).join('');
      socket.write(requests);
      // Served posts stop growing below the total while the answers cannot drain.
      let last = -1;
      while (server.seen.length !== last) {
        last = server.seen.length;
        await new Promise((resolve) => setTimeout(resolve, 500));
      }
      assert.ok(server.seen.length < total, `${server.seen.length} of ${total} served to a client that reads nothing`);
      const status = 'HTTP/1.1 200 OK';
      let answers = 0;
      let carry = '';
      socket.setEncoding('latin1');
      socket.on('data', (chunk: string) => {
        // A status line may be split between chunks: count in what is left of the last one plus this one.
        const text = carry + chunk;
        answers += text.split(status).length - 1;
        carry = text.slice(-(status.length - 1));
      });
      socket.resume();
      await until(() => answers === total, 'every answer once the client reads');
      assert.equal(server.seen.length, total);
      socket.destroy();
    } finally {
      await server.app.close();
    }
  });

  test('a connection over the limit is handed to node:http for its 503', async () => {
    const server = await leanApp({ maxConnections: 1 });
    try {
      const first = await client(server.port);
      const answer = await runScript(server.port, [lean('{"a":1}')]);
      assert.match(answer, /^HTTP\/1\.1 503 Service Unavailable\r\n[^]*connection: close[^]*httpMaxConnections/i);
      first.socket.destroy();
    } finally {
      await server.app.close();
    }
  });

  test('closing ends idle connections at once and a connection with a post in flight after its answer', async () => {
    const server = await leanApp();
    const idle = await client(server.port);
    const keptAlive = await client(server.port);
    keptAlive.socket.write(lean('{"a":1}'));
    await until(() => server.held.length === 1, 'the first post');
    server.held.shift()!.release();
    await until(() => keptAlive.text.includes('\r\n\r\n'), 'the first answer');
    const busy = await client(server.port);
    busy.socket.write(lean('{"b":2}'));
    await until(() => server.held.length === 1, 'the second post');
    const closed = server.app.close();
    await until(() => idle.closed && keptAlive.closed, 'the idle connections to close');
    assert.equal(busy.closed, false);
    assert.equal(busy.text, '');
    server.held.shift()!.release();
    await until(() => busy.closed, 'the busy connection to close after its answer');
    assert.match(busy.text, /^HTTP\/1\.1 200 OK\r\ncontent-length: 0\r\n/);
    await closed;
  });
});

describe('HTTP socket front: an upgraded connection', () => {
  test('a WebSocket-style upgrade handed over outlives the headers and request timeouts (they are HTTP\'s, not its)', async () => {
    const server = await leanApp({ headersTimeoutMs: 300, requestTimeoutMs: 500, keepAliveTimeoutMs: 400 });
    const upgraded: Socket[] = [];
    server.app.server.on('upgrade', (_req: IncomingMessage, socket: Socket) => {
      upgraded.push(socket);
      socket.write('HTTP/1.1 101 Switching Protocols\r\nUpgrade: test\r\nConnection: Upgrade\r\n\r\n');
      socket.on('data', (chunk: Buffer) => socket.write(chunk)); // an echo, as a WebSocket session answers frames
    });
    try {
      const c = await client(server.port);
      c.socket.write('GET /socket HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: test\r\nConnection: Upgrade\r\n\r\n');
      await until(() => c.text.includes('101 Switching Protocols'), 'the upgrade');
      // Well past both timeouts and several checks of the front's timer (every 75 ms here).
      await new Promise((resolve) => setTimeout(resolve, 1500));
      c.socket.write('ping');
      await until(() => c.text.endsWith('ping') || c.closed, 'the echo');
      assert.equal(c.closed, false, c.text);
      assert.ok(c.text.endsWith('\r\n\r\nping'), c.text);
      assert.ok(!c.text.includes('408'), c.text);
      c.socket.destroy();
    } finally {
      for (const socket of upgraded) socket.destroy();
      await server.app.close();
    }
  });
});
