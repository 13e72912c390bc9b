/**
 * The outbox in the store, on SQLite and on a real PostgreSQL: completing a batch deletes exactly the rows delivered
 * (SQLite deletes them as one seq range) and keeps rows that were committed after the batch was read, in any lane.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import type { ExportRule, OutboxEntry } from '../../src/core/export/model.ts';
import type { Store } from '../../src/store/store.ts';
import { openPostgresStore } from '../../src/store/postgres.ts';
import { openSqliteStore } from '../../src/store/sqlite.ts';
import { skipUnlessPostgres, startPostgres } from '../support/postgres.ts';

const rule: ExportRule = {
  id: 'a0000000-0000-4000-8000-000000000001',
  tenantId: 't',
  name: 'r',
  profileId: null,
  kinds: ['telemetry'],
  destination: { type: 'webhook', url: 'http://127.0.0.1:9/', headers: {}, secret: null, batchSize: 3, timeoutMs: 1000 },
  enabled: true,
  createdTime: 1,
};
const entry = (partition: number, n: number): OutboxEntry => ({ ruleId: rule.id, partition, deviceId: `d${partition}`, kind: 'telemetry', createdTime: n, payload: `{"n":${n}}` });

function outboxContract(name: string, open: () => Promise<{ store: Store; close(): Promise<void> }>, options: { skip?: string | false } = {}) {
  describe(`export outbox on ${name}`, { skip: options.skip }, () => {
    it('completing a batch deletes the rows delivered and keeps those written after the read', async () => {
      const { store, close } = await open();
      try {
        await store.exports.insertRule(rule);
        await store.exports.insertOutbox([entry(1, 1), entry(2, 2), entry(1, 3), entry(1, 4), entry(1, 5)]);
        const [lane] = await store.exports.claimLanes('node-a', Date.now(), 30_000, 1);
        assert.ok(lane, 'a lane with rows is claimed');
        const read = await store.exports.readOutbox(rule.id, 1, 3);
        assert.deepEqual(read.map((r) => r.payload), ['{"n":1}', '{"n":3}', '{"n":4}']);
        // Written after the read, in the same lane and in another one.
        await store.exports.insertOutbox([entry(1, 6), entry(2, 7)]);
        assert.equal(await store.exports.completeBatch('node-a', rule.id, 1, read.map((r) => r.seq)), true);
        assert.deepEqual((await store.exports.readOutbox(rule.id, 1, 10)).map((r) => r.payload), ['{"n":5}', '{"n":6}']);
        assert.deepEqual((await store.exports.readOutbox(rule.id, 2, 10)).map((r) => r.payload), ['{"n":2}', '{"n":7}']);
        // A node that lost the lane deletes nothing.
        const rest = await store.exports.readOutbox(rule.id, 1, 10);
        assert.equal(await store.exports.completeBatch('node-b', rule.id, 1, rest.map((r) => r.seq)), false);
        assert.equal((await store.exports.countOutbox()).get(rule.id), 4);
      } finally {
        await close();
      }
    });
  });
}

outboxContract('SQLite', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'fleetgate-outbox-'));
  const store = await openSqliteStore(join(dir, 'db.sqlite'), { synchronous: 'normal' });
  return {
    store,
    async close() {
      await store.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
});

outboxContract(
  'PostgreSQL',
  async () => {
    const server = await startPostgres();
    try {
      const store = await openPostgresStore(await server.createDatabase());
      return {
        store,
        async close() {
          await store.close();
          await server.stop();
        },
      };
    } catch (err) {
      await server.stop();
      throw err;
    }
  },
  { skip: skipUnlessPostgres() },
);
