/**
 * Delivery sends the batches of several lanes of one rule in one request (ExportDelivery.tick, groupByRequest), on
 * SQLite and on a real PostgreSQL, to a real HTTP receiver: each request stays within the rule's batch size, each
 * device keeps its order, and when the receiver refuses a request of several lanes each lane is tried alone, so the
 * lane holding the refused message is the only one held back.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { Registry } from 'prom-client';
import { ExportDelivery, DEFAULT_EXPORT_SETTINGS, groupByRequest, type ExportObserver } from '../../src/core/export/delivery.ts';
import { exportMetrics } from '../../src/metrics/export-metrics.ts';
import { partitionOf, type ExportRule } from '../../src/core/export/model.ts';
import { OutboxBuilder } from '../../src/core/export/outbox.ts';
import { ExportRules } from '../../src/core/export/rules.ts';
import { openExportSink } from '../../src/export/open-sink.ts';
import type { TsPoint } from '../../src/core/model.ts';
import type { Store } from '../../src/core/ports/store.ts';
import { skipUnlessPostgres } from '../support/postgres.ts';
import { startPostgresStore } from '../support/postgres-store.ts';
import { startSqliteStore } from '../support/sqlite-store.ts';
import { startReceiver, type Receiver } from './receiver.ts';

const quiet = { info() {}, warn() {}, error() {}, debug() {} };

/** Devices in four different lanes, two in each (ids picked by their lane). */
function devicesInLanes(): { deviceId: string; deviceName: string; tenantId: string; profileId: string; credentialsType: 'ACCESS_TOKEN' }[] {
  const byLane = new Map<number, string[]>();
  for (let i = 0; [...byLane.values()].filter((ids) => ids.length >= 2).length < 4; i++) {
    const id = `0d1e2f30-4a5b-4c6d-8e9f-${String(i).padStart(12, '0')}`;
    const lane = partitionOf(id);
    const ids = byLane.get(lane) ?? [];
    if (ids.length < 2 && (byLane.has(lane) || byLane.size < 4)) byLane.set(lane, [...ids, id]);
  }
  return [...byLane.values()].flat().map((deviceId, i) => ({ deviceId, deviceName: `dev-${i}`, tenantId: 'tenant', profileId: '7f000000-0000-4000-8000-000000000001', credentialsType: 'ACCESS_TOKEN' }));
}

describe('grouping lanes into requests', () => {
  const rule = (id: string, batchSize: number) => ({ id, destination: { batchSize } }) as unknown as ExportRule;
  it('puts the batches of one rule in one request while they fit its batch size, in claim order', () => {
    const a = rule('a', 10);
    const b = rule('b', 10);
    const batch = (r: ExportRule, n: number, name: string) => ({ rule: r, messages: Array.from({ length: n }), name });
    const groups = groupByRequest([batch(a, 4, 'a1'), batch(b, 9, 'b1'), batch(a, 6, 'a2'), batch(a, 1, 'a3'), batch(b, 2, 'b2'), batch(a, 10, 'a4')]);
    assert.deepEqual(groups.map((g) => g.map((x) => x.name)), [['a1', 'a2'], ['b1'], ['a3'], ['b2'], ['a4']]);
  });
});

function contract(name: string, open: () => Promise<{ store: Store; close(): Promise<void> }>, skip?: string | false) {
  describe(`export requests of several lanes on ${name}`, { skip }, () => {
    let receiver: Receiver;
    before(async () => {
      receiver = await startReceiver();
    });
    after(async () => {
      await receiver?.close();
    });

    async function setup(batchSize: number, observer?: ExportObserver) {
      const { store, close } = await open();
      const rules = new ExportRules(store, async () => true, async () => {});
      const delivery = new ExportDelivery(store, rules, openExportSink, { ...DEFAULT_EXPORT_SETTINGS, concurrency: 16, retryBaseMs: 60_000 }, quiet, observer);
      const outbox = new OutboxBuilder(rules, delivery);
      const rule = await rules.save('tenant', { name: 'lanes', kinds: ['telemetry'], lanes: 16, destination: { type: 'webhook', url: receiver.url, batchSize } });
      await rules.reload();
      const devices = devicesInLanes();
      // Three commits, each a message of every device (the SQLite store reports seqs, so delivery reads from memory).
      for (let c = 1; c <= 3; c++) {
        const telemetry: TsPoint[] = [];
        for (const d of devices) {
          outbox.noteDevice(d, 'telemetry');
          telemetry.push({ deviceId: d.deviceId, ts: c, key: 'n', value: { type: 'LONG', value: c } });
        }
        const batch = { telemetry, attributes: [] as never[], outbox: undefined as never };
        outbox.decorate(batch);
        await store.writeBatch(batch);
        delivery.remember(batch.outbox);
      }
      return {
        store,
        rules,
        rule,
        delivery,
        devices,
        async close() {
          await delivery.close();
          await close();
        },
      };
    }

    it('sends several lanes in one POST within the batch size, every device in order', async () => {
      receiver.deliveries.length = 0;
      receiver.accepted.length = 0;
      receiver.answer = () => ({ status: 200 });
      // 4 lanes x 2 devices x 3 commits; a lane's batch is 6 messages (3 rows of 2), so 12 fit a request: 2 POSTs.
      const t = await setup(12);
      try {
        while ((await t.delivery.tick()) !== 'none');
        assert.equal(receiver.deliveries.length, 2, 'two lanes to a request');
        for (const d of receiver.deliveries) {
          const messages = JSON.parse(d.body) as { deviceId: string }[];
          assert.equal(messages.length, 12);
          assert.equal(new Set(messages.map((m) => partitionOf(m.deviceId))).size, 2, 'each request holds two lanes');
        }
        for (const device of t.devices) {
          const ts = receiver.accepted.filter((m) => m.deviceId === device.deviceId).flatMap((m) => m.data.telemetry.map((p: { ts: number }) => p.ts));
          assert.deepEqual(ts, [1, 2, 3], `${device.deviceId} in commit order, once each`);
        }
        assert.equal([...(await t.store.exports.countOutbox()).values()].reduce((a, b) => a + b, 0), 0, 'every delivered row deleted');
      } finally {
        await t.close();
      }
    });

    it('tries each lane alone when the receiver refuses a request of several, holding back only the refused lane', async () => {
      receiver.deliveries.length = 0;
      receiver.accepted.length = 0;
      const registry = new Registry();
      const t = await setup(1000, exportMetrics(registry));
      const refused = t.devices[0].deviceId;
      receiver.answer = ({ body }) => (body.includes(refused) ? { status: 400 } : { status: 200 });
      try {
        while ((await t.delivery.tick()) !== 'none');
        assert.equal(receiver.deliveries[0].status, 400, 'the request of every lane was refused first');
        assert.equal(new Set((JSON.parse(receiver.deliveries[0].body) as { deviceId: string }[]).map((m) => partitionOf(m.deviceId))).size, 4);
        const lanesAccepted = new Set(receiver.accepted.map((m) => partitionOf(m.deviceId)));
        assert.equal(lanesAccepted.size, 3, 'the other three lanes delivered');
        assert.ok(!lanesAccepted.has(partitionOf(refused)));
        const waiting = await t.store.exports.countOutbox();
        assert.equal([...waiting.values()].reduce((a, b) => a + b, 0), 6, "the refused lane's six messages (two devices, three commits) wait for their retry");
        const refusals = receiver.deliveries.filter((d) => d.status >= 400).length;
        assert.equal(refusals, 2, 'the shared request and the refused lane\'s own');
        assert.equal((await registry.getSingleMetric('fleetgate_export_failures_total')!.get()).values.reduce((a, v) => a + v.value, 0), refusals, 'each failed request counted once');
      } finally {
        await t.close();
      }
    });

    it('backs every lane off by a shared request\'s Retry-After without sending the lanes alone', async () => {
      receiver.deliveries.length = 0;
      receiver.accepted.length = 0;
      const registry = new Registry();
      const t = await setup(1000, exportMetrics(registry));
      receiver.answer = () => ({ status: 429, headers: { 'retry-after': '120' } });
      try {
        const before = Date.now();
        assert.equal(await t.delivery.tick(), 'none');
        assert.equal(receiver.deliveries.length, 1, 'the receiver said when to come back: no request more this round');
        const lanes = (await t.store.exports.listLanes((await t.store.exports.listRules())[0].id)).filter((l) => l.attempts > 0);
        assert.equal(lanes.length, 4, 'all four lanes backed off');
        for (const lane of lanes) assert.ok(lane.nextAttemptTime >= before + 120_000, `lane ${lane.partition} waits the Retry-After`);
        assert.equal(await t.delivery.tick(), 'none');
        assert.equal(receiver.deliveries.length, 1, 'nothing due before the Retry-After');
        assert.equal((await registry.getSingleMetric('fleetgate_export_failures_total')!.get()).values.reduce((a, v) => a + v.value, 0), 1, 'one failed request of four lanes: one failure');
      } finally {
        await t.close();
      }
    });

    it('sends nothing of a rule disabled while its lanes were being read, and leaves its lanes free', async () => {
      receiver.deliveries.length = 0;
      receiver.accepted.length = 0;
      receiver.answer = () => ({ status: 200 });
      const t = await setup(12);
      try {
        // The rule is disabled (as the admin API does, on this node) right after the first lane's rows were read.
        const exports = t.store.exports;
        let disabled = false;
        const racing = {
          exports: {
            ...exports,
            readOutbox: async (...args: Parameters<typeof exports.readOutbox>) => {
              const rows = await exports.readOutbox(...args);
              if (!disabled) {
                disabled = true;
                await t.rules.save('tenant', { enabled: false }, t.rule.id);
              }
              return rows;
            },
          },
        };
        const delivery = new ExportDelivery(racing, t.rules, openExportSink, { ...DEFAULT_EXPORT_SETTINGS, concurrency: 16, retryBaseMs: 60_000 }, quiet);
        try {
          assert.equal(await delivery.tick(), 'none');
          assert.ok(disabled);
          assert.equal(receiver.deliveries.length, 0, 'no request for the disabled rule');
          const lanes = await t.store.exports.listLanes(t.rule.id);
          assert.ok(lanes.every((l) => l.owner === null && l.attempts === 0), 'its lanes were let go, not backed off');
          await t.rules.save('tenant', { enabled: true }, t.rule.id);
          while ((await delivery.tick()) !== 'none');
          assert.equal(receiver.acceptedIds().size, 24, 'once enabled again, every message is delivered');
        } finally {
          await delivery.close();
        }
      } finally {
        await t.close();
      }
    });
  });
}

contract('SQLite', () => startSqliteStore());

contract(
  'PostgreSQL',
  startPostgresStore,
  skipUnlessPostgres(),
);
