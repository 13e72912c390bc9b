/**
 * The admin REST API: ThingsBoard-shaped routes for auth, device profiles, devices and credentials,
 * telemetry, attributes, RPC and the audit log, plus /healthz and the OpenAPI document and UI.
 * Everything lives in one encapsulated fastify context on the shared HTTP app; errors are thrown as
 * FleetgateErrors and rendered by the app's error handler (src/transports/http/app.ts).
 */
import fastifyJwt from '@fastify/jwt';
import type { FastifyInstance } from 'fastify';
import { registerApiKeyRoutes } from './api-keys.ts';
import { registerAttributeRoutes } from './attributes.ts';
import { registerAuditRoutes } from './audit.ts';
import { registerConsoleDeviceRoutes } from './console-devices.ts';
import { registerConsoleInfoRoutes } from './console-info.ts';
import { registerConsoleOverviewRoutes } from './console-overview.ts';
import { authenticate, registerPublicAuthRoutes, registerUserRoutes } from './auth.ts';
import type { AdminDeps } from './context.ts';
import { registerDeviceInfoRoutes } from './device-infos.ts';
import { registerBulkImportRoutes } from './bulk-import.ts';
import { registerDeviceRoutes } from './devices.ts';
import { registerDeviceWithCredentialsRoutes } from './device-with-credentials.ts';
import { toAdminError } from './error-mapping.ts';
import { registerExportRoutes } from './export.ts';
import { registerHealthRoutes } from './health.ts';
import { registerImportRoutes } from './import.ts';
import { registerOpenApi, registerOpenApiRoutes } from './openapi.ts';
import { registerProfileInfoRoutes } from './profile-infos.ts';
import { registerProfileRoutes } from './profiles.ts';
import { registerOtaRoutes } from './ota.ts';
import { addOtaAssignmentsToEntities } from './ota-assignment-hook.ts';
import { registerProvisioningSecurityRoutes } from './provisioning-security.ts';
import { registerPersistentRpcRoutes } from './rpc-persistent.ts';
import { registerRpcRoutes } from './rpc.ts';
import { registerTelemetryRoutes } from './telemetry.ts';
import { registerWebSocketApi } from './ws/index.ts';
import { registerTelemetryDeleteRoutes } from './telemetry-delete.ts';

export type { AdminDeps } from './context.ts';
export { OPENAPI_PATH, registerOpenApi, SWAGGER_UI_PATH } from './openapi.ts';

/** Any fastify instance, whatever its logger and type provider (the app may be typed with a pino logger). */
type AnyFastify = FastifyInstance<any, any, any, any, any>;

/**
 * Registers the admin API on the shared HTTP app. Every route except login, token refresh,
 * /healthz and the OpenAPI document/UI requires a valid access token.
 */
export async function registerAdminApi(app: AnyFastify, deps: AdminDeps): Promise<void> {
  // server.ts registers the OpenAPI generator before any route, so the device API is listed too; alone, do it here.
  if (!app.hasDecorator('swagger')) await registerOpenApi(app);
  await app.register(async (admin: FastifyInstance) => {
    // Fastify's own request errors (schema, body parsing) become FleetgateErrors; the thrown error
    // goes on to the app's error handler, which renders ThingsBoard error JSON.
    admin.setErrorHandler((error, req) => {
      throw toAdminError(error, req);
    });
    await admin.register(fastifyJwt, { secret: deps.jwtSecret });

    registerPublicAuthRoutes(admin, deps);
    registerHealthRoutes(admin, deps);
    await registerOpenApiRoutes(admin);
    registerWebSocketApi(admin, deps, deps.wsMetrics);

    await admin.register(async (secured: FastifyInstance) => {
      secured.addHook('onRequest', authenticate(admin, deps));
      addOtaAssignmentsToEntities(secured, deps.core);
      registerUserRoutes(secured, deps);
      registerProfileRoutes(secured, deps);
      registerDeviceRoutes(secured, deps);
      registerDeviceInfoRoutes(secured, deps);
      registerDeviceWithCredentialsRoutes(secured, deps);
      registerBulkImportRoutes(secured, deps);
      registerProfileInfoRoutes(secured, deps);
      registerTelemetryRoutes(secured, deps);
      registerTelemetryDeleteRoutes(secured, deps);
      registerAttributeRoutes(secured, deps);
      registerRpcRoutes(secured, deps);
      registerPersistentRpcRoutes(secured, deps);
      registerAuditRoutes(secured, deps);
      registerApiKeyRoutes(secured, deps);
      registerImportRoutes(secured, deps);
      registerConsoleInfoRoutes(secured, deps);
      await secured.register((ota: FastifyInstance) => registerOtaRoutes(ota, deps));
      registerProvisioningSecurityRoutes(secured, deps);
      registerExportRoutes(secured, deps);
      registerConsoleDeviceRoutes(secured, deps);
      registerConsoleOverviewRoutes(secured, deps);
    });
  });
}
