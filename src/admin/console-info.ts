/**
 * GET /api/fleetgate/info: what a client needs to talk to this server's device endpoints (the ports the transports
 * really listen on, TLS or not). The console fills its ready-to-copy provisioning commands from it; scripts can too.
 */
import type { FastifyInstance } from 'fastify';
import type { AdminDeps } from './context.ts';
import { SECURED } from './schemas.ts';

/** Listening ports of this node, known once the transports are up (0 or absent = not listening yet). */
export interface ListeningPorts {
  http?: number;
  mqtt?: number;
  coap?: number;
  mqttTls?: number;
}

/** Registers GET /api/fleetgate/info (authenticated). */
export function registerConsoleInfoRoutes(app: FastifyInstance, deps: AdminDeps): void {
  app.get(
    '/api/fleetgate/info',
    { schema: { tags: ['fleetgate'], summary: 'Device endpoints of this node: ports and TLS (fleetgate extension)', security: SECURED } },
    async () => {
      const ports = deps.ports?.() ?? {};
      const tls = !!(deps.config.tlsCert && deps.config.tlsKey);
      return {
        tls,
        httpPort: ports.http ?? deps.config.httpPort,
        mqttPort: ports.mqtt ?? deps.config.mqttPort,
        mqttTlsPort: tls ? (ports.mqttTls ?? deps.config.mqttTlsPort) : null,
        coapPort: ports.coap ?? deps.config.coapPort,
      };
    },
  );
}
