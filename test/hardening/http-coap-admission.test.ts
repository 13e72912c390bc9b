/**
 * Admission limits of HTTP and CoAP (issue 7 §2) on a whole server: slow HTTP headers and bodies get 408 naming the
 * limit while long polls live on, connections beyond httpMaxConnections get 503 naming it, and CoAP requests beyond
 * the per-source rate get 4.29 with Max-Age. Each refusal is counted in fleetgate_rejected_connections_total.
 */
import assert from 'node:assert/strict';
import { createSocket } from 'node:dgram';
import { connect, type Socket } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { generate, parse, type ParsedPacket } from 'coap-packet';
import { ConfigError, loadConfig } from '../../src/config.ts';
import { call, createDevice, randomId, startTestServer, type TestServer } from '../transports/http/http-support.ts';

/** Upper bound on any wait here; the assertions are on the answers, never on durations. */
const BOUND_MS = 15_000;

/** Opens a raw TCP connection to the HTTP port, lets `talk` write to it, and resolves with all it received once closed. */
function rawHttp(port: number, talk: (socket: Socket) => void): { socket: Socket; received: Promise<string> } {
  const socket = connect(port, '127.0.0.1');
  const received = new Promise<string>((resolve, reject) => {
    let data = '';
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`the server did not close the connection within ${BOUND_MS} ms; got ${JSON.stringify(data)}`));
    }, BOUND_MS);
    socket.on('data', (chunk) => (data += chunk.toString('utf8')));
    socket.on('error', () => {}); // a reset after the answer is fine; the answer is what is checked
    socket.on('close', () => {
      clearTimeout(timer);
      resolve(data);
    });
  });
  socket.once('connect', () => talk(socket));
  return { socket, received };
}

/** Status line and JSON body of a raw HTTP answer. */
function parseAnswer(raw: string): { status: number; headers: string; body: Record<string, unknown> | undefined } {
  const [head = '', body = ''] = raw.split('\r\n\r\n', 2);
  const status = Number(/^HTTP\/1\.1 (\d{3})/.exec(head)?.[1]);
  return { status, headers: head.toLowerCase(), body: body ? (JSON.parse(body) as Record<string, unknown>) : undefined };
}

async function rejectedCount(server: TestServer, transport: string, reason: string): Promise<number> {
  const text = await server.metrics!.render();
  const match = new RegExp(`^fleetgate_rejected_connections_total\\{transport="${transport}",reason="${reason}"\\} (\\d+)$`, 'm').exec(text);
  return match ? Number(match[1]) : 0;
}

async function until(check: () => boolean | Promise<boolean>, what: string): Promise<void> {
  for (let i = 0; i < 300; i++) {
    if (await check()) return;
    await new Promise((r) => setTimeout(r, 25));
  }
  throw new Error(`timed out waiting for ${what}`);
}

describe('HTTP slow clients', () => {
  let server: TestServer;
  let port: number;
  before(async () => {
    server = await startTestServer({ logLevel: 'warn', httpHeadersTimeoutMs: 300, httpRequestTimeoutMs: 600 });
    port = server.ports.http;
  });
  after(() => server.close());

  it('answers 408 naming httpHeadersTimeoutMs when the headers do not arrive in time, and keeps serving others', async () => {
    const slow = rawHttp(port, (s) => s.write('GET /api/v1/some-token/attributes HTTP/1.1\r\nHost: x\r\n'));
    const silent = rawHttp(port, () => {});
    for (const raw of [await slow.received, await silent.received]) {
      const answer = parseAnswer(raw);
      assert.equal(answer.status, 408, raw);
      assert.match(answer.headers, /connection: close/);
      assert.equal(answer.body?.status, 408);
      assert.match(String(answer.body?.message), /httpHeadersTimeoutMs/);
      assert.match(String(answer.body?.message), /300 ms/);
    }
    assert.equal((await call(server, '/api/v1/no-such-token/attributes')).status, 401, 'the server still answers');
    assert.ok((await rejectedCount(server, 'http', 'HEADERS_TIMEOUT')) >= 2);
  });

  it('answers 408 naming httpRequestTimeoutMs when the body does not arrive in time', async () => {
    const slow = rawHttp(port, (s) => s.write('POST /api/v1/some-token/telemetry HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{"tempe'));
    const answer = parseAnswer(await slow.received);
    assert.equal(answer.status, 408);
    assert.match(String(answer.body?.message), /httpRequestTimeoutMs/);
    assert.match(String(answer.body?.message), /600 ms/);
    assert.equal(await rejectedCount(server, 'http', 'REQUEST_TIMEOUT'), 1);
    assert.equal((await call(server, '/api/v1/no-such-token/attributes')).status, 401, 'the server still answers');
  });

  it('does not cut a long poll that waits longer than httpRequestTimeoutMs for its answer', async () => {
    const { device, token } = await createDevice(server, `lp-${randomId()}`);
    const sessions = server.core.sessions.count();
    const answer = call(server, `/api/v1/${token}/attributes/updates?timeout=10000`);
    await until(() => server.core.sessions.count() > sessions, 'the poll session to open');
    // Several request timeouts (and many of Node's checks) pass while the poll waits.
    await new Promise((r) => setTimeout(r, 2000));
    await server.core.attributes.save(device, 'SHARED_SCOPE', { target: 7 });
    const reply = await answer;
    assert.equal(reply.status, 200);
    assert.deepEqual(reply.json, { target: 7 });
  });
});

describe('HTTP maximum connections', () => {
  let server: TestServer;
  before(async () => (server = await startTestServer({ logLevel: 'warn', httpMaxConnections: 2 })));
  after(() => server.close());

  const request = (path: string) => (s: Socket) => s.write(`GET ${path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`);

  it('answers 503 naming httpMaxConnections to a connection beyond the limit; room again once one closes', async () => {
    const port = server.ports.http;
    const held = [rawHttp(port, () => {}), rawHttp(port, () => {})];
    await Promise.all(held.map((h) => new Promise((r) => h.socket.once('connect', r))));
    const refused = parseAnswer(await rawHttp(port, request('/api/v1/no-such-token/attributes')).received);
    assert.equal(refused.status, 503);
    assert.match(refused.headers, /connection: close/);
    assert.match(refused.headers, /retry-after: 1/);
    assert.match(String(refused.body?.message), /at most 2 \(httpMaxConnections\)/);
    assert.equal(await rejectedCount(server, 'http', 'MAX_CONNECTIONS'), 1);
    assert.equal(await rejectedCount(server, 'http', 'SHUTTING_DOWN'), 0, 'not counted a second time from the 503');

    held[0]!.socket.destroy();
    await held[0]!.received;
    let status = 0;
    for (let i = 0; i < 50 && status !== 401; i++) {
      status = parseAnswer(await rawHttp(port, request('/api/v1/no-such-token/attributes')).received).status;
      if (status !== 401) await new Promise((r) => setTimeout(r, 20)); // the server may not have seen the close yet
    }
    assert.equal(status, 401, 'admitted again: the request reaches the device API');
    held[1]!.socket.destroy();
  });
});

describe('CoAP request rate per source', () => {
  let server: TestServer;
  before(async () => (server = await startTestServer({ logLevel: 'warn', coapRequestRatePerSource: '3:60' })));
  after(() => server.close());

  it('answers 4.29 with Max-Age and a diagnostic naming the limit; retransmissions are not counted', async () => {
    const sock = createSocket('udp4');
    await new Promise<void>((r) => sock.bind(0, '127.0.0.1', () => r()));
    const exchange = (datagram: Buffer) =>
      new Promise<ParsedPacket>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error('no CoAP answer')), BOUND_MS);
        sock.once('message', (msg) => {
          clearTimeout(timer);
          resolve(parse(msg));
        });
        sock.send(datagram, server.coapPort, '127.0.0.1');
      });
    const telemetry = (messageId: number) =>
      generate({
        messageId,
        token: Buffer.from([messageId]),
        code: '0.02',
        confirmable: true,
        options: ['api', 'v1', 'no-such-token', 'telemetry'].map((p) => ({ name: 'Uri-Path' as const, value: Buffer.from(p) })),
        payload: Buffer.from('{"a":1}'),
      });
    try {
      const answers: string[] = [];
      for (const id of [1, 2, 3]) answers.push((await exchange(telemetry(id))).code);
      assert.deepEqual(answers, ['4.01', '4.01', '4.01'], 'within the limit: the request is handled (unknown token)');
      assert.equal((await exchange(telemetry(3))).code, '4.01', 'a retransmission gets the same answer and is not counted');
      const limited = await exchange(telemetry(4));
      assert.equal(limited.code, '4.29');
      assert.match(limited.payload.toString('utf8'), /3:60/);
      assert.match(limited.payload.toString('utf8'), /coapRequestRatePerSource/);
      const maxAge = limited.options.find((o) => o.name === 'Max-Age');
      assert.equal(maxAge?.value.readUIntBE(0, maxAge.value.length), 20, 'one request back after 60 s / 3');
      assert.equal(await rejectedCount(server, 'coap', 'REQUEST_RATE'), 1);
    } finally {
      sock.close();
    }
  });
});

describe('admission options', () => {
  it('have permissive defaults and are validated', () => {
    const config = loadConfig({ env: {} });
    assert.deepEqual(
      [config.httpHeadersTimeoutMs, config.httpRequestTimeoutMs, config.httpKeepAliveTimeoutMs, config.httpMaxConnections, config.coapRequestRatePerSource],
      [10000, 30000, 72000, 10000, undefined],
    );
    assert.equal(loadConfig({ env: { FLEETGATE_COAP_REQUEST_RATE_PER_SOURCE: '50:1,1000:60' } }).coapRequestRatePerSource, '50:1,1000:60');
    assert.throws(() => loadConfig({ env: { FLEETGATE_COAP_REQUEST_RATE_PER_SOURCE: 'fast' } }), ConfigError);
    assert.throws(() => loadConfig({ env: { FLEETGATE_HTTP_HEADERS_TIMEOUT_MS: '60000' } }), /must not exceed httpRequestTimeoutMs/);
    assert.equal(loadConfig({ env: { FLEETGATE_HTTP_HEADERS_TIMEOUT_MS: '60000', FLEETGATE_HTTP_REQUEST_TIMEOUT_MS: '0' } }).httpHeadersTimeoutMs, 60000);
  });
});
