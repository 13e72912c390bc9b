/**
 * DELETE /api/plugins/telemetry/DEVICE/{id}/timeseries/delete (spec §4.3) and the key lists of a profile's devices,
 * GET /api/deviceProfile/devices/keys/timeseries and /attributes (spec §3).
 */
import type { FastifyInstance } from 'fastify';
import { badRequest } from '../core/errors.ts';
import { actorOf, principalOf, type AdminDeps } from './context.ts';
import { booleanParam, uuidParam } from './page-link.ts';
import { SECURED, uuidParams } from './schemas.ts';
import { deviceOf, DEVICE_TELEMETRY } from './telemetry.ts';
import { longParam, requestedKeys, type TelemetryQueryString } from './telemetry-query.ts';

/** Registers the routes. */
export function registerTelemetryDeleteRoutes(app: FastifyInstance, deps: AdminDeps): void {
  app.delete<{ Params: { deviceId: string }; Querystring: TelemetryQueryString }>(
    `${DEVICE_TELEMETRY}/:deviceId/timeseries/delete`,
    {
      schema: {
        tags: ['telemetry'],
        summary: 'Delete time series of keys in [startTs, endTs), or all of them (deleteEntityTimeseries); audited',
        security: SECURED,
        params: uuidParams('deviceId'),
        querystring: {
          type: 'object',
          properties: {
            keys: { type: 'string', description: 'Comma-separated keys (or repeated `key`)' },
            key: { anyOf: [{ type: 'string' }, { type: 'array', items: { type: 'string' } }] },
            deleteAllDataForKeys: { type: 'string', description: 'true: every point, [0, now) (default false)' },
            startTs: { type: 'string', description: 'Required unless deleteAllDataForKeys' },
            endTs: { type: 'string', description: 'Required unless deleteAllDataForKeys (exclusive)' },
            deleteLatest: { type: 'string', description: 'Also delete a latest value inside the range (default true)' },
            rewriteLatestIfDeleted: { type: 'string', description: 'Then make the newest point before startTs the latest value (default false)' },
          },
        },
      },
    },
    async (req, reply) => {
      const q = req.query;
      const keys = requestedKeys(q) ?? [];
      if (keys.length === 0) throw badRequest('Empty keys: []');
      const all = booleanParam(q.deleteAllDataForKeys, 'deleteAllDataForKeys') ?? false;
      let startTs = longParam(q.startTs, 'startTs');
      let endTs = longParam(q.endTs, 'endTs');
      if (all) {
        startTs = 0;
        endTs = Date.now();
      } else if (startTs === undefined || endTs === undefined) {
        throw badRequest("When deleteAllDataForKeys is false, start and end timestamp values shouldn't be empty");
      }
      const device = await deviceOf(deps, req);
      await deps.core.timeseriesAdmin.delete(
        device,
        {
          keys,
          startTs,
          endTs,
          deleteLatest: booleanParam(q.deleteLatest, 'deleteLatest') ?? true,
          rewriteLatest: booleanParam(q.rewriteLatestIfDeleted, 'rewriteLatestIfDeleted') ?? false,
        },
        actorOf(req),
      );
      return reply.status(200).send();
    },
  );

  for (const kind of ['timeseries', 'attributes'] as const) {
    app.get<{ Querystring: { deviceProfileId?: string } }>(
      `/api/deviceProfile/devices/keys/${kind}`,
      {
        schema: {
          tags: ['device profiles'],
          summary: `Distinct ${kind === 'timeseries' ? 'time-series' : 'attribute'} keys of up to 100 devices of a profile, or of the tenant (getDeviceProfile${kind === 'timeseries' ? 'Timeseries' : 'Attributes'}Keys)`,
          security: SECURED,
          querystring: { type: 'object', properties: { deviceProfileId: { type: 'string', description: 'Profile id; all devices when absent' } } },
        },
      },
      async (req) => {
        const tenantId = principalOf(req).tenantId;
        const profileId = uuidParam(req.query.deviceProfileId);
        if (profileId) await deps.core.profiles.get(tenantId, profileId);
        return deps.core.timeseriesAdmin.profileKeys(tenantId, profileId, kind);
      },
    );
  }
}
