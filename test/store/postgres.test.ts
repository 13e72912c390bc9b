/** The Store contract against a real PostgreSQL 15 that this test starts (and stops) itself. */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { KyselyStore } from '../../src/store/kysely/kysely-store.ts';
import { openStore } from '../../src/store/open-store.ts';
import { openPostgresStore } from '../../src/store/postgres.ts';
import { skipUnlessPostgres, startPostgres } from '../support/postgres.ts';
import { startPostgresStore } from '../support/postgres-store.ts';
import { storeContract } from './store-contract.ts';

storeContract(
  'PostgreSQL',
  startPostgresStore,
  { skip: skipUnlessPostgres() },
);

describe('openStore', { skip: skipUnlessPostgres() }, () => {
  test('a postgres:// or postgresql:// database opens PostgreSQL', async () => {
    const server = await startPostgres();
    try {
      const url = await server.createDatabase();
      for (const database of [url, url.replace(/^postgres:/, 'postgresql:')]) {
        const store = await openStore({ database, sqliteSynchronous: 'normal' });
        try {
          assert.equal((store as KyselyStore).dialect.name, 'postgres');
          assert.equal(await store.initSetting('opened', database), url);
        } finally {
          await store.close();
        }
      }
    } finally {
      await server.stop();
    }
  });
});
