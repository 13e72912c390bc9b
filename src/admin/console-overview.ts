/**
 * GET /api/fleetgate/overview: the fleet at a glance, for the console's overview page and for scripts.
 * - devices in total and active now (ThingsBoard's `active`, from the shared database: cluster-wide);
 * - provisioned in the last 24 h and provisioning outcomes over the last hour and day by status and reason, with
 *   hourly counts for a chart (from the audit log's PROVISION_SUCCESS/PROVISION_FAILURE rows: cluster-wide; attempts
 *   with an unknown provision key have no profile, hence no audit row, and are counted by the metrics only);
 * - this node's open connections per transport and committed telemetry messages (a counter: take two readings for
 *   a rate), from its metrics;
 * - database and bus health (the /healthz probes).
 */
import type { FastifyInstance } from 'fastify';
import type { AuditEntry } from '../core/model.ts';
import { principalOf, type AdminDeps } from './context.ts';
import { SECURED } from './schemas.ts';

const HOUR = 3_600_000;
/** Most provisioning audit rows read for one overview; beyond it the counts are marked `truncated`. */
export const OVERVIEW_MAX_PROVISIONING_ROWS = 100_000;
const PROBE_TIMEOUT_MS = 2000;

/** Count of one status + reason. */
export interface OutcomeCount {
  status: 'SUCCESS' | 'FAILURE';
  reason: string | null;
  count: number;
}

/** Groups provisioning audit rows by status and reason. */
export function countOutcomes(entries: AuditEntry[]): OutcomeCount[] {
  const counts = new Map<string, OutcomeCount>();
  for (const entry of entries) {
    const status = entry.actionType === 'PROVISION_SUCCESS' ? 'SUCCESS' : 'FAILURE';
    const reason = status === 'SUCCESS' ? null : (((entry.actionData ?? {}) as { reason?: string | null }).reason ?? entry.actionFailureDetails ?? 'UNKNOWN');
    const key = `${status}|${reason}`;
    const row = counts.get(key) ?? { status, reason, count: 0 };
    row.count++;
    counts.set(key, row);
  }
  return [...counts.values()].sort((a, b) => b.count - a.count);
}

/** Hourly buckets over the last day (oldest first): start time, successes, failures. */
export function hourlyOutcomes(entries: AuditEntry[], now: number): { start: number; success: number; failure: number }[] {
  const first = Math.floor(now / HOUR) * HOUR - 23 * HOUR;
  const buckets = Array.from({ length: 24 }, (_, i) => ({ start: first + i * HOUR, success: 0, failure: 0 }));
  for (const entry of entries) {
    const i = Math.floor((entry.createdTime - first) / HOUR);
    if (i < 0 || i >= 24) continue;
    if (entry.actionType === 'PROVISION_SUCCESS') buckets[i].success++;
    else buckets[i].failure++;
  }
  return buckets;
}

async function probe(check: () => Promise<void>): Promise<'UP' | 'DOWN'> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error('timeout')), PROBE_TIMEOUT_MS)));
  try {
    await Promise.race([check(), timeout]);
    return 'UP';
  } catch {
    return 'DOWN';
  } finally {
    clearTimeout(timer);
  }
}

/** Registers GET /api/fleetgate/overview (authenticated). */
export function registerConsoleOverviewRoutes(app: FastifyInstance, deps: AdminDeps): void {
  app.get(
    '/api/fleetgate/overview',
    { schema: { tags: ['fleetgate'], summary: 'Fleet overview: devices, provisioning outcomes, this node\'s connections and telemetry, health (fleetgate extension)', security: SECURED } },
    async (req) => {
      const tenantId = principalOf(req).tenantId;
      const now = Date.now();
      const [all, active, provisioning, database, bus, node] = await Promise.all([
        deps.core.deviceInfos.list(tenantId, { pageSize: 1, page: 0 }),
        deps.core.deviceInfos.list(tenantId, { pageSize: 1, page: 0, active: true }),
        deps.core.audit.search(tenantId, {
          pageSize: OVERVIEW_MAX_PROVISIONING_ROWS,
          page: 0,
          startTime: now - 24 * HOUR,
          endTime: now,
          actionTypes: ['PROVISION_SUCCESS', 'PROVISION_FAILURE'],
          defaultOrder: 'DESC',
        }),
        probe(deps.probes.database),
        probe(deps.probes.bus),
        deps.nodeStats ? deps.nodeStats() : Promise.resolve(null),
      ]);
      const day = provisioning.data;
      const hour = day.filter((e) => e.createdTime >= now - HOUR);
      return {
        time: now,
        devices: { total: all.totalElements, active: active.totalElements },
        provisionedLast24h: day.filter((e) => e.actionType === 'PROVISION_SUCCESS').length,
        provisioning: {
          lastHour: countOutcomes(hour),
          lastDay: countOutcomes(day),
          hourly: hourlyOutcomes(day, now),
          truncated: provisioning.totalElements > day.length,
        },
        node,
        health: { database, bus },
      };
    },
  );
}
