/**
 * ThingsBoard's HTTP device API (spec §8.3) under `/api/v1`, for ACCESS_TOKEN devices. A thin adapter: each route
 * reads the wire, calls one core function and renders the result; core parses every payload and decides.
 */
import type { FastifyInstance } from 'fastify';
import type { Config } from '../../config.ts';
import type { Core } from '../../core/core-types.ts';
import type { Logger } from '../../log.ts';
import { installFastDevicePath } from './fast-device-path.ts';
import { installFastProvisionPath } from './fast-provision-path.ts';
import { LongPolls } from './long-poll.ts';
import { registerProvisionRoute } from './provision-route.ts';
import { registerRotationRoute } from './rotation-route.ts';
import { registerX509ProvisionRoute } from './x509-provision-route.ts';
import { registerRpcRoutes } from './rpc-routes.ts';
import { registerOtaRoutes } from './ota-routes.ts';
import { registerSubscriptionRoutes } from './subscription-routes.ts';
import { registerTelemetryRoutes } from './telemetry-routes.ts';

/** What the device API routes need. */
export interface DeviceApiDeps {
  core: Core;
  config: Config;
  logger: Logger;
}

/** Route dependencies plus the app's open long polls. */
export interface DeviceRouteDeps extends DeviceApiDeps {
  polls: LongPolls;
}

/**
 * Registers the device API routes on `app` (in their own encapsulated context, so the admin API keeps fastify's JSON
 * body parsing). Long polls still waiting when the app closes are answered with 503.
 */
export function registerDeviceApi(app: FastifyInstance, deps: DeviceApiDeps): void {
  // Telemetry and attribute posts in the plain case skip fastify's machinery (same answers; fast-device-path.ts).
  installFastDevicePath(app, { core: deps.core, bodyLimit: deps.config.httpMaxPayload });
  // So does POST /api/v1/provision (fast-provision-path.ts).
  installFastProvisionPath(app, { core: deps.core, bodyLimit: deps.config.httpMaxPayload });
  app.register(
    async (api) => {
      // spec §5.3: ThingsBoard reads the body as a String whatever the Content-Type (or none), so every body reaches
      // the routes as raw bytes and core parses it.
      api.removeAllContentTypeParsers();
      api.addContentTypeParser('*', { parseAs: 'buffer' }, (_request, body, done) => done(null, body));
      // Listed under one tag in the OpenAPI document; bodies stay raw (no schema validation: core parses them).
      api.addHook('onRoute', (route) => {
        route.schema = { ...(route.schema ?? {}), tags: ['device API'] };
      });

      const routeDeps: DeviceRouteDeps = { ...deps, polls: new LongPolls() };
      api.addHook('preClose', (done) => {
        routeDeps.polls.stopAll();
        done();
      });
      registerProvisionRoute(api, routeDeps);
      registerTelemetryRoutes(api, routeDeps);
      registerSubscriptionRoutes(api, routeDeps);
      registerRpcRoutes(api, routeDeps);
      registerOtaRoutes(api, routeDeps);
      registerRotationRoute(api, routeDeps);
      registerX509ProvisionRoute(api, routeDeps);
    },
    { prefix: '/api/v1' },
  );
}
