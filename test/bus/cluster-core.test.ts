/**
 * Two cores ("nodes") on one PostgreSQL and one Redis, without transports: a device provisioned through node A and
 * connected to node B gets A's shared-attribute updates and RPCs, its reply reaches A, and an RPC queued while it was
 * connected nowhere reaches it when it connects to the other node.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { DeviceIdentity, RpcDelivery } from '../../src/core/api.ts';
import { createCore, type CoreInstance } from '../../src/core/core.ts';
import { DEFAULT_TENANT_ID, type Device } from '../../src/core/model.ts';
import { openRedisBus, type RedisBus } from '../../src/bus/redis-bus.ts';
import type { KyselyStore } from '../../src/store/kysely/kysely-store.ts';
import { openPostgresStore } from '../../src/store/postgres.ts';
import { silentLogger } from '../support/core.ts';
import { TEST_ACTOR } from '../support/harness.ts';
import { skipUnlessPostgres, startPostgres, type TestPostgres } from '../support/postgres.ts';
import { skipUnlessRedis, startRedis, type TestRedis } from '../support/redis.ts';

const T = DEFAULT_TENANT_ID;
const settings = { batchMaxRows: 5000, batchMaxDelayMs: 0, rpcDefaultTimeout: 10_000, provisionRetryAfterMs: 3000 };

interface Node {
  core: CoreInstance;
  store: KyselyStore;
  bus: RedisBus;
}

/** Waits (bounded) until `node` is announced as holding the device, i.e. its bus subscription is live. */
async function untilHeldBy(observer: Node, node: Node, deviceId: string): Promise<void> {
  for (let i = 0; i < 500; i++) {
    if ((await observer.bus.holders(deviceId)).includes(node.bus.nodeId)) return;
    await new Promise((r) => setTimeout(r, 10));
  }
  throw new Error(`node ${node.bus.nodeId} never announced device ${deviceId}`);
}

/** A queue of RPC deliveries a fake device session receives. */
function rpcInbox() {
  const received: RpcDelivery[] = [];
  let wake: (() => void) | undefined;
  return {
    onRpc: async (rpc: RpcDelivery) => {
      received.push(rpc);
      wake?.();
    },
    async next(): Promise<RpcDelivery> {
      while (received.length === 0) await new Promise<void>((r) => (wake = r));
      return received.shift()!;
    },
  };
}

describe('two nodes on one PostgreSQL and one Redis (core level)', { skip: skipUnlessPostgres() || skipUnlessRedis() }, () => {
  let pg: TestPostgres;
  let redis: TestRedis;
  const nodes: Node[] = [];
  let a: Node;
  let b: Node;
  let device: Device;
  let identity: DeviceIdentity;

  before(async () => {
    [pg, redis] = await Promise.all([startPostgres(), startRedis()]);
    const url = await pg.createDatabase();
    for (let i = 0; i < 2; i++) {
      const store = await openPostgresStore(url);
      const bus = await openRedisBus(redis.url);
      nodes.push({ store, bus, core: await createCore({ store, bus, logger: silentLogger, settings }) });
    }
    [a, b] = nodes;
    const type = 'ALLOW_CREATE_NEW_DEVICES' as const;
    await a.core.profiles.save(T, { name: 'cluster', provisionType: type, provisionDeviceKey: 'ck', profileData: { provisionConfiguration: { type, provisionDeviceSecret: 'cs' } } }, TEST_ACTOR);
    const result = await a.core.provisioning.provision({ provisionDeviceKey: 'ck', provisionDeviceSecret: 'cs', deviceName: 'roamer' }, { transport: 'http', address: '127.0.0.1' });
    assert.equal(result.status, 'SUCCESS');
    device = await b.core.devices.findByName(T, 'roamer');
    const found = await b.core.auth.byAccessToken(String(result.status === 'SUCCESS' && result.credentialsValue));
    assert.ok(found, 'node B authenticates the credentials node A issued');
    identity = found;
  });
  after(async () => {
    for (const n of nodes) {
      await n.core.close();
      await n.bus.close();
      await n.store.close();
    }
    await Promise.all([pg?.stop(), redis?.stop()]);
  });

  test('an RPC sent through node A reaches the device on node B, and its reply comes back through A', async () => {
    const inbox = rpcInbox();
    const session = b.core.sessions.open(identity, { onRpc: inbox.onRpc });
    try {
      await untilHeldBy(a, b, device.id);
      const sent = a.core.rpc.send(device, { method: 'getTemp', params: { unit: 'C' }, oneway: false, timeout: 20_000 });
      const delivery = await inbox.next();
      assert.equal(delivery.method, 'getTemp');
      assert.deepEqual(delivery.params, { unit: 'C' });
      await b.core.rpc.reply(device.id, delivery.requestId, '{"temp":21}');
      const { rpc, response } = await sent;
      assert.deepEqual(response, { temp: 21 });
      assert.equal(rpc.status, 'SUCCESSFUL');
    } finally {
      session.close();
    }
  });

  test('a shared-attribute update saved through node A is pushed to the device on node B', async () => {
    const updates: unknown[] = [];
    let wake: (() => void) | undefined;
    const session = b.core.sessions.open(identity, { onAttributes: (u) => (updates.push(u), wake?.()) });
    try {
      await untilHeldBy(a, b, device.id);
      await a.core.attributes.save(device, 'SHARED_SCOPE', { targetFw: '2.0' });
      while (updates.length === 0) await new Promise<void>((r) => (wake = r));
      assert.deepEqual(updates, [{ targetFw: '2.0' }]);
    } finally {
      session.close();
    }
  });

  test('an RPC queued while the device is connected nowhere reaches it when it connects to the other node', async () => {
    for (let i = 0; i < 500 && (await a.bus.holders(device.id)).length > 0; i++) await new Promise((r) => setTimeout(r, 10));
    assert.deepEqual(await a.bus.holders(device.id), []);
    const sent = b.core.rpc.send(device, { method: 'reboot', params: {}, oneway: true, timeout: 20_000 });
    const inbox = rpcInbox();
    // The RPC row is written before the device connects: wait until it is stored.
    for (let i = 0; i < 500 && (await a.store.listPendingRpc(device.id, Date.now())).length === 0; i++) await new Promise((r) => setTimeout(r, 10));
    const session = a.core.sessions.open(identity, { onRpc: inbox.onRpc });
    try {
      const delivery = await inbox.next();
      assert.equal(delivery.method, 'reboot');
      const { rpc } = await sent;
      assert.equal(rpc.status, 'DELIVERED');
    } finally {
      session.close();
    }
  });
});
