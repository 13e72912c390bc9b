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

/** The `data` keys of a raw reply text, in the order they were sent (JSON.parse would reorder digit-only keys). */
function sentKeys(text: string): string[] {
  const data = /"data":\{(.*)\},"latestValues"/.exec(text)?.[1] ?? '';
  return [...data.matchAll(/(?:^|\]\],)("(?:[^"\\]|\\.)*"):\[\[/g)].map((m) => JSON.parse(m[1]!) as string);
}

describe('WebSocket replies: data keys in Java sorted order, whatever they look like', () => {
  let server: TestServer;
  before(async () => {
    server = await startTestServer();
  });
  after(() => server.close());

  it('orders digit-only keys and keeps __proto__ in the first message, the live updates and history alike', async () => {
    const api = await adminClient(server);
    const { deviceId } = await deviceWithIdentity(server, api, 'ws-key-order-token', 'WS key order device');
    const keys = ['b', '10', '9', '__proto__', 'a'];
    const expected = [...keys].sort(); // Java's String.compareTo: UTF-16 code units, as Array.prototype.sort
    assert.deepEqual(expected, ['10', '9', '__proto__', 'a', 'b']);
    const post = async (ts: number) => {
      const body = JSON.stringify({ ts, values: Object.fromEntries(keys.map((k, i) => [k, i])) });
      // Object.fromEntries makes "__proto__" an own key, so JSON.stringify writes it; the server parses the text.
      assert.match(body, /"__proto__":3/);
      const res = await fetch(`${server.httpUrl}/api/v1/ws-key-order-token/telemetry`, { method: 'POST', headers: { 'content-type': 'application/json' }, body });
      assert.equal(res.status, 200);
    };
    await post(1000);
    const ws = await openSocket(wsUrl(server.httpUrl, `/api/ws/plugins/telemetry?token=${await server.adminToken()}`));
    const texts: string[] = [];
    ws.ws.on('message', (d) => texts.push(String(d)));
    try {
      ws.send({ tsSubCmds: [{ cmdId: 1, entityType: 'DEVICE', entityId: deviceId, keys: keys.join(',') }] });
      await poll(() => (texts.length >= 1 ? true : undefined), 20_000, 'the first message');
      assert.deepEqual(sentKeys(texts[0]!), expected, `first message: ${texts[0]}`);
      await post(2000);
      await poll(() => (texts.length >= 2 ? true : undefined), 20_000, 'the live update');
      assert.deepEqual(sentKeys(texts[1]!), expected, `live update: ${texts[1]}`);
      ws.send({ historyCmds: [{ cmdId: 2, entityType: 'DEVICE', entityId: deviceId, keys: keys.join(','), startTs: 0, endTs: 5000, limit: 10, agg: 'NONE' }] });
      await poll(() => (texts.length >= 3 ? true : undefined), 20_000, 'the history reply');
      assert.deepEqual(sentKeys(texts[2]!), expected, `history: ${texts[2]}`);
      const history = JSON.parse(texts[2]!) as { data: Record<string, [number, string][]>; latestValues: Record<string, number> };
      assert.deepEqual(Object.getOwnPropertyDescriptor(history.data, '__proto__')?.value, [[2000, '3'], [1000, '3']]);
      assert.match(texts[2]!, /"latestValues":\{"10":1000,"9":1000,"__proto__":1000,"a":1000,"b":1000\}/);
    } finally {
      ws.close();
    }
  });
});
