/**
 * GET /api/fleetgate/devices: the console's device table, usable by scripts. ThingsBoard's DeviceInfo shape
 * (GET /api/tenant/deviceInfos) plus `credentialsType` and `provisioned` ({time, transport} or null), with the same
 * paging, search and sorts and the filters `deviceProfileId`, `active` and `provisioned` (true/false).
 */
import type { FastifyInstance } from 'fastify';
import { badRequest } from '../core/errors.ts';
import type { ActiveConsoleDeviceRow } from '../core/console-devices.ts';
import { principalOf, type AdminDeps } from './context.ts';
import { deviceInfoJson, pageJson } from './json-shapes.ts';
import { pageQuery, type PageParams } from './request-input.ts';
import { PAGE_QUERY_PROPERTIES, SECURED } from './schemas.ts';

type DevicesQuery = PageParams & { deviceProfileId?: string; active?: string; provisioned?: string };

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** `true`/`false` (any case) or absent/empty; anything else is a 400 naming the parameter. */
function flag(value: string | undefined, name: string): boolean | undefined {
  if (value === undefined || value === '') return undefined;
  if (/^true$/i.test(value)) return true;
  if (/^false$/i.test(value)) return false;
  throw badRequest(`Invalid value of '${name}': ${JSON.stringify(value)} (true or false)`);
}

function rowJson(row: ActiveConsoleDeviceRow): Record<string, unknown> {
  return { ...deviceInfoJson(row), credentialsType: row.credentialsType, provisioned: row.provisioned };
}

/** Registers GET /api/fleetgate/devices (authenticated). */
export function registerConsoleDeviceRoutes(app: FastifyInstance, deps: AdminDeps): void {
  app.get<{ Querystring: DevicesQuery }>(
    '/api/fleetgate/devices',
    {
      schema: {
        tags: ['fleetgate'],
        summary: 'Device table of the console: device infos with credentials type and provisioning (fleetgate extension)',
        description: 'Sorts: createdTime (default), name, label, type, deviceProfileName. textSearch matches name, label and type.',
        security: SECURED,
        querystring: {
          type: 'object',
          required: ['pageSize', 'page'],
          properties: {
            ...PAGE_QUERY_PROPERTIES,
            deviceProfileId: { type: 'string', description: 'Only devices of this profile (uuid)' },
            active: { type: 'string', description: 'true: only active (connected) devices; false: the others' },
            provisioned: { type: 'string', description: 'true: devices that provisioned themselves; false: the others (created by an admin or an import, not yet claimed)' },
          },
        },
      },
    },
    async (req) => {
      const q = req.query;
      if (q.deviceProfileId && !UUID.test(q.deviceProfileId)) throw badRequest(`Invalid UUID string: ${q.deviceProfileId}`);
      if (q.sortProperty && !['createdTime', 'name', 'label', 'type', 'deviceProfileName'].includes(q.sortProperty)) throw badRequest(`Unsupported sort property '${q.sortProperty}'`);
      const page = await deps.core.consoleDevices.list(principalOf(req).tenantId, {
        ...pageQuery(q),
        profileId: q.deviceProfileId || undefined,
        active: flag(q.active, 'active'),
        provisioned: flag(q.provisioned, 'provisioned'),
      });
      return pageJson(page, rowJson);
    },
  );
}
