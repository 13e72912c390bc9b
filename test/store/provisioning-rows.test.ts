/**
 * The multi-row writes of provisioning groups (kysely/provisioning-queries.ts) and their reused SQL texts
 * (kysely/compiled-inserts.ts), on SQLite and PostgreSQL: a second statement of the same row count writes its own
 * values, not the first one's; attributes go in only where the key is absent.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { KyselyStore } from '../../src/store/kysely/kysely-store.ts';
import { openPostgresStore } from '../../src/store/postgres.ts';
import { openSqliteStore } from '../../src/store/sqlite.ts';
import { skipUnlessPostgres, startPostgres, type TestPostgres } from '../support/postgres.ts';
import { audit, seedDevice, TENANT } from './fixtures.ts';

function rowsSuite(name: string, open: () => Promise<{ store: KyselyStore; close(): Promise<void> }>, skip?: string | false) {
  describe(`provisioning rows on ${name}`, { skip }, () => {
    let s: { store: KyselyStore; close(): Promise<void> };
    before(async () => (s = await open()));
    after(() => s?.close());

    test('audit rows: three statements of three rows each store their own values, in order', async () => {
      const batches = [0, 1, 2].map((b) => [0, 1, 2].map((i) => audit({ entityName: `rows-${b}-${i}`, createdTime: 1000 + b * 10 + i, actionFailureDetails: i === 1 ? 'why' : null, actionData: { b, i } })));
      for (const batch of batches) await s.store.insertAudits(batch);
      const page = await s.store.listAudit(TENANT, { page: 0, pageSize: 100 });
      const stored = page.data.filter((a) => a.entityName?.startsWith('rows-'));
      assert.equal(stored.length, 9);
      for (const expected of batches.flat()) {
        const got = stored.find((a) => a.id === expected.id)!;
        assert.deepEqual({ ...got }, { ...expected }, expected.entityName!);
      }
    });

    test('attributes: inserted where absent, an existing key keeps its value, repeated row counts write their own rows', async () => {
      const { device: a } = await seedDevice(s.store);
      const { device: b } = await seedDevice(s.store);
      const row = (deviceId: string, key: string, value: string, ts: number) => ({ deviceId, scope: 'SERVER_SCOPE' as const, entry: { key, value: { type: 'STRING' as const, value } }, ts });
      await s.store.insertAttributesIfAbsent([row(a.id, 'provisionState', 'provisioned', 1), row(b.id, 'provisionState', 'provisioned', 2)]);
      await s.store.insertAttributesIfAbsent([row(a.id, 'provisionState', 'other', 3), row(b.id, 'extra', 'x', 4)]);
      assert.deepEqual((await s.store.getAttributes(a.id, 'SERVER_SCOPE')).map((e) => [e.key, e.value, e.lastUpdateTs]), [['provisionState', { type: 'STRING', value: 'provisioned' }, 1]]);
      assert.deepEqual((await s.store.getAttributes(b.id, 'SERVER_SCOPE')).map((e) => [e.key, e.value, e.lastUpdateTs]), [
        ['extra', { type: 'STRING', value: 'x' }, 4],
        ['provisionState', { type: 'STRING', value: 'provisioned' }, 2],
      ]);
    });
  });
}

rowsSuite('SQLite', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'fleetgate-rows-'));
  const store = await openSqliteStore(join(dir, 'store.db'), { synchronous: 'normal' });
  return {
    store,
    async close() {
      await store.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
});

let pg: TestPostgres | undefined;
rowsSuite(
  'PostgreSQL',
  async () => {
    pg = await startPostgres();
    const store = await openPostgresStore(await pg.createDatabase());
    return {
      store,
      async close() {
        await store.close();
        await pg?.stop();
      },
    };
  },
  skipUnlessPostgres(),
);
