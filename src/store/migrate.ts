import type { Migration as KyselyMigration, MigrationProvider } from 'kysely';
import type { Dialect } from './dialect.ts';
import { MIGRATIONS } from './migrations/index.ts';

/** Feeds our static migration list to Kysely's Migrator (which locks, so concurrent nodes migrate once). */
export function migrationProvider(dialect: Dialect): MigrationProvider {
  return {
    async getMigrations() {
      const out: Record<string, KyselyMigration> = {};
      for (const m of MIGRATIONS) out[m.name] = { up: (db) => m.up(db, dialect) };
      return out;
    },
  };
}
