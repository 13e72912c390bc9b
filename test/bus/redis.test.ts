/** The Bus contract against a real redis-server that this test starts (and stops) itself, plus Redis-only behaviour. */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { Redis } from 'ioredis';
import { channels } from '../../src/core/ports/bus.ts';
import { MemoryBus } from '../../src/bus/memory-bus.ts';
import { openBus } from '../../src/bus/open-bus.ts';
import { openRedisBus, RedisBus } from '../../src/bus/redis-bus.ts';
import { ConfigError } from '../../src/config.ts';
import { freePort } from '../support/postgres.ts';
import { skipUnlessRedis, startRedis, type TestRedis } from '../support/redis.ts';
import { busContract, Inbox } from './bus-contract.ts';

const skip = skipUnlessRedis();

busContract(
  'Redis',
  async () => {
    const server = await startRedis();
    const nodes: RedisBus[] = [];
    return {
      async node() {
        const bus = await openRedisBus(server.url);
        nodes.push(bus);
        return bus;
      },
      async close() {
        await Promise.all(nodes.map((n) => n.close()));
        await server.stop();
      },
    };
  },
  { skip },
);

describe('Redis bus: presence, isolation, errors', { skip }, () => {
  let server: TestRedis;
  let raw: Redis;
  const opened: RedisBus[] = [];
  const node = async (options: Parameters<typeof openRedisBus>[1] = {}) => {
    const bus = await openRedisBus(server.url, options);
    opened.push(bus);
    return bus;
  };
  before(async () => {
    server = await startRedis();
    raw = new Redis(server.url);
  });
  after(async () => {
    await Promise.all(opened.map((b) => b.close()));
    raw?.disconnect();
    await server?.stop();
  });

  test('ping fails once the Redis server is gone (GET /healthz reports the bus down)', async () => {
    const own = await startRedis();
    const bus = await openRedisBus(own.url, {});
    try {
      await bus.ping();
      await own.stop();
      let failed: unknown;
      for (let i = 0; i < 100 && !failed; i++) {
        await bus.ping().then(() => new Promise((r) => setTimeout(r, 50)), (err: unknown) => (failed = err));
      }
      assert.match(String(failed), /Redis (publisher|subscriber) connection is|Connection is closed|ECONNREFUSED/);
    } finally {
      await bus.close();
    }
  });

  test('a node announces the devices whose channel it subscribes, and withdraws them on unsubscribe', async () => {
    const [a, b] = [await node(), await node()];
    assert.deepEqual(await b.holders('dev-p1'), []);
    const unsubscribeA = await a.subscribe(channels.device('dev-p1'), () => {});
    assert.deepEqual(await b.holders('dev-p1'), [a.nodeId]);
    const unsubscribeB = await b.subscribe(channels.device('dev-p1'), () => {});
    assert.deepEqual(await a.holders('dev-p1'), [a.nodeId, b.nodeId].sort());
    await unsubscribeA();
    assert.deepEqual(await b.holders('dev-p1'), [b.nodeId]);
    await unsubscribeB();
    assert.deepEqual(await a.holders('dev-p1'), []);
    await a.subscribe(channels.rpcReply('r'), () => {});
    assert.deepEqual(await a.holders('r'), [], 'only device channels are presence');
  });

  test('a node\'s presence expires with its heartbeat key, so a dead node\'s entries vanish', async () => {
    const a = await node({ presenceTtlMs: 60_000 });
    const observer = await node();
    await a.subscribe(channels.device('dev-p2'), () => {});
    const ttl = await raw.pttl(`fleetgate:node:${a.nodeId}`);
    assert.ok(ttl > 0 && ttl <= 60_000, `heartbeat key has an expiry (${ttl})`);
    await raw.del(`fleetgate:node:${a.nodeId}`); // what expiry does when the node stops beating
    assert.deepEqual(await observer.holders('dev-p2'), []);
    assert.deepEqual(await raw.smembers('fleetgate:presence:dev-p2'), [], 'the stale entry is removed');
  });

  test('a node whose heartbeat lapsed announces its devices again on the next beat', async () => {
    const a = await node({ presenceTtlMs: 300 });
    await a.subscribe(channels.device('dev-p3'), () => {});
    await raw.del(`fleetgate:node:${a.nodeId}`);
    assert.deepEqual(await a.holders('dev-p3'), []);
    let holders: string[] = [];
    for (let i = 0; i < 200 && holders.length === 0; i++) {
      await new Promise((r) => setTimeout(r, 50));
      holders = await a.holders('dev-p3');
    }
    assert.deepEqual(holders, [a.nodeId]);
  });

  test('closing a node withdraws its presence and heartbeat', async () => {
    const a = await node();
    const observer = await node();
    await a.subscribe(channels.device('dev-p4'), () => {});
    await a.close();
    assert.deepEqual(await observer.holders('dev-p4'), []);
    assert.equal(await raw.exists(`fleetgate:node:${a.nodeId}`), 0);
    await assert.rejects(a.subscribe('x', () => {}));
  });

  test('buses with different prefixes (clusters) do not hear each other', async () => {
    const one = await node({ prefix: 'one:' });
    const two = await node({ prefix: 'two:' });
    const heard = new Inbox();
    const fence = new Inbox();
    await two.subscribe('shared', heard.handler);
    await two.subscribe('fence', fence.handler);
    await one.publish('shared', { kind: 'rpc', deviceId: 'd', rpcId: '1' });
    await raw.publish('two:fence', JSON.stringify({ kind: 'rpc', deviceId: 'd', rpcId: 'f' }));
    await fence.until(1);
    await one.publish('fence', { kind: 'rpc', deviceId: 'd', rpcId: 'f' });
    assert.deepEqual(heard.messages, []);
  });

  test('a throwing handler or a malformed message is reported and does not stop other handlers', async () => {
    const errors: string[] = [];
    const a = await node({ onError: (_err, context) => errors.push(context) });
    const inbox = new Inbox();
    await a.subscribe('errors', () => {
      throw new Error('handler bug');
    });
    await a.subscribe('errors', inbox.handler);
    await raw.publish('fleetgate:errors', 'not json');
    await a.publish('errors', { kind: 'rpc', deviceId: 'd', rpcId: '1' });
    await inbox.until(1);
    assert.deepEqual(errors, ['unparseable message on fleetgate:errors', 'handler of fleetgate:errors']);
  });

  test('openRedisBus rejects when Redis cannot be reached', async () => {
    const port = await freePort();
    await assert.rejects(openRedisBus(`redis://127.0.0.1:${port}`));
  });

  test('openBus: "memory" is the in-memory bus, redis:// is Redis, anything else is a ConfigError', async () => {
    const memory = await openBus({ bus: 'memory' });
    assert.ok(memory instanceof MemoryBus);
    const redis = await openBus({ bus: server.url });
    assert.ok(redis instanceof RedisBus);
    await redis.close();
    await assert.rejects(openBus({ bus: 'nats://x' }), ConfigError);
  });
});
