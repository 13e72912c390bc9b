import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createTestCore, silentLogger, type TestCore } from '../support/core.ts';
import { OFFLOAD_AVERAGE_OVER, OFFLOAD_BELOW_UNITS, TransactionBatcher, type BulkOutcome, type BulkWriter } from '../../src/core/transaction-batcher.ts';
import { DEFAULT_TENANT_ID as T } from '../../src/core/model.ts';
import { TEST_ACTOR } from '../support/harness.ts';

let t: TestCore;
let profileId: string;
before(async () => {
  t = await createTestCore();
  profileId = (await t.core.profiles.getDefault(T)).id;
});
after(() => t.close());

function device(name: string) {
  const id = crypto.randomUUID();
  return {
    device: { id, tenantId: T, profileId, name, type: 'default', label: null, additionalInfo: null, createdByProvisioning: false, createdTime: Date.now() },
    creds: { id: crypto.randomUUID(), deviceId: id, credentialsType: 'ACCESS_TOKEN' as const, credentialsId: `tok-${name}`, credentialsValue: null, createdTime: Date.now(), firstUsedTime: null },
  };
}

test('units sharing one commit stay all-or-nothing each', async () => {
  const batcher = new TransactionBatcher(t.store, 100, silentLogger);
  const results = await Promise.allSettled([
    batcher.run(async (tx) => {
      const d = device('unit-ok-1');
      await tx.insertDevice(d.device, d.creds);
      return 'one';
    }),
    batcher.run(async (tx) => {
      const d = device('unit-bad');
      await tx.insertDevice(d.device, d.creds);
      await tx.saveAttributes({ deviceId: d.device.id, scope: 'SERVER_SCOPE', entries: [{ key: 'x', value: { type: 'LONG', value: 1 } }], ts: 1 });
      throw new Error('changed my mind');
    }),
    batcher.run(async (tx) => {
      const d = device('unit-ok-2');
      await tx.insertDevice(d.device, d.creds);
      return 'three';
    }),
  ]);
  assert.deepEqual(results.map((r) => r.status), ['fulfilled', 'rejected', 'fulfilled']);
  assert.equal((results[1] as PromiseRejectedResult).reason.message, 'changed my mind');
  assert.ok(await t.store.findDeviceByName(T, 'unit-ok-1'));
  assert.ok(await t.store.findDeviceByName(T, 'unit-ok-2'));
  assert.equal(await t.store.findDeviceByName(T, 'unit-bad'), undefined);
  assert.equal(await t.store.findCredentialsById('tok-unit-bad'), undefined);
});

test('a unique violation in one unit does not spoil the others', async () => {
  const batcher = new TransactionBatcher(t.store, 100, silentLogger);
  await t.core.devices.save(T, { name: 'taken' }, TEST_ACTOR);
  const results = await Promise.allSettled([
    batcher.run(async (tx) => tx.insertDevice(device('taken').device, device('taken').creds)),
    batcher.run(async (tx) => {
      const d = device('free-after-taken');
      await tx.insertDevice(d.device, d.creds);
    }),
  ]);
  assert.deepEqual(results.map((r) => r.status), ['rejected', 'fulfilled']);
  assert.ok(await t.store.findDeviceByName(T, 'free-after-taken'));
});

test('bulk items of one group reach their writer together; "single" and a writer that throws fall back to each unit alone', async () => {
  const batcher = new TransactionBatcher(t.store, 100, silentLogger);
  const calls: string[][] = [];
  const writer: BulkWriter<string, string> = {
    async write(tx, names) {
      calls.push(names);
      for (const n of names) {
        const d = device(n);
        await tx.insertDevice(d.device, d.creds);
      }
      if (names.includes('bulk-boom')) throw new Error('writer failed');
      return names.map((n): BulkOutcome<string> => (n === 'bulk-alone' ? 'single' : n === 'bulk-refused' ? { ok: false, error: new Error('refused') } : { ok: true, value: `bulk ${n}` }));
    },
  };
  const unit = (name: string) =>
    batcher.run(async (tx) => {
      const d = device(`${name}-by-unit`);
      await tx.insertDevice(d.device, d.creds);
      return `alone ${name}`;
    }, { writer, item: name });
  const first = await Promise.allSettled([unit('bulk-a'), unit('bulk-alone'), unit('bulk-refused'), unit('bulk-b')]);
  assert.deepEqual(calls, [['bulk-a', 'bulk-alone', 'bulk-refused', 'bulk-b']]);
  assert.deepEqual(first.map((r) => (r.status === 'fulfilled' ? r.value : (r.reason as Error).message)), ['bulk bulk-a', 'alone bulk-alone', 'refused', 'bulk bulk-b']);
  assert.ok(await t.store.findDeviceByName(T, 'bulk-alone-by-unit'));

  const second = await Promise.allSettled([unit('bulk-c'), unit('bulk-boom')]);
  assert.deepEqual(second.map((r) => (r.status === 'fulfilled' ? r.value : r.reason)), ['alone bulk-c', 'alone bulk-boom']);
  assert.equal(await t.store.findDeviceByName(T, 'bulk-c'), undefined, 'the failed bulk write was undone');
  assert.ok(await t.store.findDeviceByName(T, 'bulk-c-by-unit'));
});

/** A batcher over the test store that records each group's `offload` option. */
function offloadWatched() {
  const asked: (boolean | undefined)[] = [];
  const store = new Proxy(t.store, {
    get(target, key, receiver) {
      if (key !== 'transaction') return Reflect.get(target, key, receiver);
      return (work: Parameters<typeof target.transaction>[0], options?: Parameters<typeof target.transaction>[1]) => {
        asked.push(options?.offload);
        return target.transaction(work, options);
      };
    },
  });
  return { asked, batcher: new TransactionBatcher(store, 100, silentLogger) };
}

test('small groups are offloaded to the SQLite writer thread, groups of OFFLOAD_BELOW_UNITS or more stay on the event loop', async () => {
  const { asked, batcher } = offloadWatched();
  const group = (prefix: string, n: number) =>
    Promise.all(
      Array.from({ length: n }, (_, i) =>
        batcher.run(async (tx) => {
          const d = device(`${prefix}-${i}`);
          await tx.insertDevice(d.device, d.creds);
          return d.device.id;
        }),
      ),
    );
  const small = await group('offload-small', OFFLOAD_BELOW_UNITS - 1);
  const large = await group('offload-large', OFFLOAD_BELOW_UNITS);
  assert.deepEqual(asked, [true, false]);
  for (const id of [...small, ...large]) assert.ok(await t.store.getDeviceById(id), 'every unit committed');
});

test('a small group among large ones stays on the event loop; a steady load of small groups is offloaded again', async () => {
  const { asked, batcher } = offloadWatched();
  let n = 0;
  const group = (size: number) =>
    Promise.all(
      Array.from({ length: size }, () =>
        batcher.run(async (tx) => {
          const d = device(`typical-${n++}`);
          await tx.insertDevice(d.device, d.creds);
          return d.device.id;
        }),
      ),
    );
  // HTTP provisioning under 64 connections: groups of ~40, then the few requests that arrived during a stall.
  for (let i = 0; i < OFFLOAD_AVERAGE_OVER; i++) await group(40);
  await group(3);
  assert.equal(asked.length, OFFLOAD_AVERAGE_OVER + 1);
  assert.ok(asked.every((offloaded) => offloaded === false), 'the small group after large ones ran on the event loop');
  // MQTT provisioning: ~20 sessions in flight, small groups only; once they are the typical group, they go to the thread.
  asked.length = 0;
  for (let i = 0; i < 4 * OFFLOAD_AVERAGE_OVER; i++) await group(3);
  assert.equal(asked.at(-1), true, 'small groups are offloaded again once they are typical');
  assert.equal(asked[0], false);
  const ids = await group(2);
  for (const id of ids) assert.ok(await t.store.getDeviceById(id), 'every unit committed');
});
