/**
 * GET /healthz, for load balancers and orchestrators (no token needed): 200 `{"status":"UP","checks":{...}}` once the
 * server accepts traffic and its database and bus answer; 503 with `"status":"DOWN"` before that, while shutting down,
 * or when a check fails or takes longer than PROBE_TIMEOUT_MS. `checks` says which part is down.
 */
import type { FastifyInstance } from 'fastify';
import type { AdminDeps } from './context.ts';

/** A check that has not answered by then counts as down (a PostgreSQL that does not answer hangs, not fails). */
export const PROBE_TIMEOUT_MS = 2000;

type Status = 'UP' | 'DOWN';

async function probe(check: () => Promise<void>): Promise<Status> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error('timeout')), PROBE_TIMEOUT_MS);
  });
  try {
    await Promise.race([check(), timeout]);
    return 'UP';
  } catch {
    return 'DOWN';
  } finally {
    clearTimeout(timer);
  }
}

const statusSchema = { type: 'string', enum: ['UP', 'DOWN'] };
const bodySchema = {
  type: 'object',
  properties: { status: statusSchema, checks: { type: 'object', properties: { database: statusSchema, bus: statusSchema } } },
};

/** Registers the health route. */
export function registerHealthRoutes(app: FastifyInstance, deps: AdminDeps): void {
  app.get(
    '/healthz',
    { schema: { tags: ['health'], summary: 'Readiness: 200 UP, or 503 DOWN naming the failed check', response: { 200: bodySchema, 503: bodySchema } } },
    async (_req, reply) => {
      if (!deps.isReady()) return reply.status(503).send({ status: 'DOWN' });
      const [database, bus] = await Promise.all([probe(deps.probes.database), probe(deps.probes.bus)]);
      const status: Status = database === 'UP' && bus === 'UP' ? 'UP' : 'DOWN';
      return reply.status(status === 'UP' ? 200 : 503).send({ status, checks: { database, bus } });
    },
  );
}
