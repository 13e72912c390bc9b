/**
 * Ordered PUBACKs: sent in arrival order once their work is done, the ones ready in one turn of the event loop
 * in one write, encoded byte for byte as mqtt-packet would encode them.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import mqttPacket from 'mqtt-packet';
import { OrderedAcks } from '../../../src/transports/mqtt/acks.ts';

function acks(version: number, maxSize?: number) {
  const writes: Buffer[] = [];
  const queue = new OrderedAcks({
    get version() {
      return version;
    },
    get clientMaxPacketSize() {
      return maxSize;
    },
    write: (b: Buffer) => writes.push(b),
  });
  return { queue, writes };
}

const tick = () => new Promise<void>((resolve) => process.nextTick(resolve));

const generated = (version: 3 | 4 | 5, messageId: number, reasonCode: number): Buffer =>
  mqttPacket.generate({ cmd: 'puback', messageId, reasonCode }, { protocolVersion: version });

describe('OrderedAcks', () => {
  it('holds a finished ack until every earlier one is finished, then writes the run at once', async () => {
    const { queue, writes } = acks(4);
    const a = queue.enqueue(1);
    const b = queue.enqueue(2);
    const c = queue.enqueue(3);
    queue.complete(c, 0);
    queue.complete(b, 0);
    await tick();
    assert.equal(writes.length, 0);
    queue.complete(a, 0);
    await tick();
    assert.equal(writes.length, 1);
    assert.deepEqual(writes[0], Buffer.concat([generated(4, 1, 0), generated(4, 2, 0), generated(4, 3, 0)]));
    assert.equal(queue.size, 0);
  });

  for (const version of [3, 4, 5] as const) {
    it(`encodes v${version} PUBACKs exactly as mqtt-packet does`, () => {
      for (const [id, reason] of [[1, 0], [258, 0x10], [65535, 0x80], [42, 0x99], [7, 0x90]]) {
        const { queue, writes } = acks(version);
        queue.complete(queue.enqueue(id), reason);
        queue.flushReady();
        assert.deepEqual(writes[0], generated(version, id, version === 5 ? reason : 0), `id ${id} reason ${reason}`);
      }
    });
  }

  it('encodes a v5 PUBACK whose Reason String needs multi-byte lengths exactly as mqtt-packet does (MQTT 5.0 §1.5.5)', () => {
    // 124 bytes is the last Reason String whose Property and Remaining Lengths fit one byte each.
    for (const length of [1, 120, 124, 125, 126, 200, 1024, 20_000]) {
      const { queue, writes } = acks(5);
      const text = 'é'.repeat(length >> 1) + 'r'.repeat(length & 1);
      const first = { messageId: 300, reason: undefined, reasonString: Buffer.from(text) };
      queue.add(first);
      queue.complete(queue.enqueue(301), 0x83, 'second');
      queue.complete(first, 0x87);
      queue.flushReady();
      const expected = Buffer.concat([
        mqttPacket.generate({ cmd: 'puback', messageId: 300, reasonCode: 0x87, properties: { reasonString: text } }, { protocolVersion: 5 }),
        mqttPacket.generate({ cmd: 'puback', messageId: 301, reasonCode: 0x83, properties: { reasonString: 'second' } }, { protocolVersion: 5 }),
      ]);
      assert.deepEqual(writes[0], expected, `Reason String of ${length} bytes`);
    }
  });

  it('writes the acks completed in one turn together, and at once when another packet is about to be sent', async () => {
    const { queue, writes } = acks(4);
    const pending = [1, 2, 3, 4].map((id) => queue.enqueue(id));
    queue.complete(pending[0], 0);
    queue.complete(pending[1], 0);
    assert.equal(writes.length, 0, 'not before the turn ends');
    queue.flushReady(); // as the connection does before any other packet
    assert.deepEqual(writes, [Buffer.concat([generated(4, 1, 0), generated(4, 2, 0)])]);
    queue.complete(pending[2], 0);
    queue.complete(pending[3], 0);
    await tick();
    assert.deepEqual(writes[1], Buffer.concat([generated(4, 3, 0), generated(4, 4, 0)]));
    assert.equal(writes.length, 2);
  });

  it('leaves out acks larger than the client accepts', async () => {
    const { queue, writes } = acks(5, 4);
    const ok = queue.enqueue(1);
    const refused = queue.enqueue(2);
    queue.complete(refused, 0x80); // 6 bytes
    queue.complete(ok, 0);
    await tick();
    assert.deepEqual(writes, [generated(5, 1, 0)]);
    assert.equal(queue.size, 0);
  });

  it('stays bounded on a connection that always has an ack outstanding', () => {
    const { queue, writes } = acks(4);
    let previous = queue.enqueue(0);
    for (let id = 1; id <= 100_000; id++) {
      const next = queue.enqueue(id % 65536);
      queue.complete(previous, 0);
      queue.flushReady();
      previous = next;
    }
    assert.equal(queue.size, 1);
    assert.equal(writes.length, 100_000);
    const slots = (queue as unknown as { slots: unknown[] }).slots;
    assert.ok(slots.length <= 4, 'the ring did not grow');
    assert.equal(slots.filter((slot) => slot !== undefined).length, 1, 'the spent acks were dropped');
  });

  it('keeps arrival order through its ring growing and wrapping (random completion orders)', async () => {
    let seed = 5;
    const random = () => (seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
    const { queue, writes } = acks(4);
    const open: { id: number; ack: ReturnType<typeof queue.enqueue> }[] = [];
    const expected: number[] = [];
    let nextId = 1;
    let done = 0;
    for (let step = 0; step < 20_000; step++) {
      if (open.length < 1 + Math.floor(random() * 100) && random() < 0.6) {
        const id = nextId++ % 65536;
        const ack = queue.enqueue(id);
        open.push({ id, ack });
        expected.push(id);
      } else if (open.length > 0) {
        const i = Math.floor(random() * open.length);
        queue.complete(open[i].ack, 0);
        open.splice(i, 1);
        done++;
      }
      if (random() < 0.2) queue.flushReady();
      if (random() < 0.05) await tick();
    }
    for (const { ack } of open.splice(0)) queue.complete(ack, 0);
    await tick();
    assert.equal(queue.size, 0);
    const sent = Buffer.concat(writes);
    assert.equal(sent.length, 4 * expected.length);
    for (let i = 0; i < expected.length; i++) assert.equal(sent.readUInt16BE(4 * i + 2), expected[i], `ack ${i}`);
    assert.ok(done > 5_000);
  });
});
