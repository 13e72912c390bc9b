/**
 * Time series routes, ThingsBoard's TelemetryController shapes for entity type DEVICE:
 * GET .../values/timeseries (latest, or a range with startTs+endTs), GET .../keys/timeseries,
 * POST .../timeseries/{scope} (save telemetry as the admin).
 * Response `{"key":[{"ts":..,"value":..}]}`, values as strings unless useStrictDataTypes=true.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { badRequest } from '../core/errors.ts';
import type { Device, KvValue } from '../core/model.ts';
import { principalOf, type AdminDeps } from './context.ts';
import { toJsonText, tsPointJson } from './kv-values.ts';
import { isJsonObject, useLosslessJsonBodies } from './lossless-body.ts';
import { keysList } from './request-input.ts';
import { SECURED, paramsWith, uuidParams } from './schemas.ts';

/** Base path of ThingsBoard's telemetry plugin API for devices. */
export const DEVICE_TELEMETRY = '/api/plugins/telemetry/DEVICE';

interface TimeseriesQuery {
  keys?: string;
  startTs?: number;
  endTs?: number;
  limit?: number;
  orderBy?: 'ASC' | 'DESC';
  useStrictDataTypes?: boolean;
  interval?: number;
  agg?: string;
}

const TIMESERIES_QUERY = {
  type: 'object',
  properties: {
    keys: { type: 'string', description: 'Comma-separated keys; all keys when absent (latest values only)' },
    startTs: { type: 'integer', description: 'Range start, ms (inclusive); with endTs selects a range query' },
    endTs: { type: 'integer', description: 'Range end, ms (inclusive)' },
    limit: { type: 'integer', minimum: 1, description: 'Most points per key (range query, default 100)' },
    orderBy: { type: 'string', enum: ['ASC', 'DESC'], description: 'Range query order (default DESC)' },
    useStrictDataTypes: { type: 'boolean', description: 'Typed values instead of strings' },
    interval: { type: 'integer', minimum: 0, description: 'Aggregation interval; only 0 (none) is supported' },
    agg: { type: 'string', description: 'Aggregation; only NONE is supported' },
  },
};

/** Sends a JSON document that may contain bigints or lossless numbers. */
export function sendJson(reply: FastifyReply, value: unknown): FastifyReply {
  return reply.type('application/json; charset=utf-8').send(toJsonText(value));
}

/** The device of a `:deviceId` route in the caller's tenant (NOT_FOUND from core otherwise). */
export function deviceOf(deps: AdminDeps, req: FastifyRequest): Promise<Device> {
  const { deviceId } = req.params as { deviceId: string };
  return deps.core.devices.get(principalOf(req).tenantId, deviceId);
}

type Series = Record<string, { ts: number; value: KvValue | null }[]>;

function renderSeries(series: Series, strict: boolean): Record<string, unknown[]> {
  const result: Record<string, unknown[]> = {};
  for (const [key, points] of Object.entries(series)) {
    if (points.length === 0) continue; // TB: keys without data in the range are left out
    result[key] = points.map((point) => tsPointJson(point, strict));
  }
  return result;
}

async function readTimeseries(deps: AdminDeps, device: Device, query: TimeseriesQuery): Promise<Series> {
  const keys = keysList(query.keys);
  if (query.startTs !== undefined && query.endTs !== undefined) {
    if (!keys) throw badRequest("Required request parameter 'keys' is not present");
    if ((query.interval ?? 0) > 0 && (query.agg ?? 'NONE') !== 'NONE') {
      throw badRequest(`Aggregation ${query.agg} is not supported; use agg=NONE`);
    }
    return deps.core.timeseries.get(device.id, {
      keys,
      startTs: query.startTs,
      endTs: query.endTs,
      limit: query.limit ?? 100,
      orderBy: query.orderBy ?? 'DESC',
    });
  }
  const latest: Series = { ...(await deps.core.timeseries.latest(device.id, keys)) };
  // TB: a requested key without a value answers [{"ts":<now>,"value":null}]
  for (const key of keys ?? []) {
    if (!latest[key] || latest[key].length === 0) latest[key] = [{ ts: Date.now(), value: null }];
  }
  return latest;
}

/** Registers the time series routes. */
export function registerTelemetryRoutes(app: FastifyInstance, deps: AdminDeps): void {
  app.get<{ Params: { deviceId: string }; Querystring: TimeseriesQuery }>(
    `${DEVICE_TELEMETRY}/:deviceId/values/timeseries`,
    {
      schema: {
        tags: ['telemetry'],
        summary: 'Latest values, or values in [startTs, endTs] (getLatestTimeseries / getTimeseries)',
        security: SECURED,
        params: uuidParams('deviceId'),
        querystring: TIMESERIES_QUERY,
      },
    },
    async (req, reply) => {
      const device = await deviceOf(deps, req);
      const series = await readTimeseries(deps, device, req.query);
      return sendJson(reply, renderSeries(series, req.query.useStrictDataTypes === true));
    },
  );

  app.get<{ Params: { deviceId: string } }>(
    `${DEVICE_TELEMETRY}/:deviceId/keys/timeseries`,
    { schema: { tags: ['telemetry'], summary: 'Time series keys of a device (getTimeseriesKeys)', security: SECURED, params: uuidParams('deviceId') } },
    async (req) => deps.core.timeseries.keys((await deviceOf(deps, req)).id),
  );

  // Lossless body: the text handed to core keeps number tokens exactly as sent (`1.0`, 64-bit longs).
  void app.register(async (writes: FastifyInstance) => {
    useLosslessJsonBodies(writes);
    writes.post<{ Params: { deviceId: string; scope: string }; Body: unknown }>(
      `${DEVICE_TELEMETRY}/:deviceId/timeseries/:scope`,
      {
        schema: {
          tags: ['telemetry'],
          summary: 'Save telemetry for a device, any device-API telemetry form (saveEntityTelemetry); scope is ignored (TB uses ANY)',
          security: SECURED,
          params: paramsWith('deviceId', 'scope'),
          body: { description: 'A JSON object or array of telemetry' },
        },
      },
      async (req, reply) => {
        if (!isJsonObject(req.body) && !Array.isArray(req.body)) throw badRequest('Unable to parse timeseries payload: Invalid JSON body!');
        const device = await deviceOf(deps, req);
        const credentials = await deps.core.devices.getCredentials(device.tenantId, device.id);
        const identity = {
          deviceId: device.id,
          tenantId: device.tenantId,
          deviceName: device.name,
          profileId: device.profileId,
          credentialsType: credentials.credentialsType,
        };
        await deps.core.telemetry.ingestJson(identity, toJsonText(req.body));
        return reply.status(200).send();
      },
    );
  });
}
