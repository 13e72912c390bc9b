/** API keys, token outdating and the filtered audit log (issue 11: ThingsBoard's auth, audit and API-key routes). */
import { sql, type Kysely, type Transaction } from 'kysely';
import type { ApiKey, AuditEntry, AuditQuery, Page, PageQuery } from '../../core/model.ts';
import type { ApiKeyTable, Database } from '../schema.ts';
import { fetchPage } from './paging.ts';
import { rowToAudit } from './rows.ts';

type Db = Kysely<Database> | Transaction<Database>;

function rowToApiKey(r: ApiKeyTable): ApiKey {
  return {
    id: r.id,
    tenantId: r.tenant_id,
    userId: r.user_id,
    description: r.description,
    enabled: Number(r.enabled) === 1,
    expirationTime: Number(r.expiration_time),
    createdTime: Number(r.created_time),
  };
}

export async function insertApiKey(db: Db, key: ApiKey, valueHash: string): Promise<void> {
  await db
    .insertInto('api_key')
    .values({ id: key.id, tenant_id: key.tenantId, user_id: key.userId, value_hash: valueHash, description: key.description, enabled: key.enabled ? 1 : 0, expiration_time: key.expirationTime, created_time: key.createdTime })
    .execute();
}

export async function updateApiKey(db: Db, id: string, change: { description?: string; enabled?: boolean }): Promise<void> {
  const set: Partial<ApiKeyTable> = {};
  if (change.description !== undefined) set.description = change.description;
  if (change.enabled !== undefined) set.enabled = change.enabled ? 1 : 0;
  if (Object.keys(set).length > 0) await db.updateTable('api_key').set(set).where('id', '=', id).execute();
}

export async function getApiKey(db: Db, id: string): Promise<ApiKey | undefined> {
  const row = await db.selectFrom('api_key').selectAll().where('id', '=', id).executeTakeFirst();
  return row && rowToApiKey(row as ApiKeyTable);
}

export async function findApiKeyByHash(db: Db, valueHash: string): Promise<ApiKey | undefined> {
  const row = await db.selectFrom('api_key').selectAll().where('value_hash', '=', valueHash).executeTakeFirst();
  return row && rowToApiKey(row as ApiKeyTable);
}

const API_KEY_SORTS: Record<string, string> = { createdTime: 'created_time', expirationTime: 'expiration_time', description: 'description', enabled: 'enabled' };

/** A user's keys; `textSearch` on the description; default creation order. */
export function listApiKeys(db: Db, userId: string, query: PageQuery): Promise<Page<ApiKey>> {
  let base = db.selectFrom('api_key').where('user_id', '=', userId);
  if (query.textSearch) base = base.where(sql<boolean>`lower(description) like ${'%' + query.textSearch.toLowerCase() + '%'}`);
  const column = API_KEY_SORTS[query.sortProperty ?? 'createdTime'] ?? 'created_time';
  const order = query.sortOrder === 'DESC' ? 'desc' : 'asc';
  return fetchPage(base, query, (qb) => qb.selectAll().orderBy(sql.ref(column), order).orderBy('id'), (r) => rowToApiKey(r as ApiKeyTable));
}

export async function deleteApiKey(db: Db, id: string): Promise<boolean> {
  const result = await db.deleteFrom('api_key').where('id', '=', id).executeTakeFirst();
  return Number(result.numDeletedRows) > 0;
}

export async function setTokensValidAfter(db: Db, userId: string, time: number): Promise<void> {
  await db.updateTable('users').set({ tokens_valid_after: time }).where('id', '=', userId).execute();
}

const AUDIT_SORTS: Record<string, string> = {
  createdTime: 'created_time',
  entityType: 'entity_type',
  entityName: 'entity_name',
  userName: 'user_name',
  actionType: 'action_type',
  actionStatus: 'action_status',
};

/** The audit log with TB's filters; ties (and no sort property) go by insertion order. */
export function listAuditFiltered(db: Db, tenantId: string, query: AuditQuery): Promise<Page<AuditEntry>> {
  let base = db.selectFrom('audit_log').where('tenant_id', '=', tenantId).where('created_time', '>=', query.startTime).where('created_time', '<=', query.endTime);
  if (query.entityId) base = base.where('entity_id', '=', query.entityId);
  if (query.userId) base = base.where('user_id', '=', query.userId);
  if (query.actionTypes && query.actionTypes.length > 0) base = base.where('action_type', 'in', query.actionTypes);
  if (query.textSearch) {
    const like = `%${query.textSearch.toLowerCase()}%`;
    base = base.where(
      sql<boolean>`(lower(entity_type) like ${like} or lower(coalesce(entity_name, '')) like ${like} or lower(coalesce(user_name, '')) like ${like} or lower(action_type) like ${like} or lower(action_status) like ${like})`,
    );
  }
  const column = query.sortProperty ? AUDIT_SORTS[query.sortProperty] : undefined;
  const order = (column ? query.sortOrder : query.defaultOrder) === 'DESC' ? 'desc' : 'asc';
  return fetchPage(base, query, (qb) => (column ? qb.selectAll().orderBy(sql.ref(column), order).orderBy('seq', order) : qb.selectAll().orderBy('seq', order)), rowToAudit);
}

export { AUDIT_SORTS, API_KEY_SORTS };
