/**
 * Time series routes, ThingsBoard's TelemetryController shapes for entity type DEVICE:
 * GET .../values/timeseries (latest, or a range with startTs+endTs), GET .../keys/timeseries,
 * POST .../timeseries/{scope} (save telemetry as the admin).
 * Response `{"key":[{"ts":..,"value":..}]}`, values as strings unless useStrictDataTypes=true.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { badRequest } from '../core/errors.ts';
import type { Device, KvValue } from '../core/model.ts';
import { actorOf, principalOf, type AdminDeps } from './context.ts';
import { toJsonText, tsPointJson } from './kv-values.ts';
import { isJsonObject, useLosslessJsonBodies } from './lossless-body.ts';
import { historyQuery, requestedKeys, strictTypes, TELEMETRY_QUERY_PROPERTIES, type TelemetryQueryString } from './telemetry-query.ts';
import { SECURED, paramsWith, uuidParams } from './schemas.ts';

/** Base path of ThingsBoard's telemetry plugin API for devices. */
export const DEVICE_TELEMETRY = '/api/plugins/telemetry/DEVICE';

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

async function readTimeseries(deps: AdminDeps, device: Device, query: TelemetryQueryString): Promise<Series> {
  const history = historyQuery(query);
  if (history) return deps.core.timeseriesAdmin.history(device.id, history);
  const keys = requestedKeys(query);
  const latest: Series = { ...(await deps.core.timeseries.latest(device.id, keys)) };
  // TB: a requested key without a value answers [{"ts":<now>,"value":null}]
  for (const key of keys ?? []) {
    if (!latest[key] || latest[key].length === 0) latest[key] = [{ ts: Date.now(), value: null }];
  }
  return latest;
}

/** Registers the time series routes. */
export function registerTelemetryRoutes(app: FastifyInstance, deps: AdminDeps): void {
  for (const path of [`${DEVICE_TELEMETRY}/:deviceId/values/timeseries`, `${DEVICE_TELEMETRY}/:deviceId/values/timeseries/history`]) {
    app.get<{ Params: { deviceId: string }; Querystring: TelemetryQueryString }>(
      path,
      {
        schema: {
          tags: ['telemetry'],
          summary: 'Latest values, or with startTs and endTs the values in [startTs, endTs), raw or aggregated by the database (getLatestTimeseries / getTimeseries)',
          description:
            'agg AVG/MIN/MAX/SUM/COUNT with interval (ms) or intervalType WEEK/WEEK_ISO/MONTH/QUARTER in timeZone: one point per bucket that has data, at the bucket midpoint, ascending. ' +
            'AVG is a double; SUM a long unless a double is summed; COUNT counts booleans if any, else strings, else JSON, else numbers; MIN/MAX compare numbers, else strings.',
          security: SECURED,
          params: uuidParams('deviceId'),
          querystring: { type: 'object', properties: TELEMETRY_QUERY_PROPERTIES },
        },
      },
      async (req, reply) => {
        const strict = strictTypes(req.query);
        const device = await deviceOf(deps, req);
        const series = await readTimeseries(deps, device, req.query);
        return sendJson(reply, renderSeries(series, strict));
      },
    );
  }

  app.get<{ Params: { deviceId: string } }>(
    `${DEVICE_TELEMETRY}/:deviceId/keys/timeseries`,
    { schema: { tags: ['telemetry'], summary: 'Time series keys of a device (getTimeseriesKeys)', security: SECURED, params: uuidParams('deviceId') } },
    async (req) => deps.core.timeseries.keys((await deviceOf(deps, req)).id),
  );

  // Lossless body: the text handed to core keeps number tokens exactly as sent (`1.0`, 64-bit longs).
  void app.register(async (writes: FastifyInstance) => {
    useLosslessJsonBodies(writes);
    const save = async (req: FastifyRequest<{ Params: { deviceId: string; scope: string }; Body: unknown }>, reply: FastifyReply) => {
      // TB: JsonConverter
      if (!isJsonObject(req.body) && !Array.isArray(req.body)) throw badRequest('Unable to parse time series payload: Invalid JSON body!');
      const device = await deviceOf(deps, req);
      const credentials = await deps.core.devices.getCredentials(device.tenantId, device.id);
      await deps.core.timeseriesAdmin.save(device, credentials.credentialsType, toJsonText(req.body), actorOf(req));
      return reply.status(200).send();
    };
    const schema = (ttl: boolean) => ({
      schema: {
        tags: ['telemetry'],
        summary: `Save telemetry for a device as the server (saveEntityTelemetry${ttl ? 'WithTTL' : ''}): committed before the 200 like device telemetry; audited`,
        description: 'Any device-API telemetry form: `{"k":v}` at server time, `{"ts":ms,"values":{..}}`, or an array of these. `scope` is ignored (clients send ANY)' + (ttl ? '; `ttl` (seconds) is accepted and ignored (TB applies it on Cassandra only).' : '.'),
        security: SECURED,
        params: ttl ? paramsWith('deviceId', 'scope', 'ttl') : paramsWith('deviceId', 'scope'),
        body: { description: 'A JSON object or array of telemetry' },
      },
    });
    writes.post<{ Params: { deviceId: string; scope: string }; Body: unknown }>(`${DEVICE_TELEMETRY}/:deviceId/timeseries/:scope`, schema(false), save);
    writes.post<{ Params: { deviceId: string; scope: string; ttl: string }; Body: unknown }>(`${DEVICE_TELEMETRY}/:deviceId/timeseries/:scope/:ttl`, schema(true), save);
  });
}
