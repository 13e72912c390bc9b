/**
 * The HTTP app's graceful stop (src/transports/http/connection-drain.ts): once closing, a connection without a
 * request in flight (never used, or kept alive after its response) is closed at once; a connection whose request is
 * in flight gets its whole response, then is closed.
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { connect, type AddressInfo, type Socket } from 'node:net';
import { test } from 'node:test';
import Fastify from 'fastify';
import { drainConnectionsOnClose } from '../../../src/transports/http/connection-drain.ts';

/** A raw client socket, its received text, and whether the server ended it. */
async function client(port: number) {
  const socket: Socket = connect(port, '127.0.0.1');
  await once(socket, 'connect');
  const state = { text: '', ended: false, socket };
  socket.setEncoding('utf8');
  socket.on('data', (chunk: string) => (state.text += chunk));
  socket.on('end', () => (state.ended = true));
  socket.on('close', () => (state.ended = true));
  socket.on('error', () => {});
  return state;
}

const until = async (condition: () => boolean, what: string) => {
  const deadline = Date.now() + 20_000;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
};

test('closing ends idle and kept-alive connections at once, and an in-flight request\'s connection after its whole response', async () => {
  const app = Fastify();
  drainConnectionsOnClose(app);
  let release!: () => void;
  const released = new Promise<void>((resolve) => (release = resolve));
  let slowStarted = false;
  app.get('/fast', async () => 'fast');
  app.get('/slow', async () => {
    slowStarted = true;
    await released;
    return 'slow answer';
  });
  await app.listen({ host: '127.0.0.1', port: 0 });
  const { port } = app.server.address() as AddressInfo;

  const unused = await client(port);
  const keptAlive = await client(port);
  keptAlive.socket.write('GET /fast HTTP/1.1\r\nHost: x\r\n\r\n');
  await until(() => keptAlive.text.endsWith('fast'), 'the first response');
  const busy = await client(port);
  busy.socket.write('GET /slow HTTP/1.1\r\nHost: x\r\n\r\n');
  await until(() => slowStarted, 'the slow request to start');

  const closed = app.close();
  await until(() => unused.ended && keptAlive.ended, 'the idle connections to close');
  assert.equal(busy.ended, false, 'the busy connection stays open while its request is in flight');
  assert.equal(busy.text, '');
  release();
  await until(() => busy.ended, 'the busy connection to close after its response');
  assert.match(busy.text, /^HTTP\/1\.1 200 OK\r\n/);
  assert.ok(busy.text.endsWith('slow answer'), 'the whole response arrived before the connection closed');
  await closed;
});
