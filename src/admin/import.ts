/**
 * Bulk pre-provisioning over the admin API (the device CSV columns, shared with the `fleetgate` CLI, are in device-csv.ts):
 * - POST /api/devices/import?deviceProfileId=  body `text/csv` (a header line, then one device per line) or JSON
 *   `{"rows":[{"name":..,"accessToken":..},..]}`; answers `{created, skipped, rejected, duplicates, errors}`.
 * - GET /api/devices/export?deviceProfileId=  the devices with their credentials as CSV (or JSON with
 *   `Accept: application/json`), in the import's columns, for the factory.
 * Both call core (`devices.importDevices` / `exportDevices`); rows are checked and inserted there.
 */
import type { FastifyInstance } from 'fastify';
import type { DeviceExportRow, DeviceImportResult, DeviceImportRow } from '../core/api.ts';
import { badRequest } from '../core/errors.ts';
import { actorOf, principalOf, type AdminDeps } from './context.ts';
import { toCsv } from './csv.ts';
import { csvToImportRows, EXPORT_COLUMNS, ImportFileError } from './device-csv.ts';
import { entityIdInput } from './request-input.ts';
import { SECURED } from './schemas.ts';

export { csvToImportRows, EXPORT_COLUMNS, ImportFileError } from './device-csv.ts';

/** Largest import body; 100,000 devices with tokens take about 4 MB. */
export const IMPORT_BODY_LIMIT = 64 * 1024 * 1024;

const ROW_FIELDS = ['name', 'type', 'label', 'accessToken', 'clientId', 'username', 'password', 'certificate', 'isGateway'] as const;

/** JSON rows -> import rows; `line` defaults to the row's position (1-based). */
function jsonToImportRows(body: unknown): DeviceImportRow[] {
  const rows = (body as { rows?: unknown } | null)?.rows;
  if (!Array.isArray(rows)) throw badRequest('Invalid request body: {"rows":[...]} or text/csv is expected');
  return rows.map((raw, i) => {
    if (!raw || typeof raw !== 'object' || Array.isArray(raw)) throw badRequest(`Invalid rows[${i}]: a JSON object is expected`);
    const r = raw as Record<string, unknown>;
    const row: DeviceImportRow = { line: typeof r.line === 'number' && Number.isInteger(r.line) ? r.line : i + 1, name: '' };
    for (const field of ROW_FIELDS) {
      const v = r[field];
      if (v === undefined || v === null) continue;
      if (field === 'isGateway' && typeof v === 'boolean') {
        row.isGateway = String(v);
        continue;
      }
      if (typeof v !== 'string') throw badRequest(`Invalid rows[${i}].${field}: a string is expected`);
      row[field] = v;
    }
    return row;
  });
}

/** The JSON answer of an import. */
export function importResultJson(result: DeviceImportResult): Record<string, unknown> {
  return {
    created: result.created,
    skipped: result.duplicates.length,
    rejected: result.rejected.length,
    duplicates: result.duplicates,
    errors: result.rejected,
  };
}

type ImportQuery = { deviceProfileId?: string; batchSize?: number };

/** Registers the import and export routes (authenticated). */
export function registerImportRoutes(app: FastifyInstance, deps: AdminDeps): void {
  app.addContentTypeParser('text/csv', { parseAs: 'string', bodyLimit: IMPORT_BODY_LIMIT }, (_req, body, done) => done(null, body));

  app.post<{ Querystring: ImportQuery; Body: unknown }>(
    '/api/devices/import',
    {
      bodyLimit: IMPORT_BODY_LIMIT,
      schema: {
        tags: ['devices'],
        summary: 'Pre-provision devices in bulk into a CHECK_PRE_PROVISIONED_DEVICES profile (text/csv or {"rows":[..]})',
        security: SECURED,
        querystring: {
          type: 'object',
          required: ['deviceProfileId'],
          properties: { deviceProfileId: { type: 'string', format: 'uuid' }, batchSize: { type: 'integer', minimum: 1, maximum: 10000 } },
        },
      },
    },
    async (req) => {
      const profileId = entityIdInput(req.query.deviceProfileId, 'deviceProfileId')!;
      let rows: DeviceImportRow[];
      let early: DeviceImportResult['rejected'] = [];
      if (typeof req.body === 'string') {
        try {
          ({ rows, rejected: early } = csvToImportRows(req.body));
        } catch (err) {
          if (err instanceof ImportFileError) throw badRequest(`Invalid CSV: ${err.message}`);
          throw err;
        }
      } else rows = jsonToImportRows(req.body);
      const result = await deps.core.devices.importDevices(principalOf(req).tenantId, profileId, rows, actorOf(req), { batchSize: req.query.batchSize });
      result.rejected = [...early, ...result.rejected].sort((a, b) => a.line - b.line);
      deps.logger.info({ event: 'import', profileId, rows: rows.length + early.length, created: result.created, skipped: result.duplicates.length, rejected: result.rejected.length }, 'devices imported');
      return importResultJson(result);
    },
  );

  app.get<{ Querystring: { deviceProfileId?: string } }>(
    '/api/devices/export',
    {
      schema: {
        tags: ['devices'],
        summary: 'Devices with their credentials as CSV (Accept: application/json for JSON), for the factory',
        security: SECURED,
        querystring: { type: 'object', properties: { deviceProfileId: { type: 'string', format: 'uuid' } } },
      },
    },
    async (req, reply) => {
      const rows: DeviceExportRow[] = await deps.core.devices.exportDevices(principalOf(req).tenantId, req.query.deviceProfileId, actorOf(req));
      if ((req.headers.accept ?? '').includes('application/json')) return rows;
      return reply.header('content-type', 'text/csv; charset=utf-8').send(toCsv(EXPORT_COLUMNS, rows as unknown as Record<string, string>[]));
    },
  );
}
