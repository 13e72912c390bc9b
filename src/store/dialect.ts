/**
 * Everything that differs between SQLite and PostgreSQL, in one place. The rest of the store is shared Kysely code.
 */
import { sql, type ColumnDefinitionBuilder, type CreateTableBuilder } from 'kysely';
import type { UniqueViolation } from '../core/ports/store.ts';

export interface Dialect {
  name: 'sqlite' | 'postgres';
  /** Column type for 64-bit integers (timestamps, long values). */
  bigintType: 'integer' | 'bigint';
  /** Column type for an auto-incrementing integer key. */
  serialType: 'integer' | 'bigserial';
  serialColumn(column: ColumnDefinitionBuilder): ColumnDefinitionBuilder;
  /** Stores a table keyed by its primary key alone (SQLite WITHOUT ROWID: one B-tree instead of two). */
  compactKeyTable<T extends CreateTableBuilder<any, any>>(table: T): T;
  /** Which unique index an error from the driver violated, or undefined when it is not a unique violation. */
  uniqueViolation(err: unknown): UniqueViolation['constraint'] | undefined;
}

function constraintFromText(text: string): UniqueViolation['constraint'] {
  if (/device_name_unq|device\.tenant_id, device\.name/.test(text)) return 'device_name';
  if (/device_credentials_id_unq|device_credentials\.credentials_id|device_credentials\.device_id|device_credentials_device_id/.test(text)) return 'credentials_id';
  if (/provision_key_unq|device_profile\.provision_device_key/.test(text)) return 'provision_key';
  if (/device_profile_name_unq|device_profile\.tenant_id, device_profile\.name/.test(text)) return 'profile_name';
  if (/users_email|users\.email/.test(text)) return 'user_email';
  return 'unknown';
}

export const sqliteDialect: Dialect = {
  name: 'sqlite',
  bigintType: 'integer',
  serialType: 'integer',
  serialColumn: (c) => c.primaryKey().autoIncrement(),
  compactKeyTable: (table) => table.modifyEnd(sql`without rowid`) as typeof table,
  uniqueViolation(err) {
    const e = err as { code?: string; message?: string };
    if (e?.code !== 'SQLITE_CONSTRAINT_UNIQUE' && e?.code !== 'SQLITE_CONSTRAINT_PRIMARYKEY') return undefined;
    return constraintFromText(e.message ?? '');
  },
};

export const postgresDialect: Dialect = {
  name: 'postgres',
  bigintType: 'bigint',
  serialType: 'bigserial',
  serialColumn: (c) => c.primaryKey(),
  compactKeyTable: (table) => table,
  uniqueViolation(err) {
    const e = err as { code?: string; constraint?: string; message?: string };
    if (e?.code !== '23505') return undefined;
    return constraintFromText(`${e.constraint ?? ''} ${e.message ?? ''}`);
  },
};
