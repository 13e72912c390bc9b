import { openPostgresStore } from '../../src/store/postgres.ts';
import type { KyselyStore } from '../../src/store/kysely/kysely-store.ts';
import { startPostgres } from './postgres.ts';

/**
 * A store on a fresh database of its own PostgreSQL server; `close` closes the store and stops the server. `before`
 * runs on the empty database's URL first (e.g. to write rows as an older version left them).
 */
export async function startPostgresStore(before?: (url: string) => Promise<void>): Promise<{ store: KyselyStore; close(): Promise<void> }> {
  const server = await startPostgres();
  try {
    const url = await server.createDatabase();
    await before?.(url);
    const store = await openPostgresStore(url);
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
