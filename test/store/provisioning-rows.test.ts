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
import { audit, credentials, device, seedDevice, TENANT } from './fixtures.ts';
import { randomUUID } from 'node:crypto';
import { sql, type Kysely } from 'kysely';

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

    test('the gateway and audit-user indexes hold only rows that have a value; lookups by gateway and by user still find theirs', async () => {
      const db = (s.store as unknown as { db: Kysely<any> }).db;
      // Migration 015: a provisioned device (no gateway) and a device's audit row (no user) add nothing to them.
      const definitions = name === 'SQLite'
        ? (await sql<{ name: string; def: string }>`select name, sql as def from sqlite_master where name in ('device_gateway_idx', 'audit_log_user_idx')`.execute(db)).rows
        : (await sql<{ name: string; def: string }>`select indexname as name, indexdef as def from pg_indexes where indexname in ('device_gateway_idx', 'audit_log_user_idx')`.execute(db)).rows;
      assert.equal(definitions.length, 2);
      for (const { name: index, def } of definitions) assert.match(def, index === 'device_gateway_idx' ? /where\s+\(?"?gateway_id"?\s+is\s+not\s+null/i : /where\s+\(?"?user_id"?\s+is\s+not\s+null/i, index);
      const { device: gateway, profile: p } = await seedDevice(s.store);
      const sub = device(p.id, { additionalInfo: { lastConnectedGateway: gateway.id } });
      await s.store.insertDevice(sub, credentials(sub.id));
      const plain = device(p.id);
      await s.store.insertDevice(plain, credentials(plain.id));
      assert.equal(await s.store.countSubDevices(gateway.id), 1);
      const userId = randomUUID();
      const mine = audit({ userId, entityName: 'by-user' });
      await s.store.insertAudits([mine, audit({ entityName: 'by-nobody' })]);
      const found = await s.store.listAuditFiltered(TENANT, { page: 0, pageSize: 10, userId, startTime: 0, endTime: Date.now() + 60_000, defaultOrder: 'ASC' });
      assert.deepEqual(found.data.map((a) => a.id), [mine.id]);
      if (name === 'SQLite') {
        // `indexed by` fails ("no query solution") unless the partial index can answer the query.
        const n = await sql<{ n: number }>`select count(*) as n from device indexed by device_gateway_idx where gateway_id = ${gateway.id}`.execute(db);
        assert.equal(Number(n.rows[0]!.n), 1);
        const rows = await sql<{ id: string }>`select id from audit_log indexed by audit_log_user_idx where tenant_id = ${TENANT} and user_id = ${userId}`.execute(db);
        assert.deepEqual(rows.rows.map((r) => r.id), [mine.id]);
      }
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
