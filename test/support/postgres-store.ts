import { openPostgresStore } from '../../src/store/postgres.ts';
import type { KyselyStore } from '../../src/store/kysely/kysely-store.ts';
import { startPostgres } from './postgres.ts';

/** A store on a fresh database of its own PostgreSQL server; `close` closes the store and stops the server. */
export async function startPostgresStore(): Promise<{ store: KyselyStore; close(): Promise<void> }> {
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
}
