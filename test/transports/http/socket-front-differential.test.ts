/**
 * The socket front (src/transports/http/socket-front.ts) against node:http alone: the same byte streams, over raw TCP,
 * to a server with the front (the default) and one without (`httpSocketFront: off`) give the same answers byte for
 * byte (Date values and error timestamps aside), up to the same closing of the connection, and store the same data.
 * The streams: plain posts whole, split at every byte boundary, pipelined and kept alive; `Connection: close`;
 * HTTP/1.0; chunked bodies; `Expect: 100-continue`; duplicate, invalid and oversize Content-Length; oversize headers
 * and bodies; bad tokens; malformed heads (bare LF, obs-fold, control bytes, no Host); garbage; a request cut short by
 * the client's FIN; hand-over to fastify on the same connection; and seeded random mutations (test/fuzz/rng.ts).
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { Config } from '../../../src/config.ts';
import { mutateMany, Rng } from '../../fuzz/rng.ts';
import { skipUnlessPostgres, startPostgres, type TestPostgres } from '../../support/postgres.ts';
import { normalized, rawPost, runScript, type Step } from './front-support.ts';
import { createDevice, startTestServer, type TestServer } from './http-support.ts';

const TOKENS = ['front-diff-a', 'front-diff-b'];
/** Short limits so every scripted connection ends by the server's own close, on both servers alike. */
const LIMITS: Partial<Config> = { httpKeepAliveTimeoutMs: 1500, httpHeadersTimeoutMs: 6000, httpRequestTimeoutMs: 8000, httpMaxPayload: 4096 };

const telemetry = (i: number, token = TOKENS[i % 2]!): string => rawPost(`/api/v1/${token}/telemetry`, `{"ts":${1000 + i},"values":{"k${i}":${i}}}`);
const attributes = (i: number): string => rawPost(`/api/v1/${TOKENS[i % 2]}/attributes`, `{"a${i}":${i}}`);
const body = (i: number): string => `{"ts":${1000 + i},"values":{"k${i}":${i}}}`;
/** A telemetry body of exactly the body limit (4096 bytes). */
function atLimit(i: number): string {
  const prefix = `{"ts":${1000 + i},"values":{"k${i}":"`;
  return prefix + 'y'.repeat(4096 - prefix.length - 3) + '"}}';
}
const path = (i: number): string => `/api/v1/${TOKENS[i % 2]}/telemetry`;

/** Each case: a name and its script; `i` makes its stored keys its own. */
function cases(): [string, Step[]][] {
  const list: [string, (i: number) => Step[]][] = [
    ['a plain post', (i) => [telemetry(i)]],
    ['an attributes post', (i) => [attributes(i)]],
    ['three pipelined posts in one write', (i) => [telemetry(i) + attributes(i) + telemetry(i + 1000)]],
    ['kept alive: a post, its answer, another post', (i) => [telemetry(i), { responses: 1 }, telemetry(i + 1000)]],
    ['Connection: close', (i) => [rawPost(path(i), body(i), 'Content-Type: application/json\r\nConnection: close\r\n')]],
    ['Connection: close with a post pipelined after it', (i) => [rawPost(path(i), body(i), 'Content-Type: application/json\r\nConnection: close\r\n') + telemetry(i + 1000)]],
    ['Connection: Keep-Alive', (i) => [rawPost(path(i), body(i), 'Content-Type: application/json\r\nConnection: Keep-Alive\r\n')]],
    ['Connection: upgrade', (i) => [rawPost(path(i), body(i), 'Content-Type: application/json\r\nConnection: upgrade\r\nUpgrade: websocket\r\n')]],
    ['HTTP/1.0', (i) => [`POST ${path(i)} HTTP/1.0\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: ${body(i).length}\r\n\r\n${body(i)}`]],
    ['chunked', (i) => [`POST ${path(i)} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n${body(i).length.toString(16)}\r\n${body(i)}\r\n0\r\n\r\n`]],
    ['chunked and a Content-Length', (i) => [`POST ${path(i)} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n${body(i).length.toString(16)}\r\n${body(i)}\r\n0\r\n\r\n`]],
    ['Expect: 100-continue', (i) => [rawPost(path(i), '', `Content-Type: application/json\r\nExpect: 100-continue\r\n`).replace('Content-Length: 0', `Content-Length: ${body(i).length}`), { responses: 1 }, body(i)]],
    ['two equal Content-Lengths', (i) => [rawPost(path(i), body(i), `Content-Type: application/json\r\nContent-Length: ${body(i).length}\r\n`)]],
    ['two different Content-Lengths', (i) => [rawPost(path(i), body(i), 'Content-Type: application/json\r\nContent-Length: 2\r\n')]],
    ['Content-Length not a number', (i) => [`POST ${path(i)} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 1x\r\n\r\n${body(i)}`]],
    ['Content-Length negative', (i) => [`POST ${path(i)} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: -5\r\n\r\n${body(i)}`]],
    ['Content-Length 0', (i) => [rawPost(path(i), '')]],
    ['no Content-Length', (i) => [`POST ${path(i)} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n\r\n`]],
    ['a body over the limit', (i) => [rawPost(path(i), `{"k${i}":"${'x'.repeat(5000)}"}`)]],
    ['a body at the limit', (i) => [rawPost(path(i), atLimit(i))]],
    ['headers over 16 KiB', (i) => [rawPost(path(i), body(i), `Content-Type: application/json\r\nX-Big: ${'b'.repeat(17_000)}\r\n`)]],
    ['headers of 9 KiB', (i) => [rawPost(path(i), body(i), `Content-Type: application/json\r\nX-Big: ${'b'.repeat(9000)}\r\n`)]],
    ['an unknown token', (i) => [telemetry(i, 'no-such-token')]],
    ['the x509 token on plain HTTP', (i) => [telemetry(i, 'x509')]],
    ['a token with an escape', (i) => [telemetry(i, 'front%2Ddiff-a')]],
    ['a query string', (i) => [rawPost(`${path(i)}?`, body(i))]],
    ['invalid JSON', (i) => [rawPost(path(i), '{"k":')]],
    ['a JSON array of nothing', (i) => [rawPost(path(i), '[]')]],
    ['another Content-Type', (i) => [rawPost(path(i), body(i), 'Content-Type: application/xml\r\n')]],
    ['no Content-Type', (i) => [rawPost(path(i), body(i), '')]],
    ['Content-Type with spaces around', (i) => [rawPost(path(i), body(i), 'Content-Type:   application/json  \r\n')]],
    ['two Content-Types', (i) => [rawPost(path(i), body(i), 'Content-Type: application/json\r\nContent-Type: text/plain\r\n')]],
    ['no Host', (i) => [`POST ${path(i)} HTTP/1.1\r\nContent-Type: application/json\r\nContent-Length: ${body(i).length}\r\n\r\n${body(i)}`]],
    ['two Hosts', (i) => [rawPost(path(i), body(i), 'Host: y\r\nContent-Type: application/json\r\n')]],
    ['bare LF line ends', (i) => [`POST ${path(i)} HTTP/1.1\nHost: x\nContent-Type: application/json\nContent-Length: ${body(i).length}\n\n${body(i)}`]],
    ['an obs-fold', (i) => [rawPost(path(i), body(i), 'Content-Type: application/json\r\nX-Folded: a\r\n  b\r\n')]],
    ['a space before the colon', (i) => [rawPost(path(i), body(i), 'Content-Type : application/json\r\n')]],
    ['a control byte in a value', (i) => [rawPost(path(i), body(i), 'Content-Type: application/json\r\nX-Bad: a\x01b\r\n')]],
    ['a NUL in the target', (i) => [rawPost(`${path(i)}\x00`, body(i))]],
    ['obs-text in a value', (i) => [rawPost(path(i), body(i), 'Content-Type: application/json\r\nX-Text: caf\xe9\r\n')]],
    ['lower-case method', (i) => [telemetry(i).replace('POST', 'post')]],
    ['HTTP/1.2', (i) => [telemetry(i).replace('HTTP/1.1', 'HTTP/1.2')]],
    ['two spaces after the method', (i) => [telemetry(i).replace('POST ', 'POST  ')]],
    ['garbage', () => ['\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03 hello']],
    ['an empty line first', (i) => ['\r\n' + telemetry(i)]],
    ['a post then a GET of client attributes on the same connection', (i) => [attributes(i) + `GET /api/v1/${TOKENS[i % 2]}/attributes?clientKeys=none${i} HTTP/1.1\r\nHost: x\r\n\r\n`]],
    ['a post, its answer, then an admin call', (i) => [telemetry(i), { responses: 1 }, 'GET /api/fleetgate/info HTTP/1.1\r\nHost: x\r\n\r\n', { responses: 2 }, telemetry(i + 1000)]],
    ['a GET, its answer, then a post (node:http keeps the connection)', (i) => [`GET /api/v1/${TOKENS[i % 2]}/attributes HTTP/1.1\r\nHost: x\r\n\r\n`, { responses: 1 }, telemetry(i)]],
    ['a provisioning request with an unknown key', () => [rawPost('/api/v1/provision', '{"provisionDeviceKey":"nope","provisionDeviceSecret":"nope","deviceName":"x"}')]],
    ['a post whose body is cut short by FIN', (i) => [telemetry(i).slice(0, -3), { end: true }]],
    ['a head cut short by FIN', (i) => [telemetry(i).slice(0, 40), { end: true }]],
    ['a whole post then FIN', (i) => [telemetry(i), { responses: 1 }, { end: true }]],
    ['a head never finished (headers timeout)', (i) => [telemetry(i).slice(0, 50)]],
    ['a body never finished (request timeout)', (i) => [telemetry(i).slice(0, -2)]],
    ['a silent connection', () => []],
  ];
  const out: [string, Step[]][] = list.map(([name, script], i) => [name, script(i + 1)]);
  // Split at every byte boundary: one post alone, and a post pipelined with an attributes post.
  const whole = telemetry(100);
  for (let at = 1; at < whole.length; at++) out.push([`a post split at byte ${at}`, [whole.slice(0, at), whole.slice(at)]]);
  const pair = telemetry(200) + attributes(200);
  for (let at = 1; at < pair.length; at += 7) out.push([`two posts split at byte ${at}`, [pair.slice(0, at), pair.slice(at)]]);
  out.push(['a post one byte a write', [...telemetry(300)]]);
  out.push(['500 posts pipelined in one write', [Array.from({ length: 500 }, (_, n) => telemetry(3000 + n)).join('')]]);
  const longBody = `{"ts":1301,"values":{"k301":"${'z'.repeat(600)}"}}`;
  const longPost = rawPost(path(301), longBody);
  out.push(['a head whole, then its body one byte a write', [longPost.slice(0, -longBody.length), ...longBody]]);
  out.push(['a head in 40 pieces', Array.from({ length: 40 }, (_, n) => telemetry(302).slice(n * 4, n === 39 ? undefined : n * 4 + 4))]);
  // Seeded random mutations of valid streams: each mutated stream is followed by a valid post on the same connection.
  const rng = new Rng(17);
  for (let n = 0; n < 120; n++) {
    const source = Buffer.from(n % 3 === 0 ? telemetry(400 + n) + attributes(400 + n) : telemetry(400 + n), 'latin1');
    const mutated = mutateMany(rng, source, 1 + rng.int(3), Buffer.from(attributes(900 + n), 'latin1'));
    out.push([`fuzz #${n} (seed 17)`, [mutated, telemetry(600 + n)]]);
  }
  return out;
}

async function storedData(server: TestServer): Promise<unknown> {
  const data: Record<string, unknown> = {};
  for (const token of TOKENS) {
    const device = await server.core.auth.byAccessToken(token, undefined, { transport: 'http' });
    assert.ok(device, token);
    const latest = await server.core.timeseries.latest(device.deviceId);
    const keys = Object.keys(latest).sort();
    const series = keys.length ? await server.core.timeseries.get(device.deviceId, { keys, startTs: 0, endTs: 10_000_000, limit: 100_000, orderBy: 'ASC' }) : {};
    const attrs = await server.core.attributes.get(device.deviceId, 'CLIENT_SCOPE');
    data[token] = { series, attrs: JSON.parse(JSON.stringify(attrs, (k, v) => (k === 'lastUpdateTs' ? 0 : v))) };
  }
  return data;
}

/**
 * For a stream that timed out: whether `server` still answers a new plain post (a store or commit that stopped
 * answering, or this connection alone), and its warnings and errors logged so far.
 */
async function serverState(server: TestServer): Promise<string> {
  const probe = await runScript(server.ports.http, [rawPost(`/api/v1/${TOKENS[0]}/telemetry`, '{"probe":1}', 'Content-Type: application/json\r\nConnection: close\r\n')], 10_000).then(
    (answer) => JSON.stringify(answer.split('\r\n', 1)[0]),
    (error: Error) => `no answer (${error.message})`,
  );
  const problems = server.logLines.filter((line) => /"level":(4|5|6)\d/.test(line)).slice(-10);
  return `a new post to that server then got ${probe}; its warnings and errors: ${problems.length ? problems.join('\n') : 'none'}`;
}

/** Runs `all` against both servers, a few at a time, and returns the streams whose answers differ. */
async function differences(front: TestServer, plain: TestServer, all: [string, Step[]][]): Promise<string[]> {
  const mismatches: string[] = [];
  for (let start = 0; start < all.length; start += 40) {
    await Promise.all(
      all.slice(start, start + 40).map(async ([name, steps]) => {
        const named = (which: string, server: TestServer) => async (error: Error): Promise<never> => {
          throw new Error(`${name} (${which}): ${error.message}; ${await serverState(server)}`);
        };
        const [withFront, without] = await Promise.all([
          runScript(front.ports.http, steps).catch(named('front', front)),
          runScript(plain.ports.http, steps).catch(named('node:http alone', plain)),
        ]);
        if (normalized(withFront) !== normalized(without)) mismatches.push(`${name}:\n  front: ${JSON.stringify(withFront).slice(0, 600)}\n  node:  ${JSON.stringify(without).slice(0, 600)}`);
      }),
    );
  }
  return mismatches;
}

/** Checks the stored data of both servers is the same, and that each device got the plain posts' keys. */
async function assertSameData(front: TestServer, plain: TestServer): Promise<void> {
  const stored = await storedData(front);
  assert.deepEqual(stored, await storedData(plain));
  for (const token of TOKENS) {
    const { series } = (stored as Record<string, { series: Record<string, unknown> }>)[token]!;
    assert.ok(Object.keys(series).length >= 10, `${token}: ${Object.keys(series).join(',')}`);
  }
}

async function startPair(overrides: () => Promise<Partial<Config>>): Promise<[TestServer, TestServer]> {
  const [a, b] = await Promise.all([overrides(), overrides()]);
  const pair = await Promise.all([startTestServer({ ...LIMITS, ...a }), startTestServer({ ...LIMITS, ...b, httpSocketFront: 'off' })]);
  for (const server of pair) for (const token of TOKENS) await createDevice(server, token, undefined, token);
  return pair;
}

describe('HTTP socket front: the same bytes as node:http alone (SQLite)', () => {
  let front: TestServer;
  let plain: TestServer;
  before(async () => {
    [front, plain] = await startPair(async () => ({}));
  });
  after(async () => {
    await Promise.all([front?.close(), plain?.close()]);
  });

  test('every stream gets the same answers and closes alike; the stored data is the same', async () => {
    assert.deepEqual(await differences(front, plain, cases()), []);
    await assertSameData(front, plain);
  });
});

describe('HTTP socket front: the same bytes as node:http alone (PostgreSQL)', { skip: skipUnlessPostgres() }, () => {
  let pg: TestPostgres | undefined;
  let front: TestServer;
  let plain: TestServer;
  before(async () => {
    pg = await startPostgres();
    const postgres = pg;
    [front, plain] = await startPair(async () => ({ database: await postgres.createDatabase() }));
  });
  after(async () => {
    await Promise.all([front?.close(), plain?.close()]);
    await pg?.stop();
  });

  test('the named streams and part of the fuzz: the same answers and the same stored data', async () => {
    const all = cases().filter(([name]) => !/^(a post split at|two posts split at|fuzz #([4-9]\d|1\d\d))/.test(name));
    assert.deepEqual(await differences(front, plain, all), []);
    await assertSameData(front, plain);
  });
});
