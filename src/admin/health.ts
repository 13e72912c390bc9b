/**
 * GET /healthz: 200 `{"status":"UP"}` once the server accepts traffic, 503 `{"status":"DOWN"}` before
 * that and while shutting down (for load balancers and orchestrators; no token needed).
 */
import type { FastifyInstance } from 'fastify';
import type { AdminDeps } from './context.ts';

/** Registers the health route. */
export function registerHealthRoutes(app: FastifyInstance, deps: AdminDeps): void {
  app.get(
    '/healthz',
    {
      schema: {
        tags: ['health'],
        summary: 'Readiness: 200 UP or 503 DOWN',
        response: {
          200: { type: 'object', properties: { status: { type: 'string', enum: ['UP'] } } },
          503: { type: 'object', properties: { status: { type: 'string', enum: ['DOWN'] } } },
        },
      },
    },
    async (_req, reply) => (deps.isReady() ? reply.status(200).send({ status: 'UP' }) : reply.status(503).send({ status: 'DOWN' })),
  );
}
