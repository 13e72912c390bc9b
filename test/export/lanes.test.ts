/**
 * Lanes per export rule (issue 16), on SQLite and on a real PostgreSQL, delivered to a real HTTP receiver: a rule has
 * the lanes it was given (its lane rows, and its outbox rows only in them), every device keeps its order with 1 lane
 * and with 16, a change of `lanes` while messages wait delivers the old lanes first (each device in order) and refuses
 * a second change until they are delivered, replayed dead letters go into the lanes as they are now, and migration 016
 * keeps the rules of earlier releases at 16 lanes with their waiting rows in the lanes they were written to.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { Kysely, Migrator, PostgresDialect, SqliteDialect } from 'kysely';
import BetterSqlite3 from 'better-sqlite3';
import pg from 'pg';
import { DEFAULT_EXPORT_SETTINGS, ExportDelivery } from '../../src/core/export/delivery.ts';
import { DEFAULT_EXPORT_LANES, deviceHash, partitionOf, unpackMessages, type ExportRule } from '../../src/core/export/model.ts';
import { OutboxBuilder } from '../../src/core/export/outbox.ts';
import { ExportRules } from '../../src/core/export/rules.ts';
import { FleetgateError } from '../../src/core/errors.ts';
import { openExportSink } from '../../src/export/open-sink.ts';
import type { TsPoint } from '../../src/core/model.ts';
import type { Store } from '../../src/core/ports/store.ts';
import { postgresDialect, sqliteDialect, type Dialect } from '../../src/store/dialect.ts';
import { migrationProvider } from '../../src/store/migrate.ts';
import { skipUnlessPostgres } from '../support/postgres.ts';
import { startPostgresStore } from '../support/postgres-store.ts';
import { startSqliteStore } from '../support/sqlite-store.ts';
import { startReceiver, type Receiver } from './receiver.ts';

const quiet = { info() {}, warn() {}, error() {}, debug() {} };
const PROFILE = '7f000000-0000-4000-8000-000000000001';
const device = (i: number) => ({ deviceId: `1a2b3c4d-0000-4000-8000-${String(i).padStart(12, '0')}`, deviceName: `lane-dev-${i}`, tenantId: 'tenant', profileId: PROFILE, credentialsType: 'ACCESS_TOKEN' as const });
const DEVICES = Array.from({ length: 24 }, (_, i) => device(i));
/** Enough devices that every one of 16 lanes gets some. */
const MANY = Array.from({ length: 200 }, (_, i) => device(1000 + i));

type Opener = (before?: (db: Kysely<any>) => Promise<void>) => Promise<{ store: Store; close(): Promise<void> }>;

function contract(name: string, open: Opener, dialect: Dialect, skip?: string | false) {
  describe(`export lanes per rule on ${name}`, { skip }, () => {
    let receiver: Receiver;
    before(async () => {
      receiver = await startReceiver();
    });
    after(async () => {
      await receiver?.close();
    });

    async function setup(beforeOpen?: (db: Kysely<any>) => Promise<void>) {
      const { store, close } = await open(beforeOpen);
      const rules = new ExportRules(store, async () => true, async () => {});
      // retryBaseMs 1: a refused lane is due again at the next round.
      const delivery = new ExportDelivery(store, rules, openExportSink, { ...DEFAULT_EXPORT_SETTINGS, concurrency: 16, retryBaseMs: 1, retryMaxMs: 2 }, quiet);
      const outbox = new OutboxBuilder(rules, delivery);
      await rules.reload();
      /**
       * One group commit: a point `ts` of each device, its outbox rows made by `through` (another node's builder, whose
       * rows this node's delivery reads from the store rather than from memory).
       */
      async function commit(ts: number, devices = DEVICES, through = outbox) {
        const telemetry: TsPoint[] = [];
        for (const d of devices) {
          through.noteDevice(d, 'telemetry');
          telemetry.push({ deviceId: d.deviceId, ts, key: 'n', value: { type: 'LONG', value: ts } });
        }
        const batch = { telemetry, attributes: [] as never[], outbox: undefined as never };
        through.decorate(batch);
        await store.writeBatch(batch);
        if (through === outbox) delivery.remember(batch.outbox);
      }
      /** Rounds until nothing is left to deliver (a round that did nothing: a lane backing off, so wait a little). */
      async function drain() {
        for (let rounds = 0; ; rounds++) {
          assert.ok(rounds < 3000, 'delivery finishes');
          const waiting = [...(await store.exports.countOutbox()).values()].reduce((a, b) => a + b, 0);
          if (waiting === 0) return;
          if ((await delivery.tick()) === 'none') await new Promise((r) => setTimeout(r, 5));
        }
      }
      /**
       * The lanes holding rows now that a node may claim (claimed and let go at once: a lease of -1 ms is over when
       * taken), and with `all`, every lane holding rows, claimable or not (a lane another owner still leases).
       */
      async function lanesWithRows(ruleId: string, all = false): Promise<number[]> {
        if (all) {
          const held: number[] = [];
          for (const lane of await store.exports.listLanes(ruleId)) if ((await store.exports.readOutbox(ruleId, lane.partition, 1)).length > 0) held.push(lane.partition);
          return held;
        }
        const lanes = await store.exports.claimLanes('probe', Date.now(), -1, 64);
        return lanes.filter((l) => l.ruleId === ruleId).map((l) => l.partition).sort((a, b) => a - b);
      }
      return {
        store,
        rules,
        delivery,
        commit,
        drain,
        lanesWithRows,
        async close() {
          await delivery.close();
          await close();
        },
      };
    }

    /** Each device's points as the receiver accepted them, in arrival order. */
    function arrivals(): Map<string, number[]> {
      const byDevice = new Map<string, number[]>();
      for (const m of receiver.accepted) for (const p of m.data.telemetry) byDevice.set(m.deviceId!, [...(byDevice.get(m.deviceId!) ?? []), p.ts]);
      return byDevice;
    }

    it('a rule has the lanes it was given: its lane rows, and its rows only in them, each device in its own', async () => {
      const t = await setup();
      try {
        const byDefault = await t.rules.save('tenant', { name: 'default', kinds: ['telemetry'], enabled: false, destination: { type: 'webhook', url: receiver.url } });
        assert.equal(byDefault.lanes, DEFAULT_EXPORT_LANES);
        // A lane row for each of the first 16 partitions (an earlier release's lanes), whatever the rule's count.
        assert.deepEqual((await t.store.exports.listLanes(byDefault.id)).map((l) => l.partition), Array.from({ length: 16 }, (_, i) => i));
        for (const lanes of [1, 3, 16]) {
          const rule = await t.rules.save('tenant', { name: `lanes-${lanes}`, kinds: ['telemetry'], lanes, destination: { type: 'webhook', url: receiver.url, batchSize: 1000 } });
          assert.equal(rule.lanes, lanes);
          await t.commit(lanes, MANY);
          const held = await t.lanesWithRows(rule.id);
          assert.deepEqual(held, Array.from({ length: lanes }, (_, i) => i), `${lanes} lanes: 200 devices fill every lane, and no other`);
          let messages = 0;
          for (const lane of held) {
            const rows = await t.store.exports.readOutbox(rule.id, lane, 1000);
            assert.equal(rows.length, 1, 'a commit writes one row a lane');
            const devices = rows.flatMap((r) => unpackMessages(r)).map((m) => m.deviceId!);
            for (const d of devices) assert.equal(deviceHash(d) % lanes, lane, `${d} is in lane ${deviceHash(d) % lanes} of ${lanes}`);
            messages += devices.length;
          }
          assert.equal(messages, MANY.length);
          await t.rules.save('tenant', { enabled: false }, rule.id);
        }
        // 16 lanes are the 16 of every rule before lanes were a setting.
        for (const d of MANY) assert.equal(deviceHash(d.deviceId) % 16, partitionOf(d.deviceId));
      } finally {
        await t.close();
      }
    });

    for (const lanes of [1, 16]) {
      it(`keeps each device in order with ${lanes} lane${lanes === 1 ? '' : 's'}, through refusals`, async () => {
        receiver.accepted.length = 0;
        let calls = 0;
        receiver.answer = () => (++calls % 3 === 0 ? { status: 500 } : { status: 200 });
        const t = await setup();
        try {
          await t.rules.save('tenant', { name: `order-${lanes}`, kinds: ['telemetry'], lanes, destination: { type: 'webhook', url: receiver.url, batchSize: 7 } });
          for (let ts = 1; ts <= 10; ts++) await t.commit(ts);
          await t.drain();
          const byDevice = arrivals();
          assert.equal(byDevice.size, DEVICES.length);
          for (const [deviceId, order] of byDevice) assert.deepEqual(order, [1, 2, 3, 4, 5, 6, 7, 8, 9, 10], `${deviceId} in commit order, once each`);
          assert.ok(calls > 3, 'the receiver refused some requests');
        } finally {
          await t.close();
        }
      });
    }

    it('a change of lanes while messages wait delivers the old lanes first, each device in order; a second change waits for them', async () => {
      receiver.accepted.length = 0;
      receiver.answer = () => ({ status: 200 });
      const t = await setup();
      try {
        const rule = await t.rules.save('tenant', { name: 'relane', kinds: ['telemetry'], lanes: 16, destination: { type: 'webhook', url: receiver.url, batchSize: 50 } });
        // No delivery round yet: the messages wait.
        for (let ts = 1; ts <= 3; ts++) await t.commit(ts);
        const changed = await t.rules.save('tenant', { lanes: 2 }, rule.id);
        assert.equal(changed.lanes, 2);
        assert.equal(t.rules.all().find((r) => r.id === rule.id)!.lanes, 2);
        for (let ts = 4; ts <= 6; ts++) await t.commit(ts);
        // The new lanes are partitions 16 and 17; only the old ones (0-15) may be claimed while they hold rows.
        const held = await t.lanesWithRows(rule.id);
        assert.ok(held.length > 0 && held.every((p) => p < 16), `only old lanes are claimed: ${held.join(',')}`);
        await assert.rejects(
          t.rules.save('tenant', { lanes: 3 }, rule.id),
          (err: unknown) => err instanceof FleetgateError && err.code === 'INVALID_ARGUMENT' && /lanes of export rule 'relane' cannot change yet: 72 messages .* still waiting/.test(err.message),
        );
        assert.equal((await t.store.exports.getRule('tenant', rule.id))!.lanes, 2, 'the refused change saved nothing');
        await t.drain();
        const byDevice = arrivals();
        assert.equal(byDevice.size, DEVICES.length);
        for (const [deviceId, order] of byDevice) assert.deepEqual(order, [1, 2, 3, 4, 5, 6], `${deviceId} in commit order across the change`);
        const points = receiver.accepted.flatMap((m) => m.data.telemetry.map((p: { ts: number }) => p.ts));
        assert.ok(points.lastIndexOf(3) < points.indexOf(4), 'every message of the old lanes went before any of the new');
        // Drained: the next change is taken, back to partitions from 0; the lanes of earlier counts stay (empty).
        const again = await t.rules.save('tenant', { lanes: 3 }, rule.id);
        assert.equal(again.lanes, 3);
        receiver.accepted.length = 0;
        await t.commit(7);
        assert.deepEqual(await t.lanesWithRows(rule.id, true), [0, 1, 2]);
        await t.drain();
        assert.equal(arrivals().size, DEVICES.length);
      } finally {
        await t.close();
      }
    });

    it('two changes in a row: rows a node writes by a count it has not heard is gone are still delivered', async () => {
      receiver.accepted.length = 0;
      receiver.answer = () => ({ status: 200 });
      const t = await setup();
      try {
        const rule = await t.rules.save('tenant', { name: 'stale', kinds: ['telemetry'], lanes: 16, destination: { type: 'webhook', url: receiver.url, batchSize: 1000 } });
        // Two other nodes: one still at 16 lanes from partition 0, one that will hear only the first change.
        const atFirst = new ExportRules(t.store, async () => true, async () => {});
        await atFirst.reload();
        await t.rules.save('tenant', { lanes: 2 }, rule.id);
        const atSecond = new ExportRules(t.store, async () => true, async () => {});
        await atSecond.reload();
        // Nothing waits, so a second change is taken at once: 3 lanes from partition 0 again.
        await t.rules.save('tenant', { lanes: 3 }, rule.id);
        for (const [rules, ts] of [[atFirst, 100], [atSecond, 200]] as const) await t.commit(ts, MANY, new OutboxBuilder(rules, t.delivery));
        const held = await t.lanesWithRows(rule.id, true);
        assert.ok(held.some((p) => p >= 3 && p < 16) && held.some((p) => p >= 16), `rows in lanes of both earlier counts: ${held.join(',')}`);
        await t.commit(300, MANY);
        await t.drain();
        const byDevice = arrivals();
        assert.equal(byDevice.size, MANY.length);
        for (const [deviceId, order] of byDevice) assert.deepEqual([...order].sort((a, b) => a - b), [100, 200, 300], `${deviceId}: every message delivered`);
      } finally {
        await t.close();
      }
    });

    it('a node of an earlier release writes by 16 lanes into a rule of 4: every message is delivered', async () => {
      receiver.accepted.length = 0;
      receiver.answer = () => ({ status: 200 });
      const t = await setup();
      try {
        const rule = await t.rules.save('tenant', { name: 'rolling', kinds: ['telemetry'], destination: { type: 'webhook', url: receiver.url, batchSize: 1000 } });
        assert.equal(rule.lanes, 4);
        // As that node sees the rule: no lanes column yet, so partitionOf's 16.
        const old = new OutboxBuilder({ wants: () => true, matching: () => [{ ...rule, lanes: 16, laneBase: 0 }] } as unknown as ExportRules, t.delivery);
        await t.commit(1, MANY, old);
        assert.ok((await t.lanesWithRows(rule.id, true)).some((p) => p >= 4), 'rows in lanes the rule does not count');
        await t.commit(2, MANY);
        await t.drain();
        const byDevice = arrivals();
        assert.equal(byDevice.size, MANY.length);
        for (const [deviceId, order] of byDevice) assert.deepEqual(order, [1, 2], `${deviceId}: both messages, in order`);
      } finally {
        await t.close();
      }
    });

    it('replays dead letters into the rule\'s lanes as they are now', async () => {
      receiver.accepted.length = 0;
      receiver.answer = () => ({ status: 200 });
      const t = await setup();
      try {
        const rule = await t.rules.save('tenant', { name: 'replay', kinds: ['telemetry'], lanes: 16, destination: { type: 'webhook', url: receiver.url, batchSize: 1000 } });
        await t.commit(1, DEVICES.slice(0, 6));
        for (const lane of await t.lanesWithRows(rule.id)) {
          await t.store.exports.claimLanes('owner', Date.now(), 30_000, 64);
          const rows = await t.store.exports.readOutbox(rule.id, lane, 1000);
          assert.equal(await t.store.exports.deadLetter('owner', rows, 1, 'refused', Date.now()), true);
        }
        assert.equal((await t.store.exports.listDeadLetters([rule.id], { pageSize: 100, page: 0 })).data.length, 6);
        await t.rules.save('tenant', { lanes: 1 }, rule.id);
        assert.equal(await t.store.exports.replayDeadLetters([rule.id]), 6);
        assert.deepEqual(await t.lanesWithRows(rule.id), [16], 'all six in the one lane there is now');
        await t.drain();
        assert.equal(arrivals().size, 6);
      } finally {
        await t.close();
      }
    });

    it('migration 016 keeps a rule of an earlier release at 16 lanes, its waiting rows in their lanes and first', async () => {
      receiver.accepted.length = 0;
      receiver.answer = () => ({ status: 200 });
      const ruleId = 'b0000000-0000-4000-8000-000000000016';
      const t = await setup(async (db) => {
        const result = await new Migrator({ db, provider: migrationProvider(dialect) }).migrateTo('015-partial-null-indexes');
        if (result.error) throw result.error;
        const destination = { type: 'webhook', url: receiver.url, headers: {}, secret: null, batchSize: 1000, timeoutMs: 5000 };
        await db.insertInto('export_rule').values({ id: ruleId, tenant_id: 'tenant', name: 'old', profile_id: null, kinds: '["telemetry"]', destination: JSON.stringify(destination), enabled: 1, created_time: 1 }).execute();
        await db.insertInto('export_lane').values(Array.from({ length: 16 }, (_, part) => ({ rule_id: ruleId, part, owner: null, lease_until: 0, attempts: 0, next_attempt_time: 0, last_error: null }))).execute();
        // As the earlier release wrote them: one message a row, in the device's lane of 16.
        await db
          .insertInto('export_outbox')
          .values(DEVICES.map((d) => ({ rule_id: ruleId, part: partitionOf(d.deviceId), device_id: d.deviceId, kind: 'telemetry', created_time: 1, payload: JSON.stringify({ deviceName: d.deviceName, profileId: PROFILE, telemetry: [{ ts: 0, values: { n: 0 } }] }), messages: 1 })))
          .execute();
      });
      try {
        const rule = t.rules.all().find((r) => r.id === ruleId) as ExportRule;
        assert.equal(rule.lanes, 16);
        assert.equal(rule.laneBase, 0);
        assert.equal((await t.store.exports.listLanes(ruleId)).length, 16);
        await t.commit(1);
        // The new rows went to the lanes the old ones wait in.
        for (const lane of await t.lanesWithRows(ruleId)) {
          const rows = await t.store.exports.readOutbox(ruleId, lane, 1000);
          for (const m of rows.flatMap((r) => unpackMessages(r))) assert.equal(partitionOf(m.deviceId), lane);
        }
        await t.drain();
        const byDevice = arrivals();
        assert.equal(byDevice.size, DEVICES.length);
        for (const [deviceId, order] of byDevice) assert.deepEqual(order, [0, 1], `${deviceId}: the row from before the upgrade first`);
      } finally {
        await t.close();
      }
    });
  });
}

contract(
  'SQLite',
  (beforeOpen) =>
    startSqliteStore(
      beforeOpen &&
        (async (path) => {
          const db = new Kysely<any>({ dialect: new SqliteDialect({ database: new BetterSqlite3(path) }) });
          await beforeOpen(db);
          await db.destroy();
        }),
    ),
  sqliteDialect,
);

contract(
  'PostgreSQL',
  (beforeOpen) =>
    startPostgresStore(
      beforeOpen &&
        (async (url) => {
          const db = new Kysely<any>({ dialect: new PostgresDialect({ pool: new pg.Pool({ connectionString: url, max: 1 }) }) });
          await beforeOpen(db);
          await db.destroy();
        }),
    ),
  postgresDialect,
  skipUnlessPostgres(),
);
