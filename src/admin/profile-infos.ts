/**
 * ThingsBoard's DeviceProfileInfo routes beyond the single reads in profiles.ts (spec §3): GET /api/deviceProfileInfos
 * (a page, or with ?deviceProfileIds= a plain array) and POST /api/deviceProfile/{id}/default.
 */
import type { FastifyInstance } from 'fastify';
import { badRequest } from '../core/errors.ts';
import { actorOf, principalOf, type AdminDeps } from './context.ts';
import { deviceProfileInfoJson, deviceProfileJson, pageJson } from './json-shapes.ts';
import { pageLink, PAGE_LINK_PROPERTIES, uuidParam, type PageLinkParams } from './page-link.ts';
import { SECURED, uuidParams } from './schemas.ts';

/** TB documents createdTime, name, type, transportType, description, isDefault. */
const PROFILE_INFO_SORTS = ['createdTime', 'name', 'type', 'transportType', 'description', 'isDefault'] as const;
const TRANSPORT_TYPES = ['DEFAULT', 'MQTT', 'COAP', 'LWM2M', 'SNMP'];

type ProfileInfosQuery = PageLinkParams & { transportType?: string; deviceTransportType?: string; deviceProfileIds?: string };

/** Registers the profile-info routes. */
export function registerProfileInfoRoutes(app: FastifyInstance, deps: AdminDeps): void {
  const { profiles } = deps.core;

  app.get<{ Querystring: ProfileInfosQuery }>(
    '/api/deviceProfileInfos',
    {
      schema: {
        tags: ['device profiles'],
        summary: 'Page of device profile infos (getDeviceProfileInfos); with deviceProfileIds a plain array of those profiles',
        description: 'Sorts: ' + PROFILE_INFO_SORTS.join(', ') + '. `transportType` filters by exact transport type (the Java client sends `deviceTransportType`, which ThingsBoard ignores; so does fleetgate).',
        security: SECURED,
        querystring: {
          type: 'object',
          properties: {
            ...PAGE_LINK_PROPERTIES,
            transportType: { type: 'string', enum: [...TRANSPORT_TYPES, ''] },
            deviceTransportType: { type: 'string', description: 'Ignored, as by ThingsBoard' },
            deviceProfileIds: { type: 'string', description: 'Comma-separated profile ids: answers a plain array of their infos' },
          },
        },
      },
    },
    async (req) => {
      const tenantId = principalOf(req).tenantId;
      if (req.query.deviceProfileIds !== undefined) {
        const ids = req.query.deviceProfileIds.split(',').map((id) => id.trim());
        if (ids.some((id) => id === '')) throw badRequest("Parameter 'deviceProfileIds' can't be empty!");
        const found = [];
        for (const id of new Set(ids.map((id) => uuidParam(id)!))) {
          const profile = await profiles.get(tenantId, id).catch(() => undefined);
          if (profile) found.push(deviceProfileInfoJson(profile));
        }
        return found;
      }
      const query = pageLink(req.query, PROFILE_INFO_SORTS);
      // TB's default order is `id` ASC, i.e. creation order (its ids are time-based).
      if (!query.sortProperty) Object.assign(query, { sortProperty: 'createdTime', sortOrder: 'ASC' });
      const page = await profiles.list(tenantId, { ...query, transportType: req.query.transportType || undefined });
      return pageJson(page, deviceProfileInfoJson);
    },
  );

  app.post<{ Params: { deviceProfileId: string } }>(
    '/api/deviceProfile/:deviceProfileId/default',
    {
      schema: {
        tags: ['device profiles'],
        summary: 'Make a device profile the default one (setDefaultDeviceProfile); returns the full profile',
        security: SECURED,
        params: uuidParams('deviceProfileId'),
      },
    },
    async (req) => deviceProfileJson(await profiles.setDefault(principalOf(req).tenantId, req.params.deviceProfileId, actorOf(req))),
  );
}
