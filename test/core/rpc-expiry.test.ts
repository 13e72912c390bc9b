/** RPCs past their expiry get ThingsBoard's end state from core's periodic sweep, and are then no longer delivered. */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { DEFAULT_TENANT_ID } from '../../src/core/model.ts';
import { createTestCore, type TestCore } from '../support/core.ts';
import { TEST_ACTOR } from '../support/harness.ts';

let t: TestCore;
before(async () => {
  t = await createTestCore({ rpcExpirySweepMs: 25 });
});
after(() => t.close());

test('a persistent RPC to an offline device that expires becomes EXPIRED, and a device connecting later does not get it', async () => {
  const device = await t.core.devices.save(DEFAULT_TENANT_ID, { name: 'expiring' }, TEST_ACTOR, 'expiring-token');
  const submitted = await t.core.rpc.submit(device, { method: 'reboot', params: {}, oneway: false, expirationTime: Date.now() + 100 });
  assert.equal(submitted.status, 'QUEUED');
  let status: string = submitted.status;
  for (let i = 0; i < 100 && status === 'QUEUED'; i++) {
    await new Promise((r) => setTimeout(r, 20));
    status = (await t.core.rpc.get(DEFAULT_TENANT_ID, submitted.id)).status;
  }
  assert.equal(status, 'EXPIRED');
  const received: string[] = [];
  const identity = (await t.core.auth.byAccessToken('expiring-token'))!;
  t.core.sessions.open(identity, { onRpc: async (rpc) => void received.push(rpc.method) });
  await new Promise((r) => setTimeout(r, 100));
  assert.deepEqual(received, []);
});
