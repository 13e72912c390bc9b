/**
 * The socket front's timeouts (src/transports/http/socket-front.ts) against the two ways its timer could leave a
 * connection with neither an answer nor a close:
 * - the wall clock set back or forward while connections are open (an NTP step, an administrator): node:http counts
 *   its headers, request and keep-alive timeouts on the monotonic clock, so must the front. On Date.now a clock set
 *   back an hour kept silent and idle connections open for that hour; one set forward cut a request short at once.
 *   The test moves Date.now (a fault injected by replacing it) and restores it.
 * - an app `clientError` listener that throws during the front's check: the check of the other connections goes on,
 *   and the connection whose listener threw is closed (before, the throw left the timer, as an uncaught exception, and
 *   that connection, already detached from the front, stayed open with no timeout).
 */
import { afterEach, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { AddressInfo } from 'node:net';
import { Writable } from 'node:stream';
import type { FastifyInstance } from 'fastify';
import { createLogger } from '../../../src/log.ts';
import { createHttpApp } from '../../../src/transports/http/app.ts';
import type { HttpLimits } from '../../../src/transports/http/admission.ts';
import { installLeanRoute } from '../../../src/transports/http/lean-route.ts';
import { client, rawPost } from './front-support.ts';

const realDateNow = Date.now;
const HOUR = 3_600_000;

/** Moves the wall clock (Date.now) by `ms` from now on. */
function shiftWallClock(ms: number): void {
  Date.now = () => realDateNow() + ms;
}

/** An app whose lean route `POST /lean` answers 200 at once; `accepted` counts the connections its server saw. */
async function frontApp(limits: Partial<HttpLimits>, socketFront = true) {
  const logs: string[] = [];
  const logger = createLogger('warn', new Writable({ write: (chunk, _e, cb) => void (logs.push(String(chunk)), cb()) }));
  const app: FastifyInstance = createHttpApp({ logger, bodyLimit: 1024, limits, socketFront });
  installLeanRoute(app, 1024, {
    name: 'clock test route',
    idPrefix: 'c',
    match: (url) => (url === '/lean' ? true : undefined),
    serve: async () => ({ status: 200, body: '' }),
  });
  const state = { accepted: 0 };
  app.server.on('connection', () => state.accepted++);
  await app.listen({ host: '127.0.0.1', port: 0 });
  return { app, port: (app.server.address() as AddressInfo).port, state, logs };
}

/** Polls `condition` (bounded by the monotonic clock: Date.now may be moved). */
async function until(condition: () => boolean, what: string, limitMs = 30_000): Promise<void> {
  const deadline = performance.now() + limitMs;
  while (!condition()) {
    if (performance.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

for (const socketFront of [true, false]) {
  describe(`HTTP ${socketFront ? 'socket front' : 'without the front (node:http alone, for comparison)'}: timeouts on the monotonic clock`, () => {
    let app: FastifyInstance | undefined;
    afterEach(async () => {
      Date.now = realDateNow;
      await app?.close();
      app = undefined;
    });

    test('the wall clock set back an hour: a silent connection still gets its 408 by the headers timeout', async () => {
      const server = await frontApp({ headersTimeoutMs: 1000, requestTimeoutMs: 2000, keepAliveTimeoutMs: 1000 }, socketFront);
      app = server.app;
      const silent = await client(server.port);
      await until(() => server.state.accepted === 1, 'the server to take the connection');
      shiftWallClock(-HOUR);
      await until(() => silent.closed, 'the headers timeout to close the silent connection');
      assert.match(silent.text, /^HTTP\/1\.1 408 Request Timeout\r\n/);
      assert.match(silent.text, /Request headers not received within 1000 ms/);
    });

    test('the wall clock set back an hour: a kept-alive connection still closes by the keep-alive timeout', async () => {
      const server = await frontApp({ headersTimeoutMs: 5000, requestTimeoutMs: 8000, keepAliveTimeoutMs: 1000 }, socketFront);
      app = server.app;
      const kept = await client(server.port);
      kept.socket.write(rawPost('/lean', '{"a":1}'));
      await until(() => kept.text.includes('\r\n\r\n'), 'the answer');
      assert.match(kept.text, /^HTTP\/1\.1 200 OK\r\n/);
      shiftWallClock(-HOUR);
      await until(() => kept.closed, 'the keep-alive timeout to close the idle connection');
      assert.equal(kept.text.split('HTTP/1.1 ').length - 1, 1, 'one answer, then a silent close');
    });

    test('the wall clock set back an hour mid-request: a body never finished gets its 408 by the request timeout', async () => {
      const server = await frontApp({ headersTimeoutMs: 1000, requestTimeoutMs: 2000, keepAliveTimeoutMs: 1000 }, socketFront);
      app = server.app;
      const slow = await client(server.port);
      slow.socket.write(rawPost('/lean', '{"a":1}').slice(0, -2));
      await until(() => server.state.accepted === 1, 'the server to take the connection');
      await sleep(50); // the front reads the head
      shiftWallClock(-HOUR);
      await until(() => slow.closed, 'the request timeout to close the connection');
      assert.match(slow.text, /^HTTP\/1\.1 408 Request Timeout\r\n/);
      assert.match(slow.text, /Request not received within 2000 ms/);
    });

    test('the wall clock set forward an hour: a request in progress is not cut short', async () => {
      // A short keep-alive timeout makes the front check every 50 ms; the request's own limits are long.
      const server = await frontApp({ headersTimeoutMs: 20_000, requestTimeoutMs: 20_000, keepAliveTimeoutMs: 200 }, socketFront);
      app = server.app;
      const post = rawPost('/lean', '{"a":1}');
      const c = await client(server.port);
      c.socket.write(post.slice(0, 30));
      await until(() => server.state.accepted === 1, 'the server to take the connection');
      shiftWallClock(HOUR);
      await sleep(1000); // about twenty checks of the front
      assert.equal(c.closed, false, `closed early: ${JSON.stringify(c.text)}`);
      c.socket.write(post.slice(30));
      await until(() => c.text.includes('\r\n\r\n'), 'the answer');
      assert.match(c.text, /^HTTP\/1\.1 200 OK\r\n/);
    });
  });
}

describe('HTTP socket front: a check that throws', () => {
  let app: FastifyInstance | undefined;
  afterEach(async () => {
    await app?.close();
    app = undefined;
  });

  test('an app clientError listener that throws: that connection is closed and the others are still checked', async () => {
    const server = await frontApp({ headersTimeoutMs: 1000, requestTimeoutMs: 2000, keepAliveTimeoutMs: 1000 });
    app = server.app;
    let throws = 1;
    // Before fastify's clientErrorHandler: when it throws, the 408 of that connection is never written.
    app.server.prependListener('clientError', () => {
      if (throws-- > 0) throw new Error('clientError listener failed');
    });
    const first = await client(server.port);
    await until(() => server.state.accepted === 1, 'the server to take the first connection');
    const second = await client(server.port);
    await until(() => first.closed && second.closed, 'both silent connections to close');
    assert.equal(first.text, '', 'the connection whose listener threw is closed without an answer');
    assert.match(second.text, /^HTTP\/1\.1 408 Request Timeout\r\n/);
    assert.ok(server.logs.some((line) => line.includes('a connection check failed')), server.logs.join('\n'));
  });
});
