/**
 * Device info pages (src/store/kysely/device-info-queries.ts) page the filtered devices' ids first, then read the
 * page's rows by id: a page larger than SQLite's limit of bound parameters (32,766) still reads back whole.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { sql, type Kysely } from 'kysely';
import { openSqliteStore } from '../../src/store/sqlite.ts';
import type { Database } from '../../src/store/schema.ts';
import { seedDevice } from './fixtures.ts';

test('a device info page of more devices than SQLite binds parameters reads back every device, in order', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'fleetgate-infos-'));
  const store = await openSqliteStore(join(dir, 'store.db'), { synchronous: 'normal' });
  try {
    const { device } = await seedDevice(store);
    const db = (store as unknown as { db: Kysely<Database> }).db;
    const more = 33_000;
    await sql`with recursive n(k) as (select 1 union all select k + 1 from n where k < ${more})
      insert into device (id, tenant_id, profile_id, name, type, created_time)
      select printf('infos-%06d', k), ${device.tenantId}, ${device.profileId}, printf('infos-%06d', k), 'default', ${device.createdTime} + k from n`.execute(db);
    const page = await store.listDeviceInfos(device.tenantId, { pageSize: 40_000, page: 0, activeSince: 0 });
    assert.equal(page.totalElements, more + 1);
    assert.equal(page.data.length, more + 1);
    assert.equal(page.data[0].id, device.id);
    assert.deepEqual(page.data.slice(1, 4).map((d) => d.name), ['infos-000001', 'infos-000002', 'infos-000003']);
    assert.equal(page.data[more].name, `infos-${String(more).padStart(6, '0')}`);
  } finally {
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  }
});
