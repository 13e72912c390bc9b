/**
 * `data` keys in Java's sorted-map order (spec websocket §3.1: "data keys are in Java string order"), in every frame of
 * a subscription: its first message (snapshot), its live updates and a TIMESERIES_HISTORY reply. A JavaScript object
 * serialised with JSON.stringify moves digit-only keys first and drops a key named `__proto__`; the live frames are
 * rendered in Java order (render.ts LiveFrame), so the first message must be too or one subscription sees two orders.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { startTestServer, type TestServer } from '../../support/harness.ts';
import { adminClient, deviceWithIdentity } from '../admin-client.ts';
import { openSocket, poll, wsUrl } from './ws-client.ts';
import { skipUnlessPostgres, startPostgres, type TestPostgres } from '../../support/postgres.ts';
import { skipUnlessRedis, startRedis, type TestRedis } from '../../support/redis.ts';

/** The `data` keys of a raw reply text, in the order they were sent (JSON.parse would reorder digit-only keys). */
function sentKeys(text: string): string[] {
  const data = /"data":\{(.*)\},"latestValues"/.exec(text)?.[1] ?? '';
  return [...data.matchAll(/(?:^|\]\],)("(?:[^"\\]|\\.)*"):\[\[/g)].map((m) => JSON.parse(m[1]!) as string);
}

/**
 * Posts telemetry with odd keys through `ingest`'s HTTP API and checks the key order of the first message, a live
 * update and a history reply of a subscription on `watch`'s WebSocket API.
 */
async function checkKeyOrder(ingest: TestServer, watch: TestServer, deviceToken: string, ready: (deviceId: string) => Promise<void> = async () => {}): Promise<void> {
  const api = await adminClient(ingest);
  const { deviceId } = await deviceWithIdentity(ingest, api, deviceToken, `WS key order ${deviceToken}`);
  const keys = ['b', '10', '9', '__proto__', 'a'];
  const expected = [...keys].sort(); // Java's String.compareTo: UTF-16 code units, as Array.prototype.sort
  assert.deepEqual(expected, ['10', '9', '__proto__', 'a', 'b']);
  const post = async (ts: number) => {
    // Object.fromEntries makes "__proto__" an own key, so JSON.stringify writes it; the server parses the text.
    const body = JSON.stringify({ ts, values: Object.fromEntries(keys.map((k, i) => [k, i])) });
    assert.match(body, /"__proto__":3/);
    const res = await fetch(`${ingest.httpUrl}/api/v1/${deviceToken}/telemetry`, { method: 'POST', headers: { 'content-type': 'application/json' }, body });
    assert.equal(res.status, 200);
  };
  await post(1000);
  const ws = await openSocket(wsUrl(watch.httpUrl, `/api/ws/plugins/telemetry?token=${await watch.adminToken()}`));
  const texts: string[] = [];
  ws.ws.on('message', (d) => texts.push(String(d)));
  try {
    ws.send({ tsSubCmds: [{ cmdId: 1, entityType: 'DEVICE', entityId: deviceId, keys: keys.join(',') }] });
    await poll(() => (texts.length >= 1 ? true : undefined), 20_000, 'the first message');
    assert.deepEqual(sentKeys(texts[0]!), expected, `first message: ${texts[0]}`);
    await ready(deviceId);
    await post(2000);
    await poll(() => (texts.length >= 2 ? true : undefined), 20_000, 'the live update');
    assert.deepEqual(sentKeys(texts[1]!), expected, `live update: ${texts[1]}`);
    ws.send({ historyCmds: [{ cmdId: 2, entityType: 'DEVICE', entityId: deviceId, keys: keys.join(','), startTs: 0, endTs: 5000, limit: 10, agg: 'NONE' }] });
    await poll(() => (texts.length >= 3 ? true : undefined), 20_000, 'the history reply');
    assert.deepEqual(sentKeys(texts[2]!), expected, `history: ${texts[2]}`);
    const history = JSON.parse(texts[2]!) as { data: Record<string, [number, string][]> };
    assert.deepEqual(Object.getOwnPropertyDescriptor(history.data, '__proto__')?.value, [[2000, '3'], [1000, '3']]);
    // TB: latestValues holds the ts of each key's last pair (history is newest first).
    assert.match(texts[2]!, /"latestValues":\{"10":1000,"9":1000,"__proto__":1000,"a":1000,"b":1000\}/);
  } finally {
    ws.close();
  }
}

describe('WebSocket replies: data keys in Java sorted order, whatever they look like (SQLite)', () => {
  let server: TestServer;
  before(async () => {
    server = await startTestServer();
  });
  after(() => server.close());

  it('orders digit-only keys and keeps __proto__ in the first message, the live updates and history alike', async () => {
    await checkKeyOrder(server, server, 'ws-key-order-token');
  });
});

describe('WebSocket replies: data keys in Java sorted order on two nodes (PostgreSQL + Redis)', { skip: skipUnlessPostgres() || skipUnlessRedis() }, () => {
  let pg: TestPostgres | undefined;
  let redis: TestRedis | undefined;
  let a: TestServer | undefined;
  let b: TestServer | undefined;
  before(async () => {
    [pg, redis] = await Promise.all([startPostgres(), startRedis()]);
    const database = await pg.createDatabase();
    a = await startTestServer({ database, bus: redis.url, logLevel: 'warn' });
    b = await startTestServer({ database, bus: redis.url, logLevel: 'warn' });
  });
  after(async () => {
    await a?.close();
    await b?.close();
    await Promise.all([pg?.stop(), redis?.stop()]);
  });

  it('posted on one node, watched on the other: the same order in every reply', async () => {
    await checkKeyOrder(a!, b!, 'ws-key-order-cluster-token', (deviceId) =>
      poll(() => (a!.core.liveUpdates.watchedAnywhere(deviceId) ? true : undefined), 20_000, 'node A knows the device is watched').then(() => undefined),
    );
  });
});
