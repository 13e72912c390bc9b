import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openSqliteStore } from '../../src/store/sqlite.ts';
import type { KyselyStore } from '../../src/store/kysely/kysely-store.ts';

/**
 * A store on a fresh SQLite file in a temporary directory; `close` closes the store and removes the directory.
 * `before` runs on the file's path first (e.g. to write rows as an older version left them).
 */
export async function startSqliteStore(before?: (path: string) => Promise<void>): Promise<{ store: KyselyStore; close(): Promise<void> }> {
  const dir = mkdtempSync(join(tmpdir(), 'fleetgate-store-'));
  const path = join(dir, 'db.sqlite');
  await before?.(path);
  const store = await openSqliteStore(path, { synchronous: 'normal' });
  return {
    store,
    async close() {
      await store.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
