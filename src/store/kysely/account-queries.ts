/** Administrator accounts, server settings and the audit log. */
import type { Kysely, Transaction } from 'kysely';
import type { AuditEntry, Page, PageQuery, User } from '../../core/model.ts';
import type { Database } from '../schema.ts';
import { fetchPage } from './paging.ts';
import { auditToRow, rowToAudit, rowToUser } from './rows.ts';

type Db = Kysely<Database> | Transaction<Database>;

export async function findUserByEmail(db: Db, email: string): Promise<User | undefined> {
  const row = await db.selectFrom('users').selectAll().where('email', '=', email).executeTakeFirst();
  return row && rowToUser(row);
}

export async function getUser(db: Db, id: string): Promise<User | undefined> {
  const row = await db.selectFrom('users').selectAll().where('id', '=', id).executeTakeFirst();
  return row && rowToUser(row);
}

export async function updateUserPassword(db: Db, id: string, passwordHash: string): Promise<void> {
  await db.updateTable('users').set({ password_hash: passwordHash }).where('id', '=', id).execute();
}

export async function countUsers(db: Db): Promise<number> {
  const row = await db.selectFrom('users').select((eb) => eb.fn.countAll().as('n')).executeTakeFirst();
  return Number(row?.n ?? 0);
}

export async function getSetting(db: Db, key: string): Promise<string | undefined> {
  const row = await db.selectFrom('settings').select('value').where('key', '=', key).executeTakeFirst();
  return row?.value;
}

/** Stores `value` unless the key is set; returns the stored value (first writer wins). */
export async function initSetting(db: Db, key: string, value: string): Promise<string> {
  await db.insertInto('settings').values({ key, value }).onConflict((oc) => oc.column('key').doNothing()).execute();
  return (await getSetting(db, key))!;
}

export async function insertAudit(db: Db, entry: AuditEntry): Promise<void> {
  await db.insertInto('audit_log').values(auditToRow(entry)).execute();
}

/** Newest first (GET /api/audit/logs with filters goes through listAuditFiltered). */
export function listAudit(db: Db, tenantId: string, query: PageQuery): Promise<Page<AuditEntry>> {
  const base = db.selectFrom('audit_log').where('tenant_id', '=', tenantId);
  return fetchPage(base, query, (qb) => qb.selectAll().orderBy('created_time', 'desc').orderBy('seq', 'desc'), rowToAudit);
}
