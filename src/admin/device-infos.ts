/**
 * ThingsBoard's DeviceInfo routes (spec §2.2-2.4): GET /api/tenant/deviceInfos, GET /api/device/info/{id},
 * GET /api/device/types. `active` is defined in src/core/device-activity.ts.
 */
import type { FastifyInstance } from 'fastify';
import { principalOf, type AdminDeps } from './context.ts';
import { deviceInfoJson, deviceTypeJson, pageJson } from './json-shapes.ts';
import { booleanParam, pageLink, PAGE_LINK_PROPERTIES, uuidParam, type PageLinkParams } from './page-link.ts';
import { SECURED, uuidParams } from './schemas.ts';

/** TB documents createdTime, name, deviceProfileName, label, customerTitle; `type` works there too. */
const DEVICE_INFO_SORTS = ['createdTime', 'name', 'deviceProfileName', 'label', 'customerTitle', 'type'] as const;

type DeviceInfosQuery = PageLinkParams & { type?: string; deviceProfileId?: string; active?: string };

/** Registers the DeviceInfo routes. */
export function registerDeviceInfoRoutes(app: FastifyInstance, deps: AdminDeps): void {
  const { deviceInfos, profiles } = deps.core;

  app.get<{ Querystring: DeviceInfosQuery }>(
    '/api/tenant/deviceInfos',
    {
      schema: {
        tags: ['devices'],
        summary: 'Page of device infos: devices with deviceProfileName and active (getTenantDeviceInfos)',
        description:
          '`active`: the device authenticated, had an open session or sent a request within deviceInactivityTimeoutMs. ' +
          '`textSearch` matches name, label and type. Sorts: ' + DEVICE_INFO_SORTS.join(', ') + '; default creation order.',
        security: SECURED,
        querystring: {
          type: 'object',
          required: ['pageSize', 'page'],
          properties: {
            ...PAGE_LINK_PROPERTIES,
            type: { type: 'string', description: 'Device type (profile name); wins over deviceProfileId' },
            deviceProfileId: { type: 'string', description: 'Only devices of this profile (uuid)' },
            active: { type: 'string', description: 'true: only active devices; false: only inactive ones' },
          },
        },
      },
    },
    async (req) => {
      const tenantId = principalOf(req).tenantId;
      const query = pageLink(req.query, DEVICE_INFO_SORTS);
      const active = booleanParam(req.query.active, 'active');
      let profileId = uuidParam(req.query.deviceProfileId);
      if (req.query.type && req.query.type.trim() !== '') {
        // TB: a non-blank `type` wins over deviceProfileId; an unknown type matches nothing.
        const byName = (await profiles.list(tenantId, { pageSize: 100_000, page: 0, textSearch: req.query.type })).data.find((p) => p.name === req.query.type);
        if (!byName) return { data: [], totalPages: 0, totalElements: 0, hasNext: false };
        profileId = byName.id;
      }
      return pageJson(await deviceInfos.list(tenantId, { ...query, profileId, active }), deviceInfoJson);
    },
  );

  app.get<{ Params: { deviceId: string } }>(
    '/api/device/info/:deviceId',
    { schema: { tags: ['devices'], summary: 'One device info (getDeviceInfoById)', security: SECURED, params: uuidParams('deviceId') } },
    async (req) => deviceInfoJson(await deviceInfos.get(principalOf(req).tenantId, req.params.deviceId)),
  );

  // A static route: find-my-way matches it before /api/device/:deviceId whatever the registration order.
  app.get(
    '/api/device/types',
    { schema: { tags: ['devices'], summary: 'Device types in use: names of profiles that have devices, sorted (getDeviceTypes)', security: SECURED } },
    async (req) => {
      const tenantId = principalOf(req).tenantId;
      return (await deviceInfos.types(tenantId)).map((type) => deviceTypeJson(tenantId, type));
    },
  );
}
