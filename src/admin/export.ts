/**
 * Data out (issue 16), fleetgate's own routes (ThingsBoard has rule chains instead): export rules, their delivery
 * state, and dead letters with replay. Secrets in a destination are write-only: answers mask them.
 */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { isCurrentLane, type DeadLetter, type ExportRule } from '../core/export/model.ts';
import { maskedDestination, type ExportRuleInput } from '../core/export/rules.ts';
import { badRequest } from '../core/errors.ts';
import { recordAudit } from './audit.ts';
import { principalOf, type AdminDeps } from './context.ts';
import { entityId, pageJson } from './json-shapes.ts';
import { pageQuery, type PageParams } from './request-input.ts';
import { OBJECT_BODY, PAGE_QUERY_PROPERTIES, SECURED, uuidParams } from './schemas.ts';

const TAGS = ['export'];

/** A rule as the API answers it, secrets masked. */
export function exportRuleJson(rule: ExportRule): Record<string, unknown> {
  return {
    id: { entityType: 'EXPORT_RULE', id: rule.id },
    createdTime: rule.createdTime,
    tenantId: entityId('TENANT', rule.tenantId),
    name: rule.name,
    deviceProfileId: rule.profileId === null ? null : entityId('DEVICE_PROFILE', rule.profileId),
    kinds: rule.kinds,
    destination: maskedDestination(rule.destination),
    enabled: rule.enabled,
    lanes: rule.lanes,
  };
}

function deadLetterJson(letter: DeadLetter): Record<string, unknown> {
  return {
    seq: letter.seq,
    ruleId: letter.ruleId,
    kind: letter.kind,
    deviceId: letter.deviceId,
    createdTime: letter.createdTime,
    deadTime: letter.deadTime,
    attempts: letter.attempts,
    lastError: letter.lastError,
    data: JSON.parse(letter.payload),
  };
}

/** The body's fields as rule input; `deviceProfileId` may be an id object or a plain id. */
function ruleInput(body: Record<string, unknown>): ExportRuleInput {
  const profile = body.deviceProfileId;
  const profileId = profile === undefined ? undefined : profile === null ? null : typeof profile === 'object' ? (profile as { id?: unknown }).id : profile;
  return { name: body.name, profileId, kinds: body.kinds, destination: body.destination, enabled: body.enabled, lanes: body.lanes };
}

function audit(deps: AdminDeps, req: FastifyRequest, rule: ExportRule, actionType: string): Promise<void> {
  return recordAudit(deps, req, { entityType: 'EXPORT_RULE', entityId: rule.id, entityName: rule.name, actionType, actionData: { kinds: rule.kinds, destinationType: rule.destination.type, lanes: rule.lanes } });
}

export function registerExportRoutes(app: FastifyInstance, deps: AdminDeps): void {
  const exports = deps.core.exports;

  app.post<{ Body: Record<string, unknown> }>(
    '/api/export/rule',
    { schema: { tags: TAGS, summary: 'Create an export rule, or change one (body with its id)', security: SECURED, body: OBJECT_BODY } },
    async (req) => {
      const { tenantId } = principalOf(req);
      const rawId = req.body.id;
      const id = rawId === undefined || rawId === null ? undefined : typeof rawId === 'object' ? (rawId as { id?: unknown }).id : rawId;
      if (id !== undefined && typeof id !== 'string') throw badRequest('id must be a rule id');
      const rule = await exports.rules.save(tenantId, ruleInput(req.body), id);
      await audit(deps, req, rule, id ? 'UPDATED' : 'ADDED');
      return exportRuleJson(rule);
    },
  );

  app.get('/api/export/rules', { schema: { tags: TAGS, summary: 'Every export rule, with the messages waiting for each', security: SECURED } }, async (req) => {
    const { tenantId } = principalOf(req);
    const counts = await exports.store.exports.countOutbox();
    return exports.rulesOf(tenantId).map((r) => ({ ...exportRuleJson(r), pending: counts.get(r.id) ?? 0 }));
  });

  app.get<{ Params: { ruleId: string } }>(
    '/api/export/rule/:ruleId',
    { schema: { tags: TAGS, summary: 'One export rule with its delivery lanes\' state (laneStates: attempts, next attempt, last error)', security: SECURED, params: uuidParams('ruleId') } },
    async (req) => {
      const rule = await exports.rules.get(principalOf(req).tenantId, req.params.ruleId);
      const counts = await exports.store.exports.countOutbox();
      const lanes = await exports.store.exports.listLanes(rule.id);
      return {
        ...exportRuleJson(rule),
        pending: counts.get(rule.id) ?? 0,
        // `lanes` is the rule's lane count; this is each lane's delivery state (after a change of `lanes`, the old
        // lanes too until the next change).
        // The rule's current lanes, and any other lane that holds state (rows of an earlier lane count being delivered).
        laneStates: lanes.filter((l) => isCurrentLane(rule, l.partition) || l.attempts > 0 || l.lastError !== null || (l.owner !== null && l.leaseUntil > Date.now())).map((l) => ({ partition: l.partition, attempts: l.attempts, nextAttemptTime: l.nextAttemptTime, lastError: l.lastError, leased: l.owner !== null && l.leaseUntil > Date.now() })),
      };
    },
  );

  app.delete<{ Params: { ruleId: string } }>(
    '/api/export/rule/:ruleId',
    { schema: { tags: TAGS, summary: 'Delete an export rule with its waiting messages and dead letters', security: SECURED, params: uuidParams('ruleId') } },
    async (req, reply) => {
      const rule = await exports.rules.delete(principalOf(req).tenantId, req.params.ruleId);
      await audit(deps, req, rule, 'DELETED');
      return reply.status(200).send();
    },
  );

  app.get<{ Querystring: PageParams & { ruleId?: string } }>(
    '/api/export/deadLetters',
    {
      schema: {
        tags: TAGS,
        summary: 'Dead letters (messages that failed past their age), oldest first',
        security: SECURED,
        querystring: { type: 'object', required: ['pageSize', 'page'], properties: { ...PAGE_QUERY_PROPERTIES, ruleId: { type: 'string', format: 'uuid' } } },
      },
    },
    async (req) => {
      const ruleIds = await ruleIdsOf(deps, req, req.query.ruleId);
      return pageJson(await exports.store.exports.listDeadLetters(ruleIds, pageQuery(req.query)), deadLetterJson);
    },
  );

  app.post<{ Body: { ruleId?: string; seqs?: number[] } }>(
    '/api/export/deadLetters/replay',
    {
      schema: {
        tags: TAGS,
        summary: 'Puts dead letters back in the outbox: all, one rule\'s, or those listed by seq; answers {"replayed":n}',
        security: SECURED,
        body: {
          type: 'object',
          additionalProperties: false,
          properties: { ruleId: { type: 'string', format: 'uuid' }, seqs: { type: 'array', items: { type: 'integer' }, maxItems: 100000 } },
        },
      },
    },
    async (req) => {
      const ruleIds = await ruleIdsOf(deps, req, req.body?.ruleId);
      const replayed = await exports.store.exports.replayDeadLetters(ruleIds, req.body?.seqs);
      await recordAudit(deps, req, { entityType: 'EXPORT_RULE', entityId: req.body?.ruleId ?? null, entityName: null, actionType: 'DEAD_LETTERS_REPLAYED', actionData: { replayed } });
      return { replayed };
    },
  );
}

/** The tenant's rule ids: one (checked to exist) or all. */
async function ruleIdsOf(deps: AdminDeps, req: FastifyRequest, ruleId: string | undefined): Promise<string[]> {
  const { tenantId } = principalOf(req);
  if (ruleId) return [(await deps.core.exports.rules.get(tenantId, ruleId)).id];
  return deps.core.exports.rulesOf(tenantId).map((r) => r.id);
}
