/**
 * Audit routes (GET /api/audit/logs) and the helper admin routes use to record actions that core
 * cannot attribute to a user itself (logins, RPC calls, attribute writes: those core calls take no Actor).
 */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { badRequest } from '../core/errors.ts';
import type { AuditEntry, AuditQuery } from '../core/model.ts';
import { principalOf, type AdminDeps } from './context.ts';
import { auditLogJson, pageJson } from './json-shapes.ts';
import { pageLink, PAGE_LINK_PROPERTIES, type PageLinkParams } from './page-link.ts';
import { paramsWith, SECURED, uuidParams } from './schemas.ts';

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

/** ThingsBoard's ActionType values, plus fleetgate's own (device import/export). */
const ACTION_TYPES = new Set(
  (
    'ADDED DELETED UPDATED ATTRIBUTES_UPDATED ATTRIBUTES_DELETED TIMESERIES_UPDATED TIMESERIES_DELETED RPC_CALL CREDENTIALS_UPDATED ' +
    'ASSIGNED_TO_CUSTOMER UNASSIGNED_FROM_CUSTOMER ACTIVATED SUSPENDED CREDENTIALS_READ ATTRIBUTES_READ RELATION_ADD_OR_UPDATE ' +
    'RELATION_DELETED RELATIONS_DELETED REST_API_RULE_ENGINE_CALL ALARM_ACK ALARM_CLEAR ALARM_DELETE ALARM_ASSIGNED ALARM_UNASSIGNED ' +
    'LOGIN LOGOUT LOCKOUT ASSIGNED_FROM_TENANT ASSIGNED_TO_TENANT PROVISION_SUCCESS PROVISION_FAILURE ASSIGNED_TO_EDGE ' +
    'UNASSIGNED_FROM_EDGE ADDED_COMMENT UPDATED_COMMENT DELETED_COMMENT SMS_SENT DEVICES_IMPORTED DEVICES_EXPORTED'
  ).split(' '),
);
const ENTITY_TYPES = new Set(['DEVICE', 'DEVICE_PROFILE', 'TENANT', 'CUSTOMER', 'USER', 'API_KEY', 'RPC', 'ASSET', 'DASHBOARD']);
const AUDIT_SORTS = ['createdTime', 'entityType', 'entityName', 'userName', 'actionType', 'actionStatus'] as const;

type AuditQueryString = PageLinkParams & { startTime?: string; endTime?: string; actionTypes?: string };

const AUDIT_QUERY = {
  type: 'object',
  required: ['pageSize', 'page'],
  properties: {
    ...PAGE_LINK_PROPERTIES,
    startTime: { type: 'string', description: 'Inclusive lower bound on createdTime, ms (default 1)' },
    endTime: { type: 'string', description: 'Inclusive upper bound on createdTime, ms (default now)' },
    actionTypes: { type: 'string', description: 'Comma-separated action types (ThingsBoard ActionType)' },
  },
};

/** TB's audit query parameters; `defaultOrder` applies without a sortProperty. */
function auditQuery(q: AuditQueryString, defaultOrder: 'ASC' | 'DESC'): AuditQuery {
  const page = pageLink(q, AUDIT_SORTS);
  const time = (value: string | undefined, name: string, fallback: number) => {
    if (value === undefined || value === '') return fallback;
    if (!/^-?\d+$/.test(value)) throw badRequest(`Failed to convert value of type 'java.lang.String' to required type 'java.lang.Long'; For input string: "${value}" (parameter '${name}')`);
    return Number(value);
  };
  let actionTypes: string[] | undefined;
  if (q.actionTypes) {
    // TB: split on commas, upper-cased, not trimmed
    actionTypes = q.actionTypes.split(',').map((t) => t.toUpperCase());
    const bad = actionTypes.find((t) => !ACTION_TYPES.has(t));
    if (bad !== undefined) throw badRequest(`No enum constant org.thingsboard.server.common.data.audit.ActionType.${bad}`);
  }
  return { ...page, startTime: time(q.startTime, 'startTime', 1), endTime: time(q.endTime, 'endTime', Date.now()), actionTypes, defaultOrder };
}

/** Registers TB's audit routes: the tenant's log, one entity's, one user's. */
export function registerAuditRoutes(app: FastifyInstance, deps: AdminDeps): void {
  app.get<{ Querystring: AuditQueryString }>(
    '/api/audit/logs',
    {
      schema: {
        tags: ['audit'],
        summary: 'Audit log of the tenant, newest first unless sorted (getAuditLogs)',
        description: 'Sorts: ' + AUDIT_SORTS.join(', ') + '. fleetgate lists newest first without a sortProperty (ThingsBoard: oldest first).',
        security: SECURED,
        querystring: AUDIT_QUERY,
      },
    },
    async (req) => pageJson(await deps.core.audit.search(principalOf(req).tenantId, auditQuery(req.query, 'DESC')), auditLogJson),
  );

  app.get<{ Params: { entityType: string; entityId: string }; Querystring: AuditQueryString }>(
    '/api/audit/logs/entity/:entityType/:entityId',
    {
      schema: {
        tags: ['audit'],
        summary: 'Audit log of one entity, e.g. DEVICE (getAuditLogsByEntityId); oldest first unless sorted, as ThingsBoard',
        security: SECURED,
        params: paramsWith('entityId', 'entityType'),
        querystring: AUDIT_QUERY,
      },
    },
    async (req) => {
      if (!ENTITY_TYPES.has(req.params.entityType)) throw badRequest(`No enum constant org.thingsboard.server.common.data.EntityType.${req.params.entityType}`);
      const query = { ...auditQuery(req.query, 'ASC'), entityId: req.params.entityId.toLowerCase() };
      return pageJson(await deps.core.audit.search(principalOf(req).tenantId, query), auditLogJson);
    },
  );

  app.get<{ Params: { userId: string }; Querystring: AuditQueryString }>(
    '/api/audit/logs/user/:userId',
    {
      schema: {
        tags: ['audit'],
        summary: "Audit log of one user's actions (getAuditLogsByUserId); oldest first unless sorted, as ThingsBoard",
        security: SECURED,
        params: uuidParams('userId'),
        querystring: AUDIT_QUERY,
      },
    },
    async (req) => {
      const query = { ...auditQuery(req.query, 'ASC'), userId: req.params.userId.toLowerCase() };
      return pageJson(await deps.core.audit.search(principalOf(req).tenantId, query), auditLogJson);
    },
  );
}
