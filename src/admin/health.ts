/**
 * GET /healthz, for load balancers and orchestrators (no token needed): 200 `{"status":"UP","checks":{...}}` once the
 * server accepts traffic and its database and bus answer; 503 with `"status":"DOWN"` before that, while shutting down,
 * or when a check fails or takes longer than PROBE_TIMEOUT_MS. `checks` says which part is down and `reasons` why.
 */
import type { FastifyInstance } from 'fastify';
import type { AdminDeps } from './context.ts';

/** A check that has not answered by then counts as down (a PostgreSQL that does not answer hangs, not fails). */
export const PROBE_TIMEOUT_MS = 2000;

type Status = 'UP' | 'DOWN';

/** Why a check failed, in words an operator can act on (DependencyUnavailableError carries them as `reason`). */
function reasonOf(err: unknown): string {
  const e = err as { reason?: unknown; message?: unknown } | null;
  if (typeof e?.reason === 'string') return e.reason;
  return typeof e?.message === 'string' ? e.message : String(err);
}

async function probe(check: () => Promise<void>): Promise<{ status: Status; reason?: string }> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no answer within ${PROBE_TIMEOUT_MS / 1000} s`)), PROBE_TIMEOUT_MS);
  });
  try {
    await Promise.race([check(), timeout]);
    return { status: 'UP' };
  } catch (err) {
    return { status: 'DOWN', reason: reasonOf(err) };
  } finally {
    clearTimeout(timer);
  }
}

const statusSchema = { type: 'string', enum: ['UP', 'DOWN'] };
const bodySchema = {
  type: 'object',
  properties: {
    status: statusSchema,
    checks: { type: 'object', properties: { database: statusSchema, bus: statusSchema } },
    /** Per failed check, why (e.g. "the disk holding ./data/fleetgate.db is full (SQLITE_FULL)"). */
    reasons: { type: 'object', properties: { database: { type: 'string' }, bus: { type: 'string' } } },
  },
};

/** Registers the health route. */
export function registerHealthRoutes(app: FastifyInstance, deps: AdminDeps): void {
  app.get(
    '/healthz',
    { schema: { tags: ['health'], summary: 'Readiness: 200 UP, or 503 DOWN naming the failed check', response: { 200: bodySchema, 503: bodySchema } } },
    async (_req, reply) => {
      if (!deps.isReady()) return reply.status(503).send({ status: 'DOWN' });
      const [database, bus] = await Promise.all([probe(deps.probes.database), probe(deps.probes.bus)]);
      const status: Status = database.status === 'UP' && bus.status === 'UP' ? 'UP' : 'DOWN';
      const checks = { database: database.status, bus: bus.status };
      if (status === 'UP') return reply.status(200).send({ status, checks });
      const reasons: Record<string, string> = {};
      if (database.reason !== undefined) reasons.database = database.reason;
      if (bus.reason !== undefined) reasons.bus = bus.reason;
      return reply.status(503).send({ status, checks, reasons });
    },
  );
}
