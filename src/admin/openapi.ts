/**
 * The OpenAPI document of the admin API (@fastify/swagger, built from the route schemas) at
 * GET /api-docs/openapi.json, and the Swagger UI (@fastify/swagger-ui) at /swagger-ui.
 * Both are public, like ThingsBoard's /v3/api-docs and /swagger-ui.
 */
import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import type { FastifyInstance } from 'fastify';
import { SECURITY_SCHEMES } from './schemas.ts';

/** Path of the OpenAPI JSON document. */
export const OPENAPI_PATH = '/api-docs/openapi.json';
/** Path of the Swagger UI. */
export const SWAGGER_UI_PATH = '/swagger-ui';

/**
 * Registers the document generator on the app. Call before any route is added (server.ts does, before the device
 * and admin APIs): it collects every route of the app through an onRoute hook.
 */
export async function registerOpenApi(app: FastifyInstance): Promise<void> {
  await app.register(swagger, {
    openapi: {
      openapi: '3.0.3',
      info: {
        title: 'fleetgate HTTP API',
        description:
          'ThingsBoard-compatible admin REST API: log in with POST /api/auth/login and send the token as ' +
          '`X-Authorization: Bearer <token>` (or `Authorization: Bearer <token>`).',
        version: '0.1.0',
      },
      components: { securitySchemes: SECURITY_SCHEMES },
      tags: [
        { name: 'auth', description: 'Login, token refresh, current user' },
        { name: 'device profiles', description: 'Device profiles and their provisioning configuration' },
        { name: 'devices', description: 'Devices and device credentials' },
        { name: 'telemetry', description: 'Time series' },
        { name: 'attributes', description: 'Client, shared and server attributes' },
        { name: 'rpc', description: 'Server-side RPC to devices' },
        { name: 'audit', description: 'Audit log' },
        { name: 'health', description: 'Health' },
        { name: 'device API', description: 'ThingsBoard device HTTP API (/api/v1): provisioning, telemetry, attributes, RPC; authenticated by the access token in the path' },
      ],
    },
  });
}

/** Registers GET /api-docs/openapi.json and the Swagger UI; call after registerOpenApi. */
export async function registerOpenApiRoutes(app: FastifyInstance): Promise<void> {
  app.get(OPENAPI_PATH, { schema: { hide: true } }, async () => app.swagger());
  await app.register(swaggerUi, { routePrefix: SWAGGER_UI_PATH });
}
