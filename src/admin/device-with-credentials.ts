/**
 * ThingsBoard's DeviceController calls for several devices or a device with its credentials (spec §2.5, §2.6):
 * GET /api/devices?deviceIds=a,b and POST /api/device-with-credentials.
 */
import type { FastifyInstance } from 'fastify';
import type { NameConflictPolicy } from '../core/api.ts';
import { badRequest } from '../core/errors.ts';
import { actorOf, principalOf, type AdminDeps } from './context.ts';
import { deviceJson } from './json-shapes.ts';
import { uuidParam } from './page-link.ts';
import { credentialsInput, deviceInput } from './request-input.ts';
import { OBJECT_BODY, SECURED } from './schemas.ts';

type WithCredentialsQuery = { nameConflictPolicy?: string; uniquifySeparator?: string; uniquifyStrategy?: string };

/** TB's NameConflictStrategy query parameters; unknown values are 400 as a Spring enum binding failure. */
function namingPolicy(query: WithCredentialsQuery): NameConflictPolicy {
  const policy = query.nameConflictPolicy || 'FAIL';
  const strategy = query.uniquifyStrategy || 'RANDOM';
  if (policy !== 'FAIL' && policy !== 'UNIQUIFY') throw badRequest(`No enum constant org.thingsboard.server.common.data.NameConflictPolicy.${policy}`);
  if (strategy !== 'RANDOM' && strategy !== 'INCREMENTAL') throw badRequest(`No enum constant org.thingsboard.server.common.data.UniquifyStrategy.${strategy}`);
  return { policy, strategy, separator: query.uniquifySeparator ?? '_' };
}

/** Registers the routes. */
export function registerDeviceWithCredentialsRoutes(app: FastifyInstance, deps: AdminDeps): void {
  const { devices } = deps.core;

  app.get<{ Querystring: { deviceIds?: string | string[] } }>(
    '/api/devices',
    {
      schema: {
        tags: ['devices'],
        summary: 'Devices by ids (getDevicesByIds): a plain array; unknown ids are left out',
        security: SECURED,
        querystring: { type: 'object', properties: { deviceIds: { anyOf: [{ type: 'string' }, { type: 'array', items: { type: 'string' } }], description: 'Comma-separated (or repeated) device ids' } } },
      },
    },
    async (req) => {
      const raw = req.query.deviceIds;
      const parts = (Array.isArray(raw) ? raw : raw === undefined ? [] : [raw]).flatMap((value) => value.split(','));
      // TB: checkArrayParameter
      if (parts.length === 0 || parts.some((part) => part.trim() === '')) throw badRequest("Parameter 'deviceIds' can't be empty!");
      const ids = [...new Set(parts.map((part) => uuidParam(part.trim())!))];
      return (await devices.getByIds(principalOf(req).tenantId, ids)).map(deviceJson);
    },
  );

  app.post<{ Body: Record<string, unknown>; Querystring: WithCredentialsQuery }>(
    '/api/device-with-credentials',
    {
      schema: {
        tags: ['devices'],
        summary: 'Create or update a device together with its credentials, in one transaction (saveDeviceWithCredentials)',
        description: 'Body `{"device":Device,"credentials":DeviceCredentials}`. The credentials are stored as given (no token is generated); on update they replace the old ones, whose sessions end on every node.',
        security: SECURED,
        body: { ...OBJECT_BODY, properties: { device: { type: 'object', nullable: true }, credentials: { type: 'object', nullable: true } } },
        querystring: {
          type: 'object',
          properties: {
            nameConflictPolicy: { type: 'string', description: 'FAIL (default) or UNIQUIFY' },
            uniquifySeparator: { type: 'string', description: 'Default `_`' },
            uniquifyStrategy: { type: 'string', description: 'RANDOM (default) or INCREMENTAL' },
          },
        },
      },
    },
    async (req) => {
      const body = req.body;
      const missing = ['credentials', 'device'].filter((field) => body[field] === undefined || body[field] === null);
      // TB: @NotNull on SaveDeviceWithCredentialsRequest, messages sorted and joined
      if (missing.length > 0) throw badRequest(`Validation error: ${missing.map((field) => `${field} must not be null`).join(', ')}`);
      const device = deviceInput(body.device as Record<string, unknown>);
      const { deviceId: _ignored, ...credentials } = credentialsInput({ ...(body.credentials as Record<string, unknown>), deviceId: { id: device.id ?? '00000000-0000-4000-8000-000000000000' } });
      const saved = await devices.saveWithCredentials(principalOf(req).tenantId, device, credentials, actorOf(req), namingPolicy(req.query));
      return deviceJson(saved);
    },
  );
}
