import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { startTestServer, type TestServer } from '../../support/harness.ts';
import { adminClient, deviceWithIdentity } from '../admin-client.ts';
import WebSocket from 'ws';
import { openSocket, poll, wsUrl, type TestSocket } from './ws-client.ts';

describe('WebSocket telemetry API: bad input, bad tokens and limits', () => {
  let server: TestServer;
  let token: string;
  let deviceId: string;
  const sockets: TestSocket[] = [];

  async function open(path: string): Promise<TestSocket> {
    const s = await openSocket(wsUrl(server.httpUrl, path));
    sockets.push(s);
    return s;
  }

  async function authed(): Promise<TestSocket> {
    const s = await open(`/api/ws/plugins/telemetry?token=${token}`);
    return s;
  }

  before(async () => {
    server = await startTestServer({ wsMaxSubscriptionsPerSession: 2, wsMaxSessionsPerUser: 40, wsAuthTimeoutMs: 3000, wsMaxFrameBytes: 4096 });
    const api = await adminClient(server);
    token = await server.adminToken();
    ({ deviceId } = await deviceWithIdentity(server, api, 'ws-errors-token', 'WS errors device'));
  });
  after(async () => {
    for (const s of sockets) s.close();
    await server.close();
  });

  it('closes an unknown path under /api/ws with 1007 "Unknown session type"', async () => {
    const ws = await open('/api/ws/plugins/nothing');
    assert.deepEqual(await ws.waitClosed(), { code: 1007, reason: 'Unknown session type' });
  });

  it('answers a WebSocket upgrade to a path outside /api/ws with 404', async () => {
    const client = new WebSocket(wsUrl(server.httpUrl, '/api/v1/some-token/telemetry'));
    const status = await new Promise<number>((resolve, reject) => {
      client.on('unexpected-response', (_req, res) => resolve(res.statusCode ?? 0));
      client.on('open', () => reject(new Error('the upgrade succeeded')));
      client.on('error', () => {});
    });
    client.terminate();
    assert.equal(status, 404);
  });

  it('closes on a bad query token with 1011 and ThingsBoard\'s reason', async () => {
    assert.deepEqual(await (await open('/api/ws/plugins/telemetry?token=not.a.jwt')).waitClosed(), { code: 1011, reason: 'Invalid JWT token: ' });
    const forged = token.slice(0, -4) + (token.endsWith('AAAA') ? 'BBBB' : 'AAAA');
    assert.deepEqual(await (await open(`/api/ws?token=${forged}`)).waitClosed(), { code: 1011, reason: 'JWT Token expired' });
  });

  it('closes /api/ws without authCmd (1008), with a rejected token (1007), on an unparseable first frame (1007), after the auth timeout (1008)', async () => {
    const noAuth = await open('/api/ws');
    noAuth.send({ cmds: [] });
    assert.deepEqual(await noAuth.waitClosed(), { code: 1008, reason: 'Auth cmd is missing' });
    const badToken = await open('/api/ws');
    badToken.send({ authCmd: { cmdId: 0, token: 'garbage' } });
    assert.deepEqual(await badToken.waitClosed(), { code: 1007, reason: 'Invalid JWT token: ' });
    const apiKey = await open('/api/ws');
    apiKey.send({ authCmd: { cmdId: 0, apiKey: 'some-key', token } }); // a non-empty apiKey wins over the token
    assert.deepEqual(await apiKey.waitClosed(), { code: 1007, reason: 'Invalid username or password' });
    const junk = await open('/api/ws');
    junk.send('{oops');
    assert.deepEqual(await junk.waitClosed(), { code: 1007, reason: 'The given string value cannot be transformed to Json object: {oops' });
    const silent = await open('/api/ws');
    assert.equal((await silent.waitClosed()).code, 1008);
    // The legacy path has no authCmd member: it fails to parse there.
    const legacy = await open('/api/ws/plugins/telemetry');
    legacy.send({ authCmd: { cmdId: 0, token } });
    assert.equal((await legacy.waitClosed()).code, 1007);
  });

  it('answers malformed frames of an authenticated session with ThingsBoard\'s parse error and keeps the session', async () => {
    const ws = await authed();
    const parseError = { subscriptionId: 1, errorCode: 2, errorMsg: 'Failed to parse the payload', data: null, latestValues: {} };
    const frames = [
      '{not json',
      '[]',
      'null',
      '{"tsSubCmds":{}}',
      '{"unknownMember":[]}',
      JSON.stringify({ tsSubCmds: [{ cmdId: 5, entityType: 'DEVICE', entityId: deviceId, keys: ['a'] }] }),
      JSON.stringify({ tsSubCmds: [{ cmdId: 5, entityType: 'DEVICE', entityId: deviceId, endTs: 5 }] }),
      JSON.stringify({ attrSubCmds: [{ cmdId: 5.5, entityType: 'DEVICE', entityId: deviceId }] }),
      JSON.stringify({ historyCmds: [{ cmdId: 5, entityType: 'DEVICE', entityId: deviceId, keys: 'a', unsubscribe: true }] }),
    ];
    for (const [i, frame] of frames.entries()) {
      ws.send(frame);
      await poll(() => (ws.messages.length > i ? true : undefined), 20_000, `the reply to frame ${i}`);
      assert.deepEqual(ws.messages[i], parseError, `frame ${frame}`);
    }
    const general = await open('/api/ws');
    general.send({ authCmd: { cmdId: 0, token }, cmds: [{ type: 'NO_SUCH_TYPE', cmdId: 1 }] });
    // The whole frame fails, authCmd included: the session never authenticated.
    assert.equal((await general.waitClosed()).code, 1007);
    const general2 = await open('/api/ws');
    general2.send({ authCmd: { cmdId: 0, token } });
    general2.send({ cmds: [{ type: 'NO_SUCH_TYPE', cmdId: 1 }] });
    assert.deepEqual(await general2.next(() => true), parseError);
    general2.send({ cmds: [{ cmdId: 2, entityType: 'DEVICE', entityId: deviceId }] }); // no type
    await poll(() => (general2.messages.length === 2 ? true : undefined), 20_000, 'the second parse error');
    assert.deepEqual(general2.messages[1], parseError);
    // Still usable.
    ws.send({ tsSubCmds: [{ cmdId: 9, entityType: 'DEVICE', entityId: deviceId }] });
    assert.equal((await ws.next((m) => m.subscriptionId === 9)).errorCode, 0);
  });

  it('answers each bad command with errorCode and errorMsg on its cmdId', async () => {
    const ws = await open('/api/ws');
    const cmd = (type: string, cmdId: number, extra: Record<string, unknown>) => ({ type, cmdId, entityType: 'DEVICE', entityId: deviceId, ...extra });
    const cases: [Record<string, unknown>, number, string][] = [
      [cmd('TIMESERIES', -1, {}), 2, 'Cmd id is negative value!'],
      [cmd('TIMESERIES', 31, { entityId: '' }), 2, 'Device id is empty!'],
      [cmd('TIMESERIES_HISTORY', 32, { keys: '' }), 2, 'Keys are empty!'],
      [cmd('TIMESERIES', 33, { entityId: 'abc' }), 1, 'Invalid UUID string: abc'],
      [cmd('TIMESERIES', 34, { entityType: 'FOO' }), 1, 'No enum constant org.thingsboard.server.common.data.EntityType.FOO'],
      [cmd('TIMESERIES', 35, { entityType: null }), 1, 'Name is null'],
      [cmd('TIMESERIES', 36, { entityId: '00000000-0000-4000-8000-00000000abcd' }), 1, 'Failed to fetch data!'],
      [cmd('ATTRIBUTES', 37, { entityId: '00000000-0000-4000-8000-00000000abcd' }), 1, 'Failed to fetch attributes!'],
      [cmd('ATTRIBUTES', 38, { entityType: 'ASSET' }), 1, 'Failed to fetch attributes!'],
      [cmd('ATTRIBUTES', 39, { scope: 'ANY_SCOPE' }), 2, 'Invalid attribute scope: ANY_SCOPE'],
      [cmd('TIMESERIES', 40, { keys: 'a,,b' }), 2, 'Keys must not be empty: "a,,b"'],
      [cmd('TIMESERIES_HISTORY', 41, { keys: 'a', agg: 'FOO', endTs: 10 }), 1, 'No enum constant org.thingsboard.server.common.data.kv.Aggregation.FOO'],
      [cmd('TIMESERIES_HISTORY', 42, { keys: 'a', agg: 'AVG', interval: 0, endTs: 10 }), 2, 'Aggregation AVG needs an interval of at least 1 ms'],
      [cmd('TIMESERIES', 44, { keys: 'a', agg: 'AVG', startTs: 0, timeWindow: 1000 }), 2, 'Aggregation AVG needs an interval of at least 1 ms'],
      [{ type: 'ENTITY_DATA', cmdId: 43, query: {} }, 1, 'Command type ENTITY_DATA is not supported'],
    ];
    ws.send({ authCmd: { cmdId: 0, token }, cmds: cases.map(([c]) => c) });
    for (const [c, code, msg] of cases) {
      const reply = await ws.next((m) => m.subscriptionId === c.cmdId);
      assert.deepEqual(reply, { subscriptionId: c.cmdId, errorCode: code, errorMsg: msg, data: null, latestValues: {} }, JSON.stringify(c));
    }
  });

  it('closes on a binary frame (1003) and on a frame over wsMaxFrameBytes (1009), and keeps serving others', async () => {
    const binary = await authed();
    binary.ws.send(Buffer.from([1, 2, 3]));
    assert.deepEqual(await binary.waitClosed(), { code: 1003, reason: 'Binary messages not supported' });
    const huge = await authed();
    huge.send(JSON.stringify({ tsSubCmds: [{ cmdId: 1, entityType: 'DEVICE', entityId: deviceId, keys: 'k'.repeat(10_000) }] }));
    assert.equal((await huge.waitClosed()).code, 1009);
    const fine = await authed();
    fine.send({ tsSubCmds: [{ cmdId: 1, entityType: 'DEVICE', entityId: deviceId }] });
    assert.equal((await fine.next((m) => m.subscriptionId === 1)).errorCode, 0);
  });

  it('refuses a subscription past wsMaxSubscriptionsPerSession on its cmdId, and frees the slot on unsubscribe', async () => {
    const ws = await authed();
    const sub = (cmdId: number, unsubscribe = false) => ({ tsSubCmds: [{ cmdId, entityType: 'DEVICE', entityId: deviceId, unsubscribe }] });
    ws.send(sub(1));
    ws.send(sub(2));
    ws.send(sub(3));
    const refused = await ws.next((m) => m.subscriptionId === 3);
    assert.deepEqual(refused, { subscriptionId: 3, errorCode: 2, errorMsg: 'Max subscriptions per session limit reached (2)', data: null, latestValues: {} });
    ws.send(sub(1, true));
    ws.send(sub(4));
    assert.equal((await ws.next((m) => m.subscriptionId === 4)).errorCode, 0);
    assert.equal(ws.closed, undefined);
  });
});

describe('WebSocket telemetry API: sessions per user and expiring tokens', () => {
  let server: TestServer;
  let deviceId: string;
  const sockets: TestSocket[] = [];

  before(async () => {
    server = await startTestServer({ wsMaxSessionsPerUser: 2, jwtExpirySeconds: 15 });
    const api = await adminClient(server);
    ({ deviceId } = await deviceWithIdentity(server, api, 'ws-limits-token', 'WS limits device'));
  });
  after(async () => {
    for (const s of sockets) s.close();
    await server.close();
  });

  async function open(path: string): Promise<TestSocket> {
    const s = await openSocket(wsUrl(server.httpUrl, path));
    sockets.push(s);
    return s;
  }

  it('closes a session past wsMaxSessionsPerUser with 1008, then admits one once a slot is free; the token expiry ends sessions with 1008', async () => {
    // A token of its own, issued now: it lives 15 s from here (ample for the steps before its expiry).
    const res = await fetch(`${server.httpUrl}/api/auth/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ username: 'admin@test.local', password: 'test-admin-password' }) });
    const token = ((await res.json()) as { token: string }).token;
    const first = await open(`/api/ws/plugins/telemetry?token=${token}`);
    const second = await open(`/api/ws?token=${token}`);
    const third = await open(`/api/ws/plugins/telemetry?token=${token}`);
    assert.deepEqual(await third.waitClosed(), { code: 1008, reason: 'Max user sessions limit reached' });
    first.close();
    // The first socket's slot is free once the server has seen it go.
    const openSessions = async () => Number(/fleetgate_ws_sessions_open (\d+)/.exec(await server.metrics!.render())?.[1]);
    while ((await openSessions()) !== 1) await new Promise((r) => setTimeout(r, 20));
    const admitted = await open('/api/ws');
    admitted.send({ authCmd: { cmdId: 0, token }, cmds: [{ type: 'TIMESERIES', cmdId: 1, entityType: 'DEVICE', entityId: deviceId }] });
    await admitted.next((m) => m.subscriptionId === 1);
    assert.equal(admitted.messages[0].errorCode, 0);
    // The token lives 15 s: both open sessions end with it.
    assert.deepEqual(await second.waitClosed(), { code: 1008, reason: 'JWT Token expired' });
    assert.deepEqual(await admitted.waitClosed(), { code: 1008, reason: 'JWT Token expired' });
    // And the expired token no longer opens a session.
    assert.deepEqual(await (await open(`/api/ws/plugins/telemetry?token=${token}`)).waitClosed(), { code: 1011, reason: 'JWT Token expired' });
    const late = await open('/api/ws');
    late.send({ authCmd: { cmdId: 0, token } });
    assert.deepEqual(await late.waitClosed(), { code: 1007, reason: 'JWT Token expired' });
  });

});

describe('WebSocket telemetry API: slow readers and command floods', () => {
  let server: TestServer;
  let token: string;
  let deviceId: string;
  const sockets: TestSocket[] = [];

  before(async () => {
    // Frames gathered by wsUpdateIntervalMs (several commits in one) still count against the outbound queue.
    server = await startTestServer({ wsMaxQueuePerSession: 4, httpMaxPayload: 2_000_000, wsUpdateIntervalMs: 250 });
    const api = await adminClient(server);
    token = await server.adminToken();
    ({ deviceId } = await deviceWithIdentity(server, api, 'ws-limits-token', 'WS limits device'));
  });
  after(async () => {
    for (const s of sockets) s.close();
    await server.close();
  });

  async function open(path: string): Promise<TestSocket> {
    const s = await openSocket(wsUrl(server.httpUrl, path));
    sockets.push(s);
    return s;
  }

  it('closes a session whose command frames pile up past wsMaxQueuePerSession', async () => {
    const fresh = token;
    const ws = await open(`/api/ws/plugins/telemetry?token=${fresh}`);
    const frame = JSON.stringify({ historyCmds: [{ cmdId: 1, entityType: 'DEVICE', entityId: deviceId, keys: 'a', startTs: 0, endTs: Date.now() }] });
    // Frames arrive faster than history reads finish: the queue fills up, whatever the machine's speed.
    for (let i = 0; i < 20_000 && !ws.closed && ws.ws.readyState === ws.ws.OPEN; i++) {
      ws.ws.send(frame);
      if (i % 500 === 499) await new Promise((r) => setImmediate(r));
    }
    assert.deepEqual(await ws.waitClosed(), { code: 1008, reason: 'Max pending commands limit reached!' });
  });

  it('closes a reader that does not read once wsMaxQueuePerSession frames pile up, and keeps ingesting', async () => {
    const fresh = token;
    const slow = await open(`/api/ws/plugins/telemetry?token=${fresh}`);
    slow.send({ tsSubCmds: [{ cmdId: 1, entityType: 'DEVICE', entityId: deviceId, keys: 'blob' }] });
    await slow.next((m) => m.subscriptionId === 1);
    (slow.ws as unknown as { _socket: { pause(): void } })._socket.pause(); // stop reading: the kernel buffers fill up
    const blob = 'x'.repeat(500_000);
    const closed1008 = async () => Number(/fleetgate_ws_closed_total\{code="1008"\} (\d+)/.exec(await server.metrics!.render())?.[1] ?? 0);
    const before = await closed1008();
    const closes = async () => (await closed1008()) > before;
    let posts = 0;
    while (!(await closes())) {
      assert.ok(posts < 400, 'the slow reader was never closed');
      const post = await fetch(`${server.httpUrl}/api/v1/ws-limits-token/telemetry`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ blob: `${posts}${blob}` }) });
      assert.equal(post.status, 200); // ingestion never waits for the socket
      posts++;
    }
    (slow.ws as unknown as { _socket: { resume(): void } })._socket.resume();
    await slow.waitClosed();
  });
});

describe('WebSocket telemetry API: random frames', () => {
  let server: TestServer;
  before(async () => {
    server = await startTestServer();
  });
  after(() => server.close());

  it('survives a few hundred mutated frames on one session, answers each or closes, and keeps serving', async () => {
    const api = await adminClient(server);
    const { deviceId } = await deviceWithIdentity(server, api, 'ws-fuzz-token', 'WS fuzz device');
    const token = await server.adminToken();
    const valid = JSON.stringify({ tsSubCmds: [{ cmdId: 1, entityType: 'DEVICE', entityId: deviceId, keys: 'a,b', scope: 'LATEST_TELEMETRY', startTs: 0, timeWindow: 1000, limit: 5, agg: 'NONE' }], historyCmds: [{ cmdId: 2, entityType: 'DEVICE', entityId: deviceId, keys: 'a', startTs: 0, endTs: 10 }], attrSubCmds: [{ cmdId: 3, entityType: 'DEVICE', entityId: deviceId, scope: 'SHARED_SCOPE' }] });
    let seed = 11;
    const random = () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
    const junk = ['null', '[]', '{}', '"x"', '-1', '1e309', 'true', '{"cmdId":{}}', '\u0000', '\uffff'];
    const mutate = (text: string) => {
      const chars = [...text];
      for (let n = 1 + Math.floor(random() * 4); n > 0; n--) {
        const at = Math.floor(random() * chars.length);
        const op = random();
        if (op < 0.4) chars.splice(at, 1);
        else if (op < 0.7) chars.splice(at, 0, junk[Math.floor(random() * junk.length)]);
        else chars[at] = String.fromCharCode(Math.floor(random() * 128));
      }
      return chars.join('');
    };
    const ws = await openSocket(wsUrl(server.httpUrl, `/api/ws/plugins/telemetry?token=${token}`));
    try {
      for (let i = 0; i < 300 && !ws.closed; i++) ws.send(mutate(valid));
      await poll(() => (ws.closed || ws.messages.length >= 300 ? true : undefined), 60_000, 'answers to the random frames');
      for (const m of ws.messages) assert.deepEqual(Object.keys(m).sort(), ['data', 'errorCode', 'errorMsg', 'latestValues', 'subscriptionId']);
    } finally {
      ws.close();
    }
    assert.equal((await fetch(`${server.httpUrl}/healthz`)).status, 200);
    const fresh = await openSocket(wsUrl(server.httpUrl, `/api/ws/plugins/telemetry?token=${token}`));
    try {
      fresh.send(valid);
      assert.equal((await fresh.next((m) => m.subscriptionId === 3)).errorCode, 0);
    } finally {
      fresh.close();
    }
  });
});

describe('WebSocket telemetry API: keep-alive', () => {
  let server: TestServer;
  before(async () => {
    server = await startTestServer({ wsPingTimeoutMs: 6000 }); // pings every 2 s; generous, so a busy machine's pauses never look like a dead peer
  });
  after(() => server.close());

  it('pings, keeps a session that answers, and closes one that does not with 4500', async () => {
    const token = await server.adminToken();
    const url = wsUrl(server.httpUrl, `/api/ws/plugins/telemetry?token=${token}`);
    const answering = new WebSocket(url);
    const silent = new WebSocket(url, { autoPong: false });
    try {
      let pings = 0;
      answering.on('ping', () => pings++);
      const silentClose = new Promise<number>((resolve) => silent.on('close', (code) => resolve(code)));
      let answeringClosed = false;
      answering.on('close', () => (answeringClosed = true));
      assert.equal(await silentClose, 4500);
      await poll(() => (pings >= 4 ? true : undefined), 60_000, 'four pings');
      assert.equal(answeringClosed, false, 'a session that answers pings was closed');
    } finally {
      answering.terminate();
      silent.terminate();
    }
  });
});
