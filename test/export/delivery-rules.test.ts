/** Pure parts of data out: retry delays, Retry-After parsing, lanes by device, and the masked destination. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { retryDelay } from '../../src/core/export/delivery.ts';
import { EXPORT_PARTITIONS, partitionOf } from '../../src/core/export/model.ts';
import { maskedDestination, parseDestination } from '../../src/core/export/rules.ts';
import { retryAfterMs, webhookBody, webhookSignature } from '../../src/export/webhook-sink.ts';

describe('export delivery rules', () => {
  it('doubles the retry delay per attempt, with jitter in its upper half, up to the cap', () => {
    assert.equal(retryDelay(1, 1000, 300_000, () => 0), 500);
    assert.equal(retryDelay(1, 1000, 300_000, () => 1), 1000);
    assert.equal(retryDelay(4, 1000, 300_000, () => 1), 8000);
    assert.equal(retryDelay(40, 1000, 300_000, () => 1), 300_000);
    assert.equal(retryDelay(40, 1000, 300_000, () => 0), 150_000);
  });

  it('reads Retry-After as seconds or an HTTP date', () => {
    assert.equal(retryAfterMs('3'), 3000);
    assert.equal(retryAfterMs(new Date(10_000).toUTCString(), 4_000), 6_000);
    assert.equal(retryAfterMs('soon'), undefined);
    assert.equal(retryAfterMs(null), undefined);
  });

  it('puts every message of a device in one lane', () => {
    const lanes = new Set(Array.from({ length: 1000 }, (_, i) => partitionOf(`device-${i}`)));
    assert.equal(lanes.size, EXPORT_PARTITIONS, 'devices spread over every lane');
    assert.equal(partitionOf('abc'), partitionOf('abc'));
    assert.equal(partitionOf(null), 0);
  });

  it('never answers a secret, and keeps stored secrets the input leaves out', () => {
    const stored = parseDestination({ type: 'webhook', url: 'https://receiver.example/hook', secret: 's3cret', headers: { Authorization: 'Bearer x' } });
    const masked = JSON.stringify(maskedDestination(stored));
    assert.ok(!masked.includes('s3cret') && !masked.includes('Bearer x'));
    const changed = parseDestination({ type: 'webhook', url: 'https://receiver.example/other' }, stored);
    assert.equal(changed.type === 'webhook' && changed.secret, 's3cret');
    const redis = maskedDestination(parseDestination({ type: 'redis-stream', url: 'redis://:pw123@127.0.0.1:6379/2', stream: 's' }));
    assert.ok(!JSON.stringify(redis).includes('pw123'));
  });
});

describe('webhook body', () => {
  it('is the UTF-8 of the JSON array of the messages, whatever their characters and sizes', () => {
    const texts = [
      '{"a":1}',
      JSON.stringify({ name: 'ключ 温度 🌡️ \u2028', v: 'é'.repeat(5000) }), // 2-byte chars well past the ASCII estimate
      '{"s":"' + '😀'.repeat(3000) + '"}', // surrogate pairs: 4 bytes per 2 units
      '{"ascii":"' + 'x'.repeat(20_000) + '"}',
      JSON.stringify({ z: '\u0000' }),
    ];
    for (const order of [texts, [...texts].reverse(), [texts[2], texts[2], texts[2]], [texts[0]], []]) {
      const messages = order.map((json, i) => ({ id: String(i), json }));
      const expected = Buffer.from(`[${order.join(',')}]`);
      const body = webhookBody(messages);
      assert.ok(body.equals(expected), `${order.length} messages, ${expected.length} bytes`);
      assert.deepEqual(JSON.parse(body.toString('utf8')), order.map((t) => JSON.parse(t)));
    }
  });

  it('fits a large 3-byte message that follows many small 3-byte ones (the buffer grows by what is left to write)', () => {
    // Small messages of 3-byte characters fill the first buffer past its per-character estimate; the one after must
    // still get room for all of its bytes, else it is cut off and the closing bracket lost.
    for (const [count, size] of [[94, 343], [112, 417], [300, 5000]]) {
      const order = [...Array.from({ length: count }, () => '"中文"'), `"${'中'.repeat(size)}"`];
      const messages = order.map((json, i) => ({ id: String(i), json }));
      const body = webhookBody(messages);
      assert.ok(body.equals(Buffer.from(`[${order.join(',')}]`)), `${count} small, one of ${size}`);
    }
  });

  it('encodes lone surrogates as the string encoder does (U+FFFD)', () => {
    const raw = ['"\ud800"', '"a\udc00b"', '"x\ud83d"'];
    const body = webhookBody(raw.map((json, i) => ({ id: String(i), json })));
    assert.ok(body.equals(Buffer.from(`[${raw.join(',')}]`)));
    assert.ok(body.includes(Buffer.from([0xef, 0xbf, 0xbd])));
  });

  it('is signed over the same bytes as its text', () => {
    const messages = [{ id: '1', json: '{"name":"ключ"}' }];
    const body = webhookBody(messages);
    assert.equal(webhookSignature('secret', '1700000000000', body), webhookSignature('secret', '1700000000000', body.toString('utf8')));
  });
});

describe('webhook sink against a hostile receiver', () => {
  it('reads no more than a little of a huge error body', async () => {
    const { createServer } = await import('node:http');
    const { WebhookSink } = await import('../../src/export/webhook-sink.ts');
    let written = 0;
    const server = createServer((req, res) => {
      req.resume();
      res.writeHead(500);
      const chunk = Buffer.alloc(64 * 1024, 'x');
      const pump = () => {
        while (written < 512 * 1024 * 1024 && res.write(chunk)) written += chunk.length;
        if (written < 512 * 1024 * 1024) res.once('drain', pump);
        else res.end();
      };
      res.on('close', () => res.removeAllListeners('drain'));
      pump();
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
    const url = `http://127.0.0.1:${(server.address() as { port: number }).port}/`;
    const sink = new WebhookSink({ type: 'webhook', url, headers: {}, secret: null, batchSize: 1, timeoutMs: 30_000 });
    await assert.rejects(sink.deliver([{ id: '1', json: '{}' }]), (err: Error) => /answered 500: x{200}$/.test(err.message));
    server.closeAllConnections();
    await new Promise((r) => server.close(r));
    assert.ok(written < 64 * 1024 * 1024, `the sink stopped reading early (${written} bytes sent)`);
  });
});

describe('telemetry outbox rows', () => {
  it('render every value type as JSON, one entry per device and ts, the later of a repeated key winning', async () => {
    const { OutboxBuilder } = await import('../../src/core/export/outbox.ts');
    const rules = {
      wants: () => true,
      matching: () => [{ id: 'r1', lanes: 16, destination: { batchSize: 100 } }],
    } as unknown as ConstructorParameters<typeof OutboxBuilder>[0];
    const builder = new OutboxBuilder(rules, { full: false, skipped: () => {} });
    const device = { deviceId: 'd1', deviceName: 'dev "one"', tenantId: 't', profileId: 'p', credentialsType: 'ACCESS_TOKEN' as const };
    builder.noteDevice(device, 'telemetry');
    const batch = {
      attributes: [],
      telemetry: [
        { deviceId: 'd1', ts: 1, key: 'b', value: { type: 'BOOLEAN' as const, value: true } },
        { deviceId: 'd1', ts: 1, key: 'l', value: { type: 'LONG' as const, value: 9007199254740993n } },
        { deviceId: 'd1', ts: 1, key: 'd', value: { type: 'DOUBLE' as const, value: 21.5 } },
        { deviceId: 'd1', ts: 2, key: 's', value: { type: 'STRING' as const, value: 'a "quoted"\nline' } },
        { deviceId: 'd1', ts: 2, key: 'j', value: { type: 'JSON' as const, value: '{"x":[1,2]}' } },
        { deviceId: 'd1', ts: 2, key: 's', value: { type: 'STRING' as const, value: 'later' } },
        { deviceId: 'unknown-device', ts: 3, key: 'x', value: { type: 'LONG' as const, value: 1 } },
      ],
    } as Parameters<typeof builder.decorate>[0];
    builder.decorate(batch);
    assert.equal(batch.outbox?.length, 1, 'one row for the known device; a device never noted is not exported');
    const { unpackMessages } = await import('../../src/core/export/model.ts');
    const payload = JSON.parse(unpackMessages({ ...batch.outbox![0], seq: 1 })[0].payload);
    assert.deepEqual(payload, {
      deviceName: 'dev "one"',
      profileId: 'p',
      telemetry: [
        { ts: 1, values: { b: true, l: '9007199254740993', d: 21.5 } },
        { ts: 2, values: { s: 'later', j: { x: [1, 2] } } },
      ],
    });
  });

  it('put the devices of one lane in one row per commit, at most a batch each, a lone device as a row of its own', async () => {
    const { OutboxBuilder } = await import('../../src/core/export/outbox.ts');
    const { partitionOf, unpackMessages } = await import('../../src/core/export/model.ts');
    const rules = {
      wants: () => true,
      matching: () => [{ id: 'r1', lanes: 16, destination: { batchSize: 2 } }],
    } as unknown as ConstructorParameters<typeof OutboxBuilder>[0];
    const builder = new OutboxBuilder(rules, { full: false, skipped: () => {} });
    // Three devices of one lane and one of another.
    const ids = Array.from({ length: 200 }, (_, i) => `dev-${i}`);
    const lane = ids.filter((id) => partitionOf(id) === partitionOf('dev-0')).slice(0, 3);
    const other = ids.find((id) => partitionOf(id) !== partitionOf('dev-0'))!;
    const points = [...lane, other].map((deviceId, i) => {
      builder.noteDevice({ deviceId, deviceName: deviceId, tenantId: 't', profileId: 'p', credentialsType: 'ACCESS_TOKEN' }, 'telemetry');
      return { deviceId, ts: 10 + i, key: 'k', value: { type: 'LONG' as const, value: i } };
    });
    const batch = { attributes: [], telemetry: points } as Parameters<typeof builder.decorate>[0];
    builder.decorate(batch);
    const rows = batch.outbox!;
    assert.deepEqual(rows.map((r) => [r.partition, r.deviceId, r.messages ?? 1]), [
      [partitionOf(lane[0]), null, 2],
      [partitionOf(lane[0]), lane[2], 1],
      [partitionOf(other), other, 1],
    ]);
    const delivered = rows.flatMap((r, seq) => unpackMessages({ ...r, seq }));
    assert.deepEqual(delivered.map((m) => m.deviceId), [...lane, other], 'each device once, in its lane in the order of the batch');
    delivered.forEach((m, i) => assert.deepEqual(JSON.parse(m.payload), { deviceName: m.deviceId, profileId: 'p', telemetry: [{ ts: 10 + i, values: { k: i } }] }));
  });
});
