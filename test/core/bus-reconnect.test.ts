/**
 * A Redis outage loses the bus messages published meanwhile. When the bus is back, every RPC session on this node
 * looks up its device's pending RPCs again, so an RPC whose message was lost still reaches the device.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { RpcDelivery } from '../../src/core/api.ts';
import { DEFAULT_TENANT_ID } from '../../src/core/model.ts';
import { openRedisBus, type RedisBus } from '../../src/bus/redis-bus.ts';
import { createTestCore, type TestCore } from '../support/core.ts';
import { TEST_ACTOR } from '../support/harness.ts';
import { skipUnlessRedis, startRedis, type TestRedis } from '../support/redis.ts';

/** Polls `condition` every 20 ms, at most `ms`. */
async function until(condition: () => boolean, ms: number, what: string): Promise<void> {
  for (const end = Date.now() + ms; Date.now() < end; ) {
    if (condition()) return;
    await new Promise((r) => setTimeout(r, 20));
  }
  throw new Error(`timed out waiting for ${what}`);
}

describe('bus reconnection', { skip: skipUnlessRedis() }, () => {
  let redis: TestRedis;
  let bus: RedisBus;
  let test_: TestCore;
  before(async () => {
    redis = await startRedis();
    bus = await openRedisBus(redis.url);
    test_ = await createTestCore({}, bus);
  });
  after(async () => {
    await test_?.close();
    await bus?.close();
    await redis?.stop();
  });

  test('the Redis bus tells its listeners when it is back, and an RPC queued while it was away reaches the session', async () => {
    const { core, store } = test_;
    const device = await core.devices.save(DEFAULT_TENANT_ID, { name: 'reconnect-dev' }, TEST_ACTOR, 'reconnect-token');
    const identity = (await core.auth.byAccessToken('reconnect-token'))!;
    const received: RpcDelivery[] = [];
    core.sessions.open(identity, { onRpc: async (rpc) => void received.push(rpc) });
    let reconnects = 0;
    bus.onReconnect(() => reconnects++);

    await redis.stop();
    let down = false;
    for (let i = 0; i < 100 && !down; i++) down = await bus.ping().then(() => new Promise<boolean>((r) => setTimeout(() => r(false), 50)), () => true);
    assert.ok(down, 'the bus noticed the outage');
    // What a publish during the outage leaves behind: the RPC stored as QUEUED, its bus message lost.
    await store.insertRpc({
      id: 'rpc-during-outage',
      deviceId: device.id,
      tenantId: DEFAULT_TENANT_ID,
      method: 'setGpio',
      params: '{"pin":7}',
      oneway: true,
      expirationTime: Date.now() + 60_000,
      status: 'QUEUED',
      response: null,
      createdTime: Date.now(),
    });
    await new Promise((r) => setTimeout(r, 300));
    assert.equal(received.length, 0, 'nothing arrives while the bus is away');

    redis = await startRedis({ port: redis.port });
    await until(() => reconnects > 0, 15_000, 'the bus to reconnect');
    await until(() => received.length > 0, 5000, 'the pending RPC');
    assert.deepEqual(received.map((r) => [r.method, r.params]), [['setGpio', { pin: 7 }]]);
    // The status is written after the delivery returns (rpc.ts deliverOne): wait for it rather than race it.
    let status: string | undefined;
    for (let i = 0; i < 250 && status !== 'SUCCESSFUL'; i++) {
      status = (await store.getRpc('rpc-during-outage'))?.status;
      if (status !== 'SUCCESSFUL') await new Promise((r) => setTimeout(r, 20));
    }
    assert.equal(status, 'SUCCESSFUL');
  });
});
