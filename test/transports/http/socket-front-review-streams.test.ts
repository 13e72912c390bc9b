/**
 * Review of the socket front (src/transports/http/socket-front.ts): more byte streams than
 * socket-front-differential.test.ts sends, each to a whole server with the front and one without (node:http alone),
 * compared byte for byte (Date values and error timestamps aside) up to the server's close, and the stored data
 * compared after. The streams: odd but legal heads the front takes (case, whitespace, leading zeros, empty Host, many
 * headers), whitespace around Content-Length (llhttp takes only SP after the digits) and Connection, Proxy-Connection
 * (llhttp reads it as Connection), FIN right behind a whole post or a `Connection: close` post, many tiny posts pipelined with hand-overs in
 * the middle, bytes after `Connection: close` that are only line ends, and line ends between requests (llhttp skips
 * them without starting a request: the keep-alive timeout, not the headers timeout, applies), and half a head after an
 * answer (node:http's keep-alive timeout runs until the next head is complete).
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { Config } from '../../../src/config.ts';
import { normalized, rawPost, runScript, type Step } from './front-support.ts';
import { createDevice, startTestServer, type TestServer } from './http-support.ts';

const TOKEN = 'front-review-a';
const LIMITS: Partial<Config> = { httpKeepAliveTimeoutMs: 1500, httpHeadersTimeoutMs: 6000, httpRequestTimeoutMs: 8000, httpMaxPayload: 4096 };
const path = `/api/v1/${TOKEN}/telemetry`;
const body = (i: number): string => `{"ts":${1000 + i},"values":{"r${i}":${i}}}`;
const post = (i: number, headers = 'Content-Type: application/json\r\n'): string => rawPost(path, body(i), headers);
/** A head written out in full; `lines` between the request line and the blank line. */
const head = (i: number, lines: string): string => `POST ${path} HTTP/1.1\r\n${lines}\r\n${body(i)}`;

function cases(): [string, Step[]][] {
  const list: [string, (i: number) => Step[]][] = [
    ['upper-case header names', (i) => [head(i, `HOST: x\r\nCONTENT-TYPE: application/json\r\nCONTENT-LENGTH: ${body(i).length}\r\n`)]],
    ['Content-Length with leading zeros', (i) => [head(i, `Host: x\r\nContent-Type: application/json\r\nContent-Length: 000${body(i).length}\r\n`)]],
    ['Content-Length with a tab around', (i) => [head(i, `Host: x\r\nContent-Type: application/json\r\nContent-Length:\t${body(i).length}\t\r\n`)]],
    ['Content-Length with a space then a tab after', (i) => [head(i, `Host: x\r\nContent-Type: application/json\r\nContent-Length: ${body(i).length} \t\r\n`)]],
    ['Content-Length with spaces after', (i) => [head(i, `Host: x\r\nContent-Type: application/json\r\nContent-Length: ${body(i).length}  \r\n`)]],
    ['Content-Length with a tab before', (i) => [head(i, `Host: x\r\nContent-Type: application/json\r\nContent-Length:\t ${body(i).length}\r\n`)]],
    ['Connection: close and a tab', (i) => [post(i, 'Content-Type: application/json\r\nConnection: close\t\r\n')]],
    ['Connection: a tab and close', (i) => [post(i, 'Content-Type: application/json\r\nConnection:\tclose\r\n')]],
    ['Proxy-Connection: close and Connection: keep-alive', (i) => [post(i, 'Content-Type: application/json\r\nConnection: keep-alive\r\nProxy-Connection: close\r\n')]],
    ['Content-Length of two numbers', (i) => [head(i, `Host: x\r\nContent-Type: application/json\r\nContent-Length: ${body(i).length} ${body(i).length}\r\n`)]],
    ['Content-Length as a list', (i) => [head(i, `Host: x\r\nContent-Type: application/json\r\nContent-Length: ${body(i).length},${body(i).length}\r\n`)]],
    ['an empty Host', (i) => [head(i, `Host:\r\nContent-Type: application/json\r\nContent-Length: ${body(i).length}\r\n`)]],
    ['no space after the colons', (i) => [head(i, `Host:x\r\nContent-Type:application/json\r\nContent-Length:${body(i).length}\r\n`)]],
    ['64 extra headers', (i) => [head(i, `Host: x\r\nContent-Type: application/json\r\n${'X-A: 1\r\n'.repeat(64)}Content-Length: ${body(i).length}\r\n`)]],
    ['65 extra headers', (i) => [head(i, `Host: x\r\nContent-Type: application/json\r\n${'X-A: 1\r\n'.repeat(65)}Content-Length: ${body(i).length}\r\n`)]],
    ['Connection: CLOSE', (i) => [post(i, 'Content-Type: application/json\r\nConnection: CLOSE\r\n')]],
    ['Connection: close, keep-alive', (i) => [post(i, 'Content-Type: application/json\r\nConnection: close, keep-alive\r\n')]],
    ['Connection twice', (i) => [post(i, 'Content-Type: application/json\r\nConnection: keep-alive\r\nConnection: keep-alive\r\n')]],
    ['Proxy-Connection: close', (i) => [post(i, 'Content-Type: application/json\r\nProxy-Connection: close\r\n')]],
    ['Keep-Alive header sent', (i) => [post(i, 'Content-Type: application/json\r\nKeep-Alive: timeout=1\r\n')]],
    ['an empty Expect', (i) => [post(i, 'Content-Type: application/json\r\nExpect:\r\n')]],
    ['Transfer-Encoding: identity', (i) => [post(i, 'Content-Type: application/json\r\nTransfer-Encoding: identity\r\n')]],
    ['Content-Type in capitals', (i) => [post(i, 'Content-Type: APPLICATION/JSON\r\n')]],
    ['Content-Type with a tab after', (i) => [post(i, 'Content-Type: application/json\t\r\n')]],
    ['a post and FIN at once', (i) => [post(i), { end: true }]],
    ['a Connection: close post and FIN at once', (i) => [post(i, 'Content-Type: application/json\r\nConnection: close\r\n'), { end: true }]],
    ['a Connection: close post, line ends after it, then FIN', (i) => [post(i, 'Content-Type: application/json\r\nConnection: close\r\n') + '\r\n\r\n\n', { responses: 1 }, { end: true }]],
    ['a Connection: close post, then a post in a later write', (i) => [post(i, 'Content-Type: application/json\r\nConnection: close\r\n'), post(i + 1000)]],
    ['a post, its answer, then only line ends', (i) => [post(i), { responses: 1 }, '\r\n']],
    ['a post and line ends after it in one write', (i) => [post(i) + '\r\n\r\n']],
    ['a post, its answer, line ends, then a post', (i) => [post(i), { responses: 1 }, '\r\n', post(i + 1000)]],
    ['only line ends on a new connection', () => ['\r\n\n']],
    ['a post, its answer, then half a head (keep-alive timeout shorter than the headers timeout)', (i) => [post(i), { responses: 1 }, post(i + 1000).slice(0, 30)]],
    ['a post, its answer, then half a GET (handed over)', (i) => [post(i), { responses: 1 }, `GET /api/v1/${TOKEN}/attr`]],
    ['a post and half a GET in one write (handed over while the post commits)', (i) => [post(i) + `GET /api/v1/${TOKEN}/attr`]],
    ['a post and half a head in one write', (i) => [post(i) + post(i + 1000).slice(0, 30)]],
    ['200 tiny posts pipelined in one write', (i) => [Array.from({ length: 200 }, (_, n) => post(i * 1000 + n)).join('')]],
    [
      '100 posts with a GET in the middle, in one write',
      (i) => [Array.from({ length: 100 }, (_, n) => (n === 50 ? `GET /api/v1/${TOKEN}/attributes HTTP/1.1\r\nHost: x\r\n\r\n` : post(i * 1000 + n))).join('')],
    ],
    ['100 posts with garbage in the middle, in one write', (i) => [Array.from({ length: 100 }, (_, n) => (n === 50 ? 'NOPE\r\n\r\n' : post(i * 1000 + n))).join('')]],
    ['100 posts with a HTTP/1.0 one in the middle', (i) => [Array.from({ length: 100 }, (_, n) => (n === 50 ? post(i * 1000 + n).replace('HTTP/1.1', 'HTTP/1.0') : post(i * 1000 + n))).join('')]],
    ['a post with a body longer than its Content-Length', (i) => [rawPost(path, body(i)).replace(/Content-Length: \d+/, `Content-Length: ${body(i).length - 1}`)]],
    ['an absolute-form target', (i) => [post(i).replace(`POST ${path}`, `POST http://x${path}`)]],
    ['a target with a fragment', (i) => [post(i).replace(`POST ${path}`, `POST ${path}#f`)]],
    ['a target with a dot segment', (i) => [post(i).replace(`POST ${path}`, `POST /api/v1/./${TOKEN}/telemetry`)]],
    ['a header name with a bad byte', (i) => [post(i, 'Content-Type: application/json\r\nX-A\x7f: 1\r\n')]],
    ['a DEL in a value', (i) => [post(i, 'Content-Type: application/json\r\nX-A: 1\x7f\r\n')]],
    ['a NUL in the body', (i) => [rawPost(path, `{"ts":${1000 + i},"values":{"n${i}":"a\u0000b"}}`)]],
  ];
  return list.map(([name, script], i) => [name, script(i + 1)]);
}

async function stored(server: TestServer): Promise<unknown> {
  const device = await server.core.auth.byAccessToken(TOKEN, undefined, { transport: 'http' });
  assert.ok(device);
  const latest = await server.core.timeseries.latest(device.deviceId);
  const keys = Object.keys(latest).sort();
  return keys.length ? await server.core.timeseries.get(device.deviceId, { keys, startTs: 0, endTs: 10_000_000, limit: 100_000, orderBy: 'ASC' }) : {};
}

describe('socket front review: more streams, the same bytes as node:http alone', () => {
  let front: TestServer;
  let plain: TestServer;
  before(async () => {
    [front, plain] = await Promise.all([startTestServer({ ...LIMITS }), startTestServer({ ...LIMITS, httpSocketFront: 'off' })]);
    for (const server of [front, plain]) await createDevice(server, TOKEN, undefined, TOKEN);
  });
  after(async () => {
    await Promise.all([front?.close(), plain?.close()]);
  });

  for (const [name, steps] of cases()) {
    test(name, async () => {
      const [withFront, without] = await Promise.all([runScript(front.ports.http, steps), runScript(plain.ports.http, steps)]);
      assert.equal(normalized(withFront), normalized(without));
    });
  }

  test('the stored data is the same', async () => {
    assert.deepEqual(await stored(front), await stored(plain));
  });
});
