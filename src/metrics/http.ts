/**
 * HTTP side of metrics and logs: GET /metrics, and an onResponse hook that counts refused device API requests and
 * logs authentication failures (device token or admin login) without the token or password.
 */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { secretsEqual } from '../core/credentials.ts';
import { redactUrl, type Logger } from '../log.ts';
import { refusedByAdmission } from '../transports/http/admission.ts';
import { observeFastPathResponses } from '../transports/http/lean-route.ts';
import type { FleetgateMetrics } from './metrics.ts';

/** Path of the Prometheus endpoint. */
export const METRICS_PATH = '/metrics';

/** Stable reason codes of refused device API requests, by HTTP status. */
const REJECTION_REASONS: Record<number, string> = { 401: 'UNAUTHORIZED', 403: 'PERMISSION_DENIED', 413: 'PAYLOAD_TOO_LARGE', 429: 'RATE_LIMITED', 503: 'SHUTTING_DOWN' };

function bearer(req: FastifyRequest): string | undefined {
  const match = /^Bearer\s+(\S+)\s*$/i.exec(req.headers.authorization ?? '');
  return match?.[1];
}

/**
 * Registers GET /metrics. Without `token` it is open (Prometheus scrapers usually send no credentials; bind or firewall
 * accordingly); with one, it requires `Authorization: Bearer <token>` (Prometheus `authorization.credentials`).
 */
export function registerMetricsRoute(app: FastifyInstance, metrics: FleetgateMetrics, token: string | undefined): void {
  app.get(METRICS_PATH, { schema: { hide: true } }, async (req, reply) => {
    if (token !== undefined) {
      const given = bearer(req);
      if (given === undefined || !secretsEqual(given, token)) {
        return reply.code(401).header('www-authenticate', 'Bearer').header('content-type', 'text/plain').send('unauthorized\n');
      }
    }
    return reply.header('content-type', metrics.contentType).send(await metrics.render());
  });
}

/** Installs the hook: device API refusals -> fleetgate_rejected_connections_total{transport="http"}; 401s -> a warn line. */
export function observeHttpOutcomes(app: FastifyInstance, metrics: FleetgateMetrics | undefined, logger: Logger): void {
  const outcome = (raw: object, status: number, url: string, ip: string | undefined, method: string | undefined): void => {
    const reason = REJECTION_REASONS[status];
    if (!reason || refusedByAdmission(raw)) return; // counted by the admission hook as MAX_CONNECTIONS
    const path = url.split('?')[0] ?? '';
    const device = path.startsWith('/api/v1/');
    if (device && !path.startsWith('/api/v1/provision')) metrics?.connectionRejected('http', reason);
    if (status === 401 && path !== METRICS_PATH) {
      const transport = device ? 'http' : 'admin';
      logger.warn({ event: 'auth_failure', transport, address: ip, method, url: redactUrl(path), statusCode: status }, 'authentication failed');
    }
  };
  app.addHook('onResponse', async (req, reply) => outcome(req.raw, reply.statusCode, req.url, req.ip, req.method));
  // The device API's lean path (telemetry and attributes posts) answers without fastify's hooks.
  observeFastPathResponses(app, (req, status) => outcome(req, status, req.url ?? '', req.socket.remoteAddress, req.method));
}
