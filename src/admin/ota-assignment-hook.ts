/**
 * Fills `firmwareId` / `softwareId` into every Device and DeviceProfile JSON the admin API answers (spec
 * thingsboard-ota §3.1), single or in a PageData, with one lookup per response. The shapes in json-shapes.ts render
 * them null; assignments live in their own table, so this hook is the one place that knows them.
 */
import type { FastifyInstance } from 'fastify';
import type { Core } from '../core/core-types.ts';
import { assignmentJson } from './ota-json.ts';

type Json = Record<string, unknown>;

function isAssignable(value: unknown): value is Json & { id: { entityType: string; id: string } } {
  if (!value || typeof value !== 'object' || !('firmwareId' in value) || !('softwareId' in value)) return false;
  const id = (value as Json).id as { entityType?: unknown; id?: unknown } | undefined;
  return !!id && (id.entityType === 'DEVICE' || id.entityType === 'DEVICE_PROFILE') && typeof id.id === 'string';
}

/** Registers the preSerialization hook on the admin context. */
export function addOtaAssignmentsToEntities(app: FastifyInstance, core: Core): void {
  app.addHook('preSerialization', async (_req, _reply, payload: unknown) => {
    const items = Array.isArray((payload as Json | null)?.data) ? ((payload as Json).data as unknown[]) : [payload];
    const entities = items.filter(isAssignable);
    if (entities.length === 0) return payload;
    const assigned = await core.ota.assignmentsOf(entities.map((e) => e.id.id));
    for (const e of entities) Object.assign(e, assignmentJson(assigned.get(e.id.id)));
    return payload;
  });
}
