/**
 * Audit routes (GET /api/audit/logs) and the helper admin routes use to record actions that core
 * cannot attribute to a user itself (logins, RPC calls, attribute writes: those core calls take no Actor).
 */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { badRequest } from '../core/errors.ts';
import type { AuditEntry, AuditQuery } from '../core/model.ts';
import { principalOf, type AdminDeps } from './context.ts';
import { auditLogJson, pageJson } from './json-shapes.ts';
import { pageQuery, type PageParams } from './request-input.ts';
import { PAGE_QUERY, SECURED, paramsWith } from './schemas.ts';

/** The `source` column of admin audit rows: `admin:<remote address>`. */
export function auditSource(req: FastifyRequest): string {
  return `admin:${req.ip}`;
}

/** What a route states about an action; tenant, user and source come from the request. */
export interface AuditFacts {
  entityType: string;
  entityId: string | null;
  entityName: string | null;
  actionType: string;
  actionData: Record<string, unknown>;
  failure?: string | null;
}

/** Records an action of the authenticated user; a failing audit write is logged, never fails the request. */
export async function recordAudit(deps: AdminDeps, req: FastifyRequest, facts: AuditFacts): Promise<void> {
  const principal = principalOf(req);
  await recordAuditEntry(deps, {
    tenantId: principal.tenantId,
    userId: principal.userId,
    userName: principal.email,
    entityType: facts.entityType,
    entityId: facts.entityId,
    entityName: facts.entityName,
    actionType: facts.actionType,
    actionData: facts.actionData,
    actionStatus: facts.failure ? 'FAILURE' : 'SUCCESS',
    actionFailureDetails: facts.failure ?? null,
    source: auditSource(req),
  });
}

/** Records a complete audit entry (also used before a user is authenticated, e.g. LOGIN). */
export async function recordAuditEntry(deps: AdminDeps, entry: Omit<AuditEntry, 'id' | 'createdTime'>): Promise<void> {
  try {
    await deps.core.audit.record(entry);
  } catch (err) {
    deps.logger.warn({ err, actionType: entry.actionType }, 'audit write failed');
  }
}

const AUDIT_QUERY = {
  ...PAGE_QUERY,
  properties: {
    ...PAGE_QUERY.properties,
    startTime: { type: 'integer', description: 'Only entries at or after this time (ms)' },
    endTime: { type: 'integer', description: 'Only entries at or before this time (ms)' },
    actionTypes: { type: 'string', description: 'Comma-separated action types, e.g. LOGIN,PROVISION_FAILURE' },
  },
};

type AuditParams = PageParams & { startTime?: number; endTime?: number; actionTypes?: string };

/** TB: actionTypes is a comma list, upper-cased, each an ActionType name. */
function auditQuery(params: AuditParams, entityId?: string): AuditQuery {
  const actionTypes = params.actionTypes
    ?.split(',')
    .filter((t) => t !== '')
    .map((t) => t.toUpperCase());
  for (const type of actionTypes ?? []) {
    if (!/^[A-Z_]+$/.test(type)) throw badRequest(`No enum constant org.thingsboard.server.common.data.audit.ActionType.${type}`);
  }
  return { ...pageQuery(params), startTime: params.startTime, endTime: params.endTime, actionTypes, entityId };
}

/** Registers GET /api/audit/logs and /api/audit/logs/entity/{entityType}/{entityId} (ThingsBoard's audit log pages). */
export function registerAuditRoutes(app: FastifyInstance, deps: AdminDeps): void {
  app.get<{ Querystring: AuditParams }>(
    '/api/audit/logs',
    {
      schema: {
        tags: ['audit'],
        summary: 'Audit log of the tenant, newest first (getAuditLogs)',
        security: SECURED,
        querystring: AUDIT_QUERY,
      },
    },
    async (req) => pageJson(await deps.core.audit.list(principalOf(req).tenantId, auditQuery(req.query)), auditLogJson),
  );

  app.get<{ Querystring: AuditParams; Params: { entityType: string; entityId: string } }>(
    '/api/audit/logs/entity/:entityType/:entityId',
    {
      schema: {
        tags: ['audit'],
        summary: 'Audit log of one entity, newest first (getAuditLogsByEntityId)',
        security: SECURED,
        params: paramsWith('entityId', 'entityType'),
        querystring: AUDIT_QUERY,
      },
    },
    async (req) => pageJson(await deps.core.audit.list(principalOf(req).tenantId, auditQuery(req.query, req.params.entityId)), auditLogJson),
  );
}
