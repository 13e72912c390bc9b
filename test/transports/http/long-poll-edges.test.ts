/**
 * Long-poll edges that a whole server cannot time on purpose, against the HTTP app with a scripted core: an RPC
 * handed over from inside `sessions.open`, an RPC offered after the client left (must reject so core keeps it
 * pending), and no HEAD on poll routes.
 */
import assert from 'node:assert/strict';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import type { DeviceIdentity, RpcDelivery, SessionHandlers } from '../../../src/core/api.ts';
import type { Core } from '../../../src/core/core-types.ts';
import { loadConfig } from '../../../src/config.ts';
import { createLogger } from '../../../src/log.ts';
import { createHttpApp } from '../../../src/transports/http/app.ts';
import { registerDeviceApi } from '../../../src/transports/http/device-api.ts';
import { until } from './http-support.ts';

const DEVICE: DeviceIdentity = { deviceId: 'd-1', tenantId: 't', deviceName: 'dev', profileId: 'p', credentialsType: 'ACCESS_TOKEN' };

/** A core with only what the poll routes use; records sessions and lets the test drive them. */
function scriptedCore() {
  const sessions: Array<{ handlers: SessionHandlers; closed: boolean }> = [];
  let pendingAtOpen: RpcDelivery | undefined;
  const delivered: Array<Promise<void>> = [];
  const core = {
    auth: { byAccessToken: async (token: string) => (token === 'tok' ? DEVICE : undefined) },
    sessions: {
      open(_device: DeviceIdentity, handlers: SessionHandlers) {
        const session = { handlers, closed: false };
        sessions.push(session);
        if (pendingAtOpen && handlers.onRpc) delivered.push(handlers.onRpc(pendingAtOpen));
        return { update() {}, close: () => void (session.closed = true) };
      },
      count: () => sessions.filter((s) => !s.closed).length,
    },
  } as unknown as Core;
  return { core, sessions, delivered, setPendingAtOpen: (rpc: RpcDelivery | undefined) => (pendingAtOpen = rpc) };
}

describe('long-poll edges', () => {
  const scripted = scriptedCore();
  const app = createHttpApp({ logger: createLogger('silent'), bodyLimit: 1024 });
  let base: string;
  before(async () => {
    const config = { ...loadConfig({ env: {} }), httpLongPollTimeout: 5_000 };
    registerDeviceApi(app, { core: scripted.core, config, logger: createLogger('silent') });
    await app.listen({ host: '127.0.0.1', port: 0 });
    base = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}/api/v1/tok`;
  });
  after(() => app.close());

  it('answers with an RPC delivered from inside sessions.open, resolves it once written, closes the session', async () => {
    scripted.setPendingAtOpen({ requestId: 41, method: 'pending', params: [1, 2] });
    const res = await fetch(`${base}/rpc?timeout=5000`);
    assert.equal(res.status, 200);
    assert.equal(await res.text(), '{"id":41,"method":"pending","params":[1,2]}');
    await scripted.delivered.at(-1); // resolves: the answer was written
    await until(() => scripted.sessions.at(-1)!.closed, 'the session to close');
    scripted.setPendingAtOpen(undefined);
  });

  it('rejects an RPC offered after the client went away, so core keeps it pending', async () => {
    const abort = new AbortController();
    const count = scripted.sessions.length;
    const request = fetch(`${base}/rpc?timeout=5000`, { signal: abort.signal });
    await until(() => scripted.sessions.length > count, 'the poll session to open');
    const session = scripted.sessions.at(-1)!;
    abort.abort();
    await assert.rejects(request);
    await until(() => session.closed, 'the session to close');
    await assert.rejects(session.handlers.onRpc!({ requestId: 42, method: 'late', params: null }), /client went away/);
  });

  it('offers an attribute update once: a second one finds the poll answered and is ignored', async () => {
    const count = scripted.sessions.length;
    const request = fetch(`${base}/attributes/updates?timeout=5000`);
    await until(() => scripted.sessions.length > count, 'the poll session to open');
    const { onAttributes } = scripted.sessions.at(-1)!.handlers;
    onAttributes!({ first: 1 });
    onAttributes!({ second: 2 });
    assert.equal(await (await request).text(), '{"first":1}');
  });

  it('does not offer HEAD on poll routes (a HEAD would consume an RPC and drop it)', async () => {
    const count = scripted.sessions.length;
    for (const path of ['rpc', 'attributes/updates']) {
      const res = await fetch(`${base}/${path}?timeout=10`, { method: 'HEAD' });
      assert.equal(res.status, 404, path);
    }
    assert.equal(scripted.sessions.length, count, 'no session was opened');
  });
});
