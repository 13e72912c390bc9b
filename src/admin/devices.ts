/**
 * Device and device-credentials routes, ThingsBoard's DeviceController shapes: POST /api/device
 * (?accessToken=), GET/DELETE /api/device/{id}, GET /api/tenant/devices (by ?deviceName= or paged),
 * GET /api/device/{id}/credentials, POST /api/device/credentials.
 */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { badRequest } from '../core/errors.ts';
import type { Device, Page, PageQuery } from '../core/model.ts';
import { actorOf, principalOf, type AdminDeps } from './context.ts';
import { deviceCredentialsJson, deviceJson, pageJson } from './json-shapes.ts';
import { credentialsInput, deviceInput, pageQuery, type PageParams } from './request-input.ts';
import { OBJECT_BODY, PAGE_QUERY_PROPERTIES, SECURED, uuidParams } from './schemas.ts';

const DEVICE_BODY = {
  ...OBJECT_BODY,
  description: 'ThingsBoard Device JSON; omit `id` to create. Without deviceProfileId the profile is found by `type` or the default one is used.',
  properties: {
    name: { type: 'string' },
    type: { type: 'string', nullable: true },
    label: { type: 'string', nullable: true },
    deviceProfileId: { type: 'object', nullable: true, properties: { entityType: { type: 'string' }, id: { type: 'string', format: 'uuid' } } },
    additionalInfo: { type: 'object', nullable: true },
  },
};

const CREDENTIALS_BODY = {
  ...OBJECT_BODY,
  description:
    'ThingsBoard DeviceCredentials JSON (normally the object read from GET /api/device/{id}/credentials). credentialsId is computed (SHA3-256) ' +
    'for X509_CERTIFICATE and MQTT_BASIC. The sessions that used the old credentials end on every node and transport.',
  properties: {
    id: { type: 'object', nullable: true, description: 'The credentials row id; when given it must be the device\'s' },
    deviceId: { type: 'object', nullable: true, properties: { entityType: { type: 'string' }, id: { type: 'string' } } },
    credentialsType: { type: 'string', nullable: true, enum: ['ACCESS_TOKEN', 'X509_CERTIFICATE', 'MQTT_BASIC', 'LWM2M_CREDENTIALS', null] },
    credentialsId: { type: 'string', nullable: true },
    credentialsValue: { description: 'String (JSON text for MQTT_BASIC; an object is accepted too), or null' },
  },
};

const TENANT_DEVICES_QUERY = {
  type: 'object',
  properties: {
    deviceName: { type: 'string', description: 'Return the one device with this name instead of a page' },
    type: { type: 'string', description: 'Only devices of this device type (profile name)' },
    ...PAGE_QUERY_PROPERTIES,
  },
};

type TenantDevicesQuery = Partial<PageParams> & { deviceName?: string; type?: string };

/** Resolves ThingsBoard's `type` filter (a profile name) to a profile id; null when no profile has that name. */
async function profileIdByName(deps: AdminDeps, tenantId: string, name: string): Promise<string | null> {
  const page = await deps.core.profiles.list(tenantId, { pageSize: 1000, page: 0, textSearch: name });
  return page.data.find((profile) => profile.name === name)?.id ?? null;
}

async function listTenantDevices(deps: AdminDeps, req: FastifyRequest<{ Querystring: TenantDevicesQuery }>): Promise<Page<Device>> {
  const { query } = req;
  const tenantId = principalOf(req).tenantId;
  if (query.pageSize === undefined) throw badRequest("Required request parameter 'pageSize' is not present");
  if (query.page === undefined) throw badRequest("Required request parameter 'page' is not present");
  const listQuery: PageQuery & { profileId?: string } = pageQuery(query as PageParams);
  if (query.type) {
    const profileId = await profileIdByName(deps, tenantId, query.type);
    if (!profileId) return { data: [], totalPages: 0, totalElements: 0, hasNext: false };
    listQuery.profileId = profileId;
  }
  return deps.core.devices.list(tenantId, listQuery);
}

type IdParams = { Params: { deviceId: string } };

/** Registers the device and credentials routes. */
export function registerDeviceRoutes(app: FastifyInstance, deps: AdminDeps): void {
  const { devices } = deps.core;

  app.post<{ Body: Record<string, unknown>; Querystring: { accessToken?: string } }>(
    '/api/device',
    {
      schema: {
        tags: ['devices'],
        summary: 'Create or update a device (saveDevice); ?accessToken= sets the token of a new device',
        security: SECURED,
        body: DEVICE_BODY,
        querystring: { type: 'object', properties: { accessToken: { type: 'string' } } },
      },
    },
    async (req) => {
      const accessToken = req.query.accessToken || undefined;
      const saved = await devices.save(principalOf(req).tenantId, deviceInput(req.body), actorOf(req), accessToken);
      return deviceJson(saved);
    },
  );

  app.get<IdParams>(
    '/api/device/:deviceId',
    { schema: { tags: ['devices'], summary: 'Get a device (getDeviceById)', security: SECURED, params: uuidParams('deviceId') } },
    async (req) => deviceJson(await devices.get(principalOf(req).tenantId, req.params.deviceId)),
  );

  app.delete<IdParams>(
    '/api/device/:deviceId',
    { schema: { tags: ['devices'], summary: 'Delete a device with its credentials and data (deleteDevice)', security: SECURED, params: uuidParams('deviceId') } },
    async (req, reply) => {
      await devices.delete(principalOf(req).tenantId, req.params.deviceId, actorOf(req));
      return reply.status(200).send();
    },
  );

  app.get<{ Querystring: TenantDevicesQuery }>(
    '/api/tenant/devices',
    {
      schema: {
        tags: ['devices'],
        summary: 'One device by ?deviceName= (getTenantDevice), or a page of devices (getTenantDevices)',
        security: SECURED,
        querystring: TENANT_DEVICES_QUERY,
      },
    },
    async (req) => {
      const tenantId = principalOf(req).tenantId;
      if (req.query.deviceName !== undefined) return deviceJson(await devices.findByName(tenantId, req.query.deviceName));
      return pageJson(await listTenantDevices(deps, req), deviceJson);
    },
  );

  app.get<IdParams>(
    '/api/device/:deviceId/credentials',
    { schema: { tags: ['devices'], summary: 'Credentials of a device (getDeviceCredentialsByDeviceId)', security: SECURED, params: uuidParams('deviceId') } },
    async (req) => deviceCredentialsJson(await devices.getCredentials(principalOf(req).tenantId, req.params.deviceId)),
  );

  app.post<{ Body: Record<string, unknown> }>(
    '/api/device/credentials',
    { schema: { tags: ['devices'], summary: 'Replace the credentials of a device (updateDeviceCredentials)', security: SECURED, body: CREDENTIALS_BODY } },
    async (req) => {
      const saved = await devices.saveCredentials(principalOf(req).tenantId, credentialsInput(req.body), actorOf(req));
      return deviceCredentialsJson(saved);
    },
  );
}
