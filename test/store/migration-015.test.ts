/**
 * Migration 015 (partial device_gateway_idx and audit_log_user_idx) run on a database that already holds rows, on
 * SQLite and PostgreSQL: the schema is put back as before 015 (full indexes, 015 not recorded), rows with and without
 * a gateway or a user are written, the store is opened again (015 runs), and the lookups find what they found before,
 * through the partial indexes.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { sql, type Kysely } from 'kysely';
import type { KyselyStore } from '../../src/store/kysely/kysely-store.ts';
import { openPostgresStore } from '../../src/store/postgres.ts';
import { openSqliteStore } from '../../src/store/sqlite.ts';
import { skipUnlessPostgres, startPostgres, type TestPostgres } from '../support/postgres.ts';
import { audit, credentials, device, seedDevice, TENANT } from './fixtures.ts';

const dbOf = (store: KyselyStore) => (store as unknown as { db: Kysely<any> }).db;

/**
 * Back to the schema before 015: the full indexes, and 015 not recorded as run. Migrations after 015 are undone too
 * (Kysely runs a migration only after every one recorded): 016's lane columns. A later migration adds its undoing here.
 */
async function before015(db: Kysely<any>): Promise<void> {
  await db.schema.alterTable('export_rule').dropColumn('lane_base').execute();
  await db.schema.alterTable('export_rule').dropColumn('lanes').execute();
  await sql`delete from kysely_migration where name > '015-partial-null-indexes'`.execute(db);
  await db.schema.dropIndex('device_gateway_idx').execute();
  await db.schema.createIndex('device_gateway_idx').on('device').column('gateway_id').execute();
  await db.schema.dropIndex('audit_log_user_idx').execute();
  await db.schema.createIndex('audit_log_user_idx').on('audit_log').columns(['tenant_id', 'user_id']).execute();
  await sql`delete from kysely_migration where name = '015-partial-null-indexes'`.execute(db);
}

function suite(name: string, open: () => Promise<KyselyStore>, stop: () => Promise<void>, skip?: string | false) {
  describe(`migration 015 on an existing ${name} database`, { skip }, () => {
    after(stop);
    test('runs over rows with and without a gateway or a user; the lookups still find theirs through the partial indexes', async () => {
      let store = await open();
      await before015(dbOf(store));
      const { device: gateway, profile: p } = await seedDevice(store);
      const subs = [0, 1, 2].map(() => device(p.id, { additionalInfo: { lastConnectedGateway: gateway.id } }));
      const plain = [0, 1, 2, 3].map(() => device(p.id));
      for (const d of [...subs, ...plain]) await store.insertDevice(d, credentials(d.id));
      const userId = randomUUID();
      const mine = [audit({ userId, entityName: 'by-user-1' }), audit({ userId, entityName: 'by-user-2' })];
      await store.insertAudits([...mine, audit({ entityName: 'by-nobody' }), audit({ userId: randomUUID(), entityName: 'by-other' })]);
      assert.equal(await store.countSubDevices(gateway.id), 3);
      await store.close();

      store = await open(); // migration 015 runs now, over the rows above
      try {
        const db = dbOf(store);
        const ran = await sql<{ n: number }>`select count(*) as n from kysely_migration where name = '015-partial-null-indexes'`.execute(db);
        assert.equal(Number(ran.rows[0]!.n), 1, '015 ran on reopening');
        assert.equal(await store.countSubDevices(gateway.id), 3);
        const found = await store.listAuditFiltered(TENANT, { page: 0, pageSize: 10, userId, startTime: 0, endTime: Date.now() + 60_000, defaultOrder: 'ASC' });
        assert.deepEqual(found.data.map((a) => a.id).sort(), mine.map((a) => a.id).sort());
        if (name === 'SQLite') {
          // `indexed by` fails ("no query solution") unless the partial index can answer the query.
          const n = await sql<{ n: number }>`select count(*) as n from device indexed by device_gateway_idx where gateway_id = ${gateway.id}`.execute(db);
          assert.equal(Number(n.rows[0]!.n), 3);
          const rows = await sql<{ id: string }>`select id from audit_log indexed by audit_log_user_idx where tenant_id = ${TENANT} and user_id = ${userId}`.execute(db);
          assert.equal(rows.rows.length, 2);
          const entries = await sql<{ n: number }>`select count(*) as n from device indexed by device_gateway_idx where gateway_id is not null`.execute(db);
          assert.equal(Number(entries.rows[0]!.n), 3, 'the index holds the sub-devices only');
        } else {
          // With sequential scans priced out, a plan that can use the partial index does (a parameter, as the store sends).
          await db.transaction().execute(async (tx) => {
            await sql`set local enable_seqscan = off`.execute(tx);
            const plan = await sql<{ 'QUERY PLAN': string }>`explain select count(*) from device where gateway_id = ${gateway.id}`.execute(tx);
            assert.match(plan.rows.map((r) => r['QUERY PLAN']).join('\n'), /device_gateway_idx/);
            const auditPlan = await sql<{ 'QUERY PLAN': string }>`explain select id from audit_log where tenant_id = ${TENANT} and user_id = ${userId}`.execute(tx);
            assert.match(auditPlan.rows.map((r) => r['QUERY PLAN']).join('\n'), /audit_log_user_idx/);
          });
        }
      } finally {
        await store.close();
      }
    });
  });
}

const dir = mkdtempSync(join(tmpdir(), 'fleetgate-m015-'));
suite('SQLite', () => openSqliteStore(join(dir, 'store.db'), { synchronous: 'normal' }), async () => rmSync(dir, { recursive: true, force: true }));

let pg: TestPostgres | undefined;
let url: string | undefined;
suite(
  'PostgreSQL',
  async () => {
    if (!url) {
      pg = await startPostgres();
      url = await pg.createDatabase();
    }
    return openPostgresStore(url);
  },
  async () => {
    await pg?.stop();
  },
  skipUnlessPostgres(),
);
