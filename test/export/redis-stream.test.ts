/**
 * Data out to a Redis stream (a real redis-server): messages appended with XADD, capped by MAXLEN, held in the outbox
 * while Redis is down and delivered when it is back.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { Redis } from 'ioredis';
import { startTestServer, type TestServer } from '../support/harness.ts';
import { adminClient, type AdminClient } from '../admin/admin-client.ts';
import { skipUnlessRedis, startRedis, type TestRedis } from '../support/redis.ts';
import { createTokenDevice } from '../support/telemetry-load.ts';
import { eventually } from './receiver.ts';
import { messageTexts, RedisStreamSink, TEXT_SLICE_CHARS } from '../../src/export/redis-stream-sink.ts';

describe('export to a Redis stream', { skip: skipUnlessRedis() }, () => {
  let server: TestServer;
  let api: AdminClient;
  let redis: TestRedis;
  let reader: Redis;

  before(async () => {
    redis = await startRedis();
    server = await startTestServer({ exportRetryBaseMs: 100 });
    api = await adminClient(server);
    reader = new Redis(redis.url, { lazyConnect: true, maxRetriesPerRequest: 1, retryStrategy: () => 100 });
    reader.on('error', () => {});
    await reader.connect();
  });
  after(async () => {
    reader?.disconnect();
    await server?.close();
    await redis?.stop();
  });

  const post = (token: string, body: unknown) => fetch(`${server.httpUrl}/api/v1/${token}/telemetry`, { method: 'POST', body: JSON.stringify(body) });
  const entries = async (stream: string) => (await reader.xrange(stream, '-', '+')).map(([, fields]) => JSON.parse(fields[fields.indexOf('message') + 1]));

  it('appends each message with XADD, in order', async () => {
    const rule = await api.post('/api/export/rule', { name: 'stream', kinds: ['telemetry'], destination: { type: 'redis-stream', url: redis.url, stream: 'fleet:telemetry' } });
    assert.equal(rule.status, 200, rule.text);
    const deviceId = await createTokenDevice(server.httpUrl, await server.adminToken(), 'rs-token', 'rs-dev');
    for (let i = 1; i <= 10; i++) assert.equal((await post('rs-token', { ts: i, values: { n: i } })).status, 200);
    let got: any[] = [];
    await eventually('ten entries in the stream', async () => (got = await entries('fleet:telemetry')).length === 10);
    assert.deepEqual(got.map((m) => m.data.telemetry[0].ts), [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
    assert.equal(got[0].deviceId, deviceId);
    assert.equal(got[0].kind, 'telemetry');
    assert.equal((await api.delete(`/api/export/rule/${rule.json.id.id}`)).status, 200);
  });

  it('caps the stream near MAXLEN', async () => {
    const rule = await api.post('/api/export/rule', { name: 'capped', kinds: ['telemetry'], destination: { type: 'redis-stream', url: redis.url, stream: 'fleet:capped', maxLen: 5 } });
    assert.equal(rule.status, 200, rule.text);
    await createTokenDevice(server.httpUrl, await server.adminToken(), 'rs-cap', 'rs-cap');
    for (let i = 1; i <= 300; i++) assert.equal((await post('rs-cap', { ts: i, values: { n: i } })).status, 200);
    await eventually('the last message in the stream', async () => (await entries('fleet:capped')).some((m) => m.data.telemetry.some((p: any) => p.ts === 300)));
    const length = await reader.xlen('fleet:capped');
    assert.ok(length < 300, `MAXLEN ~ 5 trimmed the stream (length ${length})`);
    assert.equal((await api.delete(`/api/export/rule/${rule.json.id.id}`)).status, 200);
  });

  it('keeps messages while Redis is down and delivers them when it is back', async () => {
    const rule = await api.post('/api/export/rule', { name: 'outage', kinds: ['telemetry'], destination: { type: 'redis-stream', url: redis.url, stream: 'fleet:outage', timeoutMs: 500 } });
    assert.equal(rule.status, 200, rule.text);
    await createTokenDevice(server.httpUrl, await server.adminToken(), 'rs-outage', 'rs-outage');
    const port = redis.port;
    await redis.stop();
    for (let i = 1; i <= 5; i++) assert.equal((await post('rs-outage', { ts: i, values: { n: i } })).status, 200, 'ingestion goes on while the destination is down');
    await eventually('a failed attempt recorded', async () => (await api.get(`/api/export/rule/${rule.json.id.id}`)).json.laneStates.some((l: any) => l.lastError));
    assert.equal((await api.get('/api/export/rules')).json.find((r: any) => r.name === 'outage').pending, 5);
    redis = await startRedis({ port });
    await eventually('all five delivered after the restart', async () => (await entries('fleet:outage').catch(() => [])).length === 5);
  });
});

describe('the Redis stream sink after a timeout', { skip: skipUnlessRedis() }, () => {
  it('appends a batch of megabytes whole and in order, its JSON made over several event-loop turns', async () => {
    const redis = await startRedis();
    const reader = new Redis(redis.url, { maxRetriesPerRequest: 1 });
    const sink = new RedisStreamSink({ type: 'redis-stream', url: redis.url, stream: 'big', maxLen: 0, batchSize: 1000, timeoutMs: 10_000 });
    const messages = Array.from({ length: 400 }, (_, n) => ({ id: String(n), json: JSON.stringify({ n, pad: 'ключ-'.repeat(400 + (n % 7)) }) }));
    let turns = 0;
    let on = true;
    const tick = () => {
      if (!on) return;
      turns++;
      setImmediate(tick);
    };
    try {
      // Nothing but the texts runs meanwhile (no I/O), so every turn the ticker counts is one the texts yielded.
      setImmediate(tick);
      assert.deepEqual(await messageTexts(messages), messages.map((m) => m.json), 'the texts, in order');
      on = false;
      const total = messages.reduce((n, m) => n + m.json.length, 0);
      assert.ok(turns >= Math.floor(total / TEXT_SLICE_CHARS) - 1, `yielded while making ${total} characters of JSON (${turns} turns)`);
      await sink.deliver(messages);
      const got = await reader.xrange('big', '-', '+');
      assert.deepEqual(got.map(([, fields]: [string, string[]]) => [fields[1], fields[3]]), messages.map((m) => [m.id, m.json]), 'every message once, in order, as its JSON');
    } finally {
      on = false;
      await sink.close();
      reader.disconnect();
      await redis.stop();
    }
  });

  it('sends nothing while a timed-out batch is unanswered, and leaves its messages out of the retry once Redis applied it', async () => {
    const redis = await startRedis();
    const admin = new Redis(redis.url, { maxRetriesPerRequest: 1 });
    const sink = new RedisStreamSink({ type: 'redis-stream', url: redis.url, stream: 'late', maxLen: 0, batchSize: 10, timeoutMs: 300 });
    const message = (n: number) => ({ id: String(n), json: `{"n":${n}}` });
    const stream = async () => (await admin.xrange('late', '-', '+')).map(([, fields]) => Number(fields[1]));
    try {
      await sink.deliver([message(0)]);
      // Fault: Redis holds writes (a real server that answers late); the MULTI is queued there, not lost.
      await admin.call('CLIENT', 'PAUSE', '60000', 'WRITE');
      await assert.rejects(sink.deliver([message(1), message(2)]), /no answer within 300 ms/);
      await assert.rejects(sink.deliver([message(1), message(2)]), /still unanswered/, 'the retry is not sent behind the first');
      await admin.call('CLIENT', 'UNPAUSE');
      await eventually('the timed-out batch applied late', async () => (await stream()).length === 3);
      // The retry (the lane's batch again, with a new message behind it) appends only the new message.
      await sink.deliver([message(1), message(2), message(3)]);
      await sink.deliver([message(4)]);
      assert.deepEqual(await stream(), [0, 1, 2, 3, 4], 'each message once, in order');
    } finally {
      await sink.close();
      admin.disconnect();
      await redis.stop();
    }
  });
});
