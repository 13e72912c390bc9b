/**
 * A webhook body of megabytes is written and sent in slices, an event-loop turn each (src/export/webhook-sink.ts
 * renderWebhookBody, writeInSlices), and a sink writes the next body into the buffer of an answered one (its spares):
 * the bytes must be those of the one-piece body, also when a reused buffer holds a longer earlier body.
 */
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import { describe, it } from 'node:test';
import { compactByDevice, compactRow } from '../../src/core/export/compact-telemetry.ts';
import { messagesOf, type ExportMessage, type OutboxRow } from '../../src/core/export/model.ts';
import type { TsPoint } from '../../src/core/model.ts';
import { renderWebhookBody, webhookBody, WebhookSink, writeInSlices } from '../../src/export/webhook-sink.ts';

/** Compact telemetry rows of `devices` devices with `perDevice` readings each (repeated and changing values). */
function rows(devices: number, perDevice: number, seq0: number): OutboxRow[] {
  const points: TsPoint[] = [];
  for (let d = 0; d < devices; d++) {
    for (let i = 0; i < perDevice; i++) {
      const ts = 1_700_000_000_000 + seq0 * 1000 + i;
      points.push({ deviceId: `device-${d}`, ts, key: 'temperature', value: { type: 'DOUBLE', value: i % 3 === 0 ? 21.5 : 20 + (i % 7) / 4 } });
      points.push({ deviceId: `device-${d}`, ts, key: 'humidity', value: { type: 'LONG', value: 40 + (i % 2) } });
    }
  }
  const numbers = [...compactByDevice(points)].map(([deviceId, n]) => ({ deviceId, prefix: `{"deviceName":"${deviceId}","profileId":"p","telemetry":`, numbers: n }));
  const out: OutboxRow[] = [];
  for (let i = 0; i < numbers.length; i += 8) {
    const chunk = numbers.slice(i, i + 8);
    out.push({ seq: seq0 + i, ruleId: 'r', partition: 1, deviceId: null, kind: 'telemetry', createdTime: 5, payload: '', points: compactRow(chunk), messages: chunk.length });
  }
  return out;
}

const messages = (list: OutboxRow[]): ExportMessage[] => list.flatMap((row) => messagesOf(row, 'rule "r"'));

/** Event-loop turns (setImmediate callbacks of a ticker) that ran while `work` was pending. */
async function turnsDuring<T>(work: () => Promise<T>): Promise<{ result: T; turns: number }> {
  let turns = 0;
  let on = true;
  const tick = () => {
    if (!on) return;
    turns++;
    setImmediate(tick);
  };
  setImmediate(tick);
  const result = await work();
  on = false;
  return { result, turns };
}

describe('webhook body in slices', () => {
  it('is the one-piece body byte for byte, written over many event-loop turns', async () => {
    const batch = messages(rows(40, 60, 1));
    const whole = webhookBody(batch);
    assert.ok(whole.length > 64 * 1024, `a body of several slices (${whole.length} bytes)`);
    const { result, turns } = await turnsDuring(() => renderWebhookBody(batch, 8 * 1024));
    assert.ok(result.equals(whole), 'the same bytes');
    // A slice ends at the first message that takes it past 8 KiB (messages of ~4 KiB here: 3 a slice, ~13 slices).
    assert.ok(turns >= 10, `yielded between slices (${turns} turns for ${whole.length} bytes)`);
    // Text messages too, and a slice smaller than one message: one message a slice, never none.
    const texts = [{ id: '1', json: '{"a":"' + 'x'.repeat(5000) + '"}' }, { id: '2', json: '{"b":"ключ"}' }, ...batch.slice(0, 3)];
    assert.ok((await renderWebhookBody(texts, 16)).equals(webhookBody(texts)));
    assert.ok((await renderWebhookBody([], 16)).equals(Buffer.from('[]')));
  });

  it('writes into a reused buffer that holds an earlier, longer body, and only into one large enough', async () => {
    const long = messages(rows(30, 50, 1));
    const short = messages(rows(3, 10, 900));
    const first = await renderWebhookBody(long, 4096);
    const reused = Buffer.from(first.buffer, first.byteOffset, first.length);
    const second = await renderWebhookBody(short, 4096, reused);
    assert.equal(second.buffer, first.buffer, 'written into the reused buffer');
    assert.ok(second.equals(webhookBody(short)), 'only the new body, none of the old bytes');
    const small = Buffer.alloc(16);
    const third = await renderWebhookBody(long, 4096, small);
    assert.notEqual(third.buffer, small.buffer, 'a buffer too small is not written into');
    assert.ok(third.equals(webhookBody(long)));
  });
});

describe('webhook sink sending bodies in slices', () => {
  async function server(answer: (body: Buffer) => number = () => 200) {
    const bodies: Buffer[] = [];
    const srv = createServer(async (req, res) => {
      const chunks: Buffer[] = [];
      for await (const c of req) chunks.push(c as Buffer);
      const body = Buffer.concat(chunks);
      bodies.push(body);
      res.writeHead(answer(body)).end();
    });
    await new Promise<void>((r) => srv.listen(0, '127.0.0.1', () => r()));
    const url = `http://127.0.0.1:${(srv.address() as { port: number }).port}/hook`;
    return {
      url,
      bodies,
      close: () => {
        srv.closeAllConnections();
        return new Promise<void>((resolve, reject) => srv.close((err) => (err && (err as NodeJS.ErrnoException).code !== 'ERR_SERVER_NOT_RUNNING' ? reject(err) : resolve())));
      },
    };
  }

  it('writeInSlices sends the exact body, in several writes', async () => {
    const { url, bodies, close } = await server();
    try {
      const http = await import('node:http');
      const payload = Buffer.alloc(1024 * 1024 + 7);
      for (let i = 0; i < payload.length; i++) payload[i] = (i * 31 + (i >> 10)) & 0xff;
      const writes: number[] = [];
      await new Promise<void>((resolve, reject) => {
        const req = http.request(url, { method: 'POST', headers: { 'content-length': payload.length } }, (res) => {
          res.resume();
          res.on('end', resolve);
        });
        req.on('error', reject);
        const write = req.write.bind(req);
        req.write = ((chunk: Buffer, ...rest: never[]) => {
          writes.push(chunk.length);
          return write(chunk, ...rest);
        }) as typeof req.write;
        void writeInSlices(req, payload, 64 * 1024);
      });
      assert.equal(bodies.length, 1);
      assert.ok(bodies[0].equals(payload), 'the same bytes arrived');
      assert.equal(writes.length, 16, 'all but the last slice written one by one (the last with end)');
    } finally {
      await close();
    }
  });

  it('delivers bodies of different sizes through its reused buffers, each exactly, and keeps no buffer of a failed request', async () => {
    let fail = false;
    const { url, bodies, close } = await server(() => (fail ? 500 : 200));
    const sink = new WebhookSink({ type: 'webhook', url, headers: {}, secret: 'k', batchSize: 100_000, timeoutMs: 10_000 });
    const spares = (sink as unknown as { spares: Buffer[] }).spares;
    try {
      const batches = [rows(30, 60, 1), rows(2, 5, 5000), rows(20, 30, 9000), rows(1, 1, 20000)].map(messages);
      for (const batch of batches) await sink.deliver(batch);
      assert.deepEqual(bodies.map((b) => b.toString('utf8')), batches.map((b) => webhookBody(b).toString('utf8')), 'every body as rendered in one piece');
      assert.equal(spares.length, 1, 'one buffer, written again by each later body');
      // A new buffer has room to spare: a body a tenth larger than the first still fits it.
      const kept = spares[0].buffer;
      const larger = messages(rows(33, 60, 30_000));
      await sink.deliver(larger);
      assert.equal(spares[0].buffer, kept, 'the larger body was written into the same buffer');
      assert.ok(bodies[bodies.length - 1].equals(webhookBody(larger)));
      fail = true;
      await assert.rejects(sink.deliver(batches[0]), /answered 500/);
      assert.equal(spares.length, 1, 'an answered request\'s buffer is kept whatever the status (its body was sent whole)');
      assert.ok(bodies[bodies.length - 1].equals(webhookBody(batches[0])));
      await close();
      await assert.rejects(sink.deliver(batches[2]), /failed/);
      assert.equal(spares.length, 0, 'the buffer of a request that got no answer is not used again');
    } finally {
      await sink.close();
      await close().catch(() => {});
    }
  });
});
