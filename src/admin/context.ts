/**
 * What every admin route group shares: the dependencies it is built with and the authenticated
 * user of a request (set by the auth hook, read by handlers to scope calls to the user's tenant).
 */
import type { FastifyRequest } from 'fastify';
import type { Actor } from '../core/api.ts';
import type { Core, CoreLogger } from '../core/core-types.ts';
import { FleetgateError } from '../core/errors.ts';
import type { Config } from '../config.ts';
import type { NodeStats } from '../metrics/metrics.ts';
import type { WsMetrics } from './ws/context.ts';

/** Dependencies of the admin API, passed by the composition root (src/server.ts). */
export interface AdminDeps {
  core: Core;
  config: Config;
  logger: CoreLogger;
  /** Secret that signs and verifies admin JWTs (HS256). */
  jwtSecret: string;
  /** True once the server accepts traffic; drives GET /healthz. */
  isReady: () => boolean;
  /** GET /healthz checks: each resolves when its part answers now. */
  probes: { database: () => Promise<void>; bus: () => Promise<void> };
  /** Ports the transports listen on, once they do (GET /api/fleetgate/info); config values when absent. */
  ports?: () => { http?: number; mqtt?: number; coap?: number; mqttTls?: number };
  /** This node's connection and telemetry figures (GET /api/fleetgate/overview); absent when metrics are off. */
  nodeStats?: () => Promise<NodeStats>;
  /** Where the WebSocket API reports (metrics on); undefined when metrics are off. */
  wsMetrics?: WsMetrics;
}

/** The user a request acts for, taken from a verified access token. */
export interface AdminPrincipal {
  userId: string;
  tenantId: string;
  email: string;
  authority: string;
}

const principals = new WeakMap<FastifyRequest, AdminPrincipal>();

/** Records the authenticated user of a request (called by the auth hook only). */
export function setPrincipal(req: FastifyRequest, principal: AdminPrincipal): void {
  principals.set(req, principal);
}

/** The authenticated user of a request; UNAUTHORIZED when the auth hook did not run or failed. */
export function principalOf(req: FastifyRequest): AdminPrincipal {
  const principal = principals.get(req);
  if (!principal) throw new FleetgateError('UNAUTHORIZED', 'Authentication failed');
  return principal;
}

/** The audit actor for an admin request. */
export function actorOf(req: FastifyRequest): Actor {
  const principal = principalOf(req);
  return { userId: principal.userId, userName: principal.email, source: { transport: 'admin', address: req.ip } };
}
