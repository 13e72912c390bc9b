/**
 * Audit routes (GET /api/audit/logs) and the helper admin routes use to record actions that core
 * cannot attribute to a user itself (logins, RPC calls, attribute writes: those core calls take no Actor).
 */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { AuditEntry } from '../core/model.ts';
import { principalOf, type AdminDeps } from './context.ts';
import { auditLogJson, pageJson } from './json-shapes.ts';
import { pageQuery, type PageParams } from './request-input.ts';
import { PAGE_QUERY, SECURED } from './schemas.ts';

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

/** Registers GET /api/audit/logs (ThingsBoard's tenant audit log page). */
export function registerAuditRoutes(app: FastifyInstance, deps: AdminDeps): void {
  app.get<{ Querystring: PageParams }>(
    '/api/audit/logs',
    {
      schema: {
        tags: ['audit'],
        summary: 'Audit log of the tenant, newest first (getAuditLogs)',
        security: SECURED,
        querystring: PAGE_QUERY,
      },
    },
    async (req) => {
      const page = await deps.core.audit.list(principalOf(req).tenantId, pageQuery(req.query));
      return pageJson(page, auditLogJson);
    },
  );
}
