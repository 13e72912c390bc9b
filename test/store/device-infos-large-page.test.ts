/**
 * A page of device infos as large as the API allows (pageSize up to 100 000) on a fleet larger than one statement's
 * bound parameters (SQLite: 32 766; PostgreSQL: 65 535): listDeviceInfos joins the page's rows to their profile and
 * activity by id, so the ids must go in several statements, in page order.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { openSqliteStore } from '../../src/store/sqlite.ts';
import type { Store } from '../../src/core/ports/store.ts';
import { credentials, device, profile, TENANT } from './fixtures.ts';

describe('device infos: a page larger than one statement can bind (SQLite)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'fleetgate-infos-large-'));
  let store: Store;
  const COUNT = 33_000;

  before(async () => {
    store = await openSqliteStore(join(dir, 'store.db'), { synchronous: 'normal' });
    const p = profile({ name: 'large fleet' });
    await store.insertProfile(p);
    const base = Date.now();
    for (let i = 0; i < COUNT; i += 3000) {
      const pairs = Array.from({ length: Math.min(3000, COUNT - i) }, (_, k) => {
        const d = device(p.id, { name: `large-${String(i + k).padStart(6, '0')}`, createdTime: base + i + k });
        return { device: d, credentials: credentials(d.id) };
      });
      await store.insertDevicesIfAbsent(pairs);
    }
  });
  after(async () => {
    await store?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('returns all of a 100 000 page in its order, each with its profile name', async () => {
    for (const [sortProperty, sortOrder] of [[undefined, undefined], ['name', 'DESC']] as const) {
      const page = await store.listDeviceInfos(TENANT, { pageSize: 100_000, page: 0, activeSince: 0, sortProperty, sortOrder });
      assert.equal(page.totalElements, COUNT);
      assert.equal(page.data.length, COUNT);
      const names = page.data.map((d) => d.name);
      const expected = Array.from({ length: COUNT }, (_, i) => `large-${String(i).padStart(6, '0')}`);
      assert.deepEqual(names, sortOrder === 'DESC' ? expected.reverse() : expected);
      assert.ok(page.data.every((d) => d.profileName === 'large fleet'));
    }
  });
});
