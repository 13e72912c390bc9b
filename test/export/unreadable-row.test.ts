/**
 * An outbox row that cannot be decoded (a damaged compact form) goes to the dead letters alone, with an error saying
 * so, and everything else of its lane and of the round is delivered; replaying it delivers it as it is. On SQLite and
 * on a real PostgreSQL, through ExportDelivery's rounds to a real HTTP receiver.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { ExportDelivery, DEFAULT_EXPORT_SETTINGS } from '../../src/core/export/delivery.ts';
import { partitionOf } from '../../src/core/export/model.ts';
import { OutboxBuilder } from '../../src/core/export/outbox.ts';
import { ExportRules } from '../../src/core/export/rules.ts';
import { openExportSink } from '../../src/export/open-sink.ts';
import type { TsPoint } from '../../src/core/model.ts';
import type { Store } from '../../src/core/ports/store.ts';
import { skipUnlessPostgres, startPostgres } from '../support/postgres.ts';
import { openPostgresStore } from '../../src/store/postgres.ts';
import { startPostgresStore } from '../support/postgres-store.ts';
import { startSqliteStore } from '../support/sqlite-store.ts';
import { startReceiver, type Receiver } from './receiver.ts';

const warnings: Record<string, unknown>[] = [];
const logger = { info() {}, warn: (fields: Record<string, unknown>) => void warnings.push(fields), error() {}, debug() {} };

/** Two devices in two different lanes. */
function twoDevices() {
  const ids: string[] = [];
  for (let i = 0; ids.length < 2; i++) {
    const id = `5e6f7a8b-1c2d-4e3f-8a9b-${String(i).padStart(12, '0')}`;
    if (ids.length === 0 || partitionOf(id) !== partitionOf(ids[0])) ids.push(id);
  }
  return ids.map((deviceId, i) => ({ deviceId, deviceName: `unreadable-${i}`, tenantId: 'tenant', profileId: '7f000000-0000-4000-8000-000000000001', credentialsType: 'ACCESS_TOKEN' as const }));
}

/** Damaged compact rows: an unknown version, and one whose lengths run past its end. */
const DAMAGED = [Buffer.from([9, 0, 0, 0]), Buffer.from([1, 5, 0])];

/**
 * The scenario on `nodes` (one store each, all on one database): each node runs its own delivery; a round is every
 * node's tick at once.
 */
async function unreadableRowScenario(receiver: Receiver, nodes: Store[]): Promise<void> {
  const store = nodes[0];
  const deadLettered: number[] = [];
  const deliveries = nodes.map((node) => {
    const rules = new ExportRules(node, async () => true, async () => {});
    const delivery = new ExportDelivery(node, rules, openExportSink, { ...DEFAULT_EXPORT_SETTINGS, concurrency: 16, retryBaseMs: 60_000 }, logger, {
      deadLettered: (_rule, n) => void deadLettered.push(n),
    });
    return { rules, delivery };
  });
  const rounds = async () => {
    for (let round = 0; round < 20; round++) {
      const results = await Promise.all(deliveries.map(({ delivery }) => delivery.tick()));
      if (results.every((r) => r === 'none')) return;
    }
  };
  try {
    const { rules, delivery } = deliveries[0];
    const outbox = new OutboxBuilder(rules, delivery);
    const rule = await rules.save('tenant', { name: 'unreadable', kinds: ['telemetry'], lanes: 16, destination: { type: 'webhook', url: receiver.url, batchSize: 100 } });
    for (const d of deliveries) await d.rules.reload();
    const devices = twoDevices();
    const commit = async (ts: number) => {
      const telemetry: TsPoint[] = devices.map((d) => {
        outbox.noteDevice(d, 'telemetry');
        return { deviceId: d.deviceId, ts, key: 'n', value: { type: 'LONG', value: ts } };
      });
      const batch = { telemetry, attributes: [] as never[], outbox: undefined as never };
      outbox.decorate(batch);
      await store.writeBatch(batch);
      delivery.remember(batch.outbox);
    };
    await commit(1);
    const first = devices[0].deviceId;
    await store.exports.insertOutbox(DAMAGED.map((points) => ({ ruleId: rule.id, partition: partitionOf(first), deviceId: first, kind: 'telemetry' as const, createdTime: Date.now(), payload: '', points })));
    await commit(2);

    await rounds();
    for (const d of devices) {
      const ts = receiver.accepted.filter((m) => m.deviceId === d.deviceId).flatMap((m) => m.data.telemetry.map((p: { ts: number }) => p.ts));
      assert.deepEqual(ts, [1, 2], `${d.deviceName}: every readable message delivered, in order`);
    }
    assert.equal([...(await store.exports.countOutbox()).values()].reduce((a, b) => a + b, 0), 0, 'the outbox is empty');
    const letters = await store.exports.listDeadLetters([rule.id], { page: 0, pageSize: 10 });
    assert.equal(letters.totalElements, 2, 'each unreadable row dead-lettered once');
    assert.match(letters.data[0].lastError ?? '', /^unreadable outbox row \d+: unknown compact outbox row version 9$/);
    assert.match(letters.data[1].lastError ?? '', /^unreadable outbox row \d+: /);
    assert.deepEqual(letters.data.map((l) => Buffer.from(JSON.parse(l.payload).unreadable, 'base64')), DAMAGED, 'the stored bytes are kept');
    assert.deepEqual(deadLettered, [1, 1]);
    assert.ok(warnings.some((w) => w.event === 'export_dead_letter' && /unreadable/.test(String(w.error))));

    // A replay delivers them as they are: the lane does not stall again.
    assert.equal(await store.exports.replayDeadLetters([rule.id]), 2);
    await rounds();
    const replayed = receiver.accepted.filter((m) => m.data && typeof m.data.unreadable === 'string');
    assert.equal(replayed.length, 2);
    assert.equal((await store.exports.listDeadLetters([rule.id], { page: 0, pageSize: 10 })).totalElements, 0);
  } finally {
    for (const { delivery } of deliveries) await delivery.close();
  }
}

function contract(name: string, open: () => Promise<{ store: Store; close(): Promise<void> }>, skip?: string | false) {
  describe(`an unreadable outbox row on ${name}`, { skip }, () => {
    let receiver: Receiver;
    before(async () => {
      receiver = await startReceiver();
      receiver.answer = () => ({ status: 200 });
    });
    after(async () => {
      await receiver?.close();
    });

    it('is dead-lettered with a clear error while the rest of its lane and the other lanes are delivered', async () => {
      const { store, close } = await open();
      try {
        await unreadableRowScenario(receiver, [store]);
      } finally {
        await close();
      }
    });
  });
}

contract('SQLite', () => startSqliteStore());
contract('PostgreSQL', startPostgresStore, skipUnlessPostgres());

describe('an unreadable outbox row with two nodes on one PostgreSQL database', { skip: skipUnlessPostgres() }, () => {
  it('is dead-lettered once, by whichever node holds its lane, and the rest is delivered once', async () => {
    const pg = await startPostgres();
    const receiver = await startReceiver();
    receiver.answer = () => ({ status: 200 });
    const stores: Store[] = [];
    try {
      const url = await pg.createDatabase();
      stores.push(await openPostgresStore(url));
      stores.push(await openPostgresStore(url));
      await unreadableRowScenario(receiver, stores);
    } finally {
      for (const s of stores) await s.close();
      await receiver.close();
      await pg.stop();
    }
  });
});
