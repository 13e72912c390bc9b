/**
 * Device profile routes, ThingsBoard's DeviceProfileController shapes (spec §3.2):
 * POST /api/deviceProfile, GET/DELETE /api/deviceProfile/{id}, GET /api/deviceProfiles (page),
 * GET /api/deviceProfileInfo/default and GET /api/deviceProfileInfo/{id}.
 */
import type { FastifyInstance } from 'fastify';
import { actorOf, principalOf, type AdminDeps } from './context.ts';
import { deviceProfileInfoJson, deviceProfileJson, pageJson } from './json-shapes.ts';
import { pageQuery, profileInput, type PageParams } from './request-input.ts';
import { OBJECT_BODY, PAGE_QUERY, SECURED, uuidParams } from './schemas.ts';

const PROFILE_BODY = {
  ...OBJECT_BODY,
  description: 'ThingsBoard DeviceProfile JSON; omit `id` to create. `provisionType` null or absent is saved as DISABLED.',
  properties: {
    name: { type: 'string' },
    type: { type: 'string', description: 'DEFAULT' },
    transportType: { type: 'string', description: 'DEFAULT, MQTT, COAP, ...' },
    provisionType: { type: 'string', nullable: true, enum: ['DISABLED', 'ALLOW_CREATE_NEW_DEVICES', 'CHECK_PRE_PROVISIONED_DEVICES', 'X509_CERTIFICATE_CHAIN', null] },
    provisionDeviceKey: { type: 'string', nullable: true, description: 'Globally unique' },
    profileData: { type: 'object', nullable: true, description: 'Holds provisionConfiguration {type, provisionDeviceSecret, ...}' },
    default: { type: 'boolean', nullable: true },
    description: { type: 'string', nullable: true },
  },
};

type IdParams = { Params: { deviceProfileId: string } };

/** Registers the device profile routes. */
export function registerProfileRoutes(app: FastifyInstance, deps: AdminDeps): void {
  const { profiles } = deps.core;

  app.post<{ Body: Record<string, unknown> }>(
    '/api/deviceProfile',
    {
      schema: {
        tags: ['device profiles'],
        summary: 'Create or update a device profile (saveDeviceProfile)',
        security: SECURED,
        body: PROFILE_BODY,
      },
    },
    async (req) => {
      const saved = await profiles.save(principalOf(req).tenantId, profileInput(req.body), actorOf(req));
      return deviceProfileJson(saved);
    },
  );

  app.get<IdParams>(
    '/api/deviceProfile/:deviceProfileId',
    { schema: { tags: ['device profiles'], summary: 'Get a device profile (getDeviceProfileById)', security: SECURED, params: uuidParams('deviceProfileId') } },
    async (req) => deviceProfileJson(await profiles.get(principalOf(req).tenantId, req.params.deviceProfileId)),
  );

  app.delete<IdParams>(
    '/api/deviceProfile/:deviceProfileId',
    { schema: { tags: ['device profiles'], summary: 'Delete a device profile (deleteDeviceProfile)', security: SECURED, params: uuidParams('deviceProfileId') } },
    async (req, reply) => {
      await profiles.delete(principalOf(req).tenantId, req.params.deviceProfileId, actorOf(req));
      return reply.status(200).send();
    },
  );

  app.get<{ Querystring: PageParams }>(
    '/api/deviceProfiles',
    { schema: { tags: ['device profiles'], summary: 'Page of device profiles (getDeviceProfiles)', security: SECURED, querystring: PAGE_QUERY } },
    async (req) => pageJson(await profiles.list(principalOf(req).tenantId, pageQuery(req.query)), deviceProfileJson),
  );

  app.get(
    '/api/deviceProfileInfo/default',
    { schema: { tags: ['device profiles'], summary: 'The default device profile, short form (getDefaultDeviceProfileInfo)', security: SECURED } },
    async (req) => deviceProfileInfoJson(await profiles.getDefault(principalOf(req).tenantId)),
  );

  app.get<IdParams>(
    '/api/deviceProfileInfo/:deviceProfileId',
    { schema: { tags: ['device profiles'], summary: 'A device profile, short form (getDeviceProfileInfoById)', security: SECURED, params: uuidParams('deviceProfileId') } },
    async (req) => deviceProfileInfoJson(await profiles.get(principalOf(req).tenantId, req.params.deviceProfileId)),
  );
}
