/**
 * A sub-device renamed while its gateway's first message about it is being resolved (read by name, session not yet
 * open): the update passes before the session exists, so the session must still end up under the new name, or the
 * gateway's messages under the old name keep going to the renamed device for the rest of the connection.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createCore } from '../../src/core/core.ts';
import { openSqliteStore } from '../../src/store/sqlite.ts';
import { MemoryBus } from '../../src/bus/memory-bus.ts';
import { silentLogger } from '../support/core.ts';
import { TEST_ACTOR } from '../support/harness.ts';
import { DEFAULT_TENANT_ID as T } from '../../src/core/model.ts';
import type { Store } from '../../src/core/ports/store.ts';

let dir: string;
let store: Awaited<ReturnType<typeof openSqliteStore>>;
let core: Awaited<ReturnType<typeof createCore>>;
/** Fault injection: while armed, a name lookup of sub-devices returns its (already read) rows only once released. */
let hold: { reached: () => void; gate: Promise<void> } | undefined;

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'fleetgate-gw-race-'));
  store = await openSqliteStore(join(dir, 'test.db'), { synchronous: 'normal' });
  const gated = new Proxy(store as unknown as Store, {
    get(target, prop, receiver) {
      const value = Reflect.get(target, prop, receiver);
      if (prop === 'findDevicesByNames' && typeof value === 'function') {
        return async (...args: unknown[]) => {
          const rows = await value.apply(target, args);
          const h = hold;
          hold = undefined;
          if (h) {
            h.reached();
            await h.gate;
          }
          return rows;
        };
      }
      return typeof value === 'function' ? value.bind(target) : value;
    },
  });
  core = await createCore({ store: gated, bus: new MemoryBus(), logger: silentLogger, settings: { batchMaxRows: 5000, batchMaxDelayMs: 0, rpcDefaultTimeout: 2000, provisionRetryAfterMs: 3000 } });
});
after(async () => {
  await core.close();
  await store.close();
  rmSync(dir, { recursive: true, force: true });
});

test('a sub-device renamed while the gateway resolves it is known under its new name only', async () => {
  const gw = await core.devices.save(T, { name: 'race-gw', additionalInfo: { gateway: true } }, TEST_ACTOR, 'RACE_GW_TOKEN');
  const sub = await core.devices.save(T, { name: 'race-sub-x', additionalInfo: { lastConnectedGateway: gw.id } }, TEST_ACTOR);
  const identity = await core.auth.byAccessToken('RACE_GW_TOKEN');
  const session = core.gateway.open(identity!, { attributes() {}, rpc: async () => {} });
  try {
    let release!: () => void;
    let reached!: () => void;
    const atGate = new Promise<void>((resolve) => (reached = resolve));
    hold = { reached, gate: new Promise<void>((resolve) => (release = resolve)) };
    const connecting = session.connect(Buffer.from('{"device":"race-sub-x"}')); // read by name: the old name
    await atGate;
    await core.devices.save(T, { id: sub.id, name: 'race-sub-y', additionalInfo: { lastConnectedGateway: gw.id } }, TEST_ACTOR);
    release();
    await connecting;
    assert.deepEqual(session.subDevices(), ['race-sub-y']);
  } finally {
    session.close();
  }
});
