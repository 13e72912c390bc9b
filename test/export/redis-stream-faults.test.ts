/**
 * The Redis stream sink under faults, with a real redis-server: frozen with SIGSTOP (a batch times out and is applied
 * later), a connection that dies after Redis applied a batch (ioredis must not resend it behind delivery's back), and a
 * connection that goes silent for good (the sink must not stay blocked). In every case nothing is lost, and a message
 * appended twice is one whose first attempt the sink reported as failed (delivery counts it and delivers it again).
 */
import assert from 'node:assert/strict';
import { after, afterEach, before, describe, it } from 'node:test';
import { Redis } from 'ioredis';
import { RedisStreamSink } from '../../src/export/redis-stream-sink.ts';
import { startFaultProxy, type FaultProxy } from '../support/fault-proxy.ts';
import { skipUnlessRedis, startRedis, type TestRedis } from '../support/redis.ts';
import { eventually } from './receiver.ts';

const message = (n: number) => ({ id: String(n), json: `{"n":${n}}` });

describe('the Redis stream sink under faults', { skip: skipUnlessRedis() }, () => {
  let redis: TestRedis;
  let admin: Redis;
  let proxy: FaultProxy | undefined;
  let sink: RedisStreamSink | undefined;
  let streamName = '';
  let serial = 0;

  before(async () => {
    redis = await startRedis();
    admin = new Redis(redis.url, { maxRetriesPerRequest: 1 });
  });
  after(async () => {
    admin?.disconnect();
    await redis?.stop();
  });
  afterEach(async () => {
    redis.resume();
    await sink?.close();
    await proxy?.close();
    sink = proxy = undefined;
  });

  const stream = async () => (await admin.xrange(streamName, '-', '+')).map(([, fields]) => Number(fields[1]));
  const newSink = (url: string, timeoutMs: number, holdMs?: number) => {
    streamName = `faults-${++serial}`;
    return (sink = new RedisStreamSink({ type: 'redis-stream', url, stream: streamName, maxLen: 0, batchSize: 10, timeoutMs }, { holdMs }));
  };
  /** Delivers `batch` as delivery does: again after each failure, until it is accepted (bounded). */
  const deliverUntilAccepted = async (batch: ReturnType<typeof message>[]) => {
    let failures = 0;
    await eventually('the batch accepted', async () => {
      try {
        await sink!.deliver(batch);
        return true;
      } catch {
        failures++;
        return false;
      }
    });
    return failures;
  };

  it('SIGSTOP: a batch that timed out holds the sink until Redis answers, and the retry leaves out what it applied', async () => {
    newSink(redis.url, 300, 120_000);
    await sink!.deliver([message(0)]);
    redis.pause();
    await assert.rejects(sink!.deliver([message(1), message(2)]), /no answer within 300 ms/);
    await assert.rejects(sink!.deliver([message(1), message(2)]), /still unanswered/, 'nothing overtakes the unanswered batch');
    redis.resume();
    await eventually('the timed-out batch applied late', async () => (await stream()).length === 3);
    await deliverUntilAccepted([message(1), message(2), message(3)]);
    assert.deepEqual(await stream(), [0, 1, 2, 3], 'each message once, in order');
  });

  it('a connection that dies after Redis applied a batch: the sink reports it failed instead of ioredis resending it', async () => {
    proxy = await startFaultProxy(redis.port);
    newSink(`redis://127.0.0.1:${proxy.port}`, 5_000);
    await sink!.deliver([message(0)]);
    proxy.dropNextAnswer();
    await assert.rejects(sink!.deliver([message(1), message(2)]), /connection closed before the answer/);
    // Redis applied it once; nothing else sent it again while delivery was told it failed.
    await new Promise((r) => setTimeout(r, 500));
    assert.deepEqual(await stream(), [0, 1, 2]);
    // Delivery sends the batch again: a duplicate it knows of (a failed attempt, then a success), nothing lost.
    assert.equal(await deliverUntilAccepted([message(1), message(2)]), 0);
    await sink!.deliver([message(3)]);
    assert.deepEqual(await stream(), [0, 1, 2, 1, 2, 3]);
  });

  it('a connection that goes silent for good: after the hold the sink reconnects and delivers, nothing lost', async () => {
    proxy = await startFaultProxy(redis.port);
    newSink(`redis://127.0.0.1:${proxy.port}`, 300, 1_000);
    await sink!.deliver([message(0)]);
    proxy.silenceOpenConnections();
    await assert.rejects(sink!.deliver([message(1), message(2)]), /no answer within 300 ms/);
    const failures = await deliverUntilAccepted([message(1), message(2), message(3)]);
    assert.ok(failures >= 1, 'held while the silent connection might still answer');
    assert.ok(proxy.accepted >= 2, 'a new connection');
    assert.deepEqual(await stream(), [0, 1, 2, 3]);
  });
});
