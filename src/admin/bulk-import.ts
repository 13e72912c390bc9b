/**
 * POST /api/device/bulk_import: ThingsBoard's BulkImportRequest (spec §2.9) — `file` CSV text and a `mapping` naming
 * the type of each column — read into rows here; core (src/core/bulk-import.ts) creates or updates the devices.
 */
import type { FastifyInstance } from 'fastify';
import { badRequest } from '../core/errors.ts';
import { csvCellValue, type BulkImportRow } from '../core/bulk-import.ts';
import { actorOf, principalOf, type AdminDeps } from './context.ts';
import { CsvError, parseCsv } from './csv.ts';
import { IMPORT_BODY_LIMIT } from './import.ts';
import { SECURED } from './schemas.ts';

const COLUMN_TYPES = [
  'NAME', 'TYPE', 'LABEL', 'DESCRIPTION', 'IS_GATEWAY', 'SHARED_ATTRIBUTE', 'SERVER_ATTRIBUTE', 'TIMESERIES', 'ACCESS_TOKEN', 'X509',
  'MQTT_CLIENT_ID', 'MQTT_USER_NAME', 'MQTT_PASSWORD', 'LWM2M_CLIENT_ENDPOINT', 'LWM2M_CLIENT_SECURITY_CONFIG_MODE', 'LWM2M_CLIENT_IDENTITY',
  'LWM2M_CLIENT_KEY', 'LWM2M_CLIENT_CERT', 'LWM2M_BOOTSTRAP_SERVER_SECURITY_MODE', 'LWM2M_BOOTSTRAP_SERVER_PUBLIC_KEY_OR_ID',
  'LWM2M_BOOTSTRAP_SERVER_SECRET_KEY', 'LWM2M_SERVER_SECURITY_MODE', 'LWM2M_SERVER_CLIENT_PUBLIC_KEY_OR_ID', 'LWM2M_SERVER_CLIENT_SECRET_KEY',
  'SNMP_HOST', 'SNMP_PORT', 'SNMP_VERSION', 'SNMP_COMMUNITY_STRING', 'ROUTING_KEY', 'SECRET',
] as const;
type ColumnType = (typeof COLUMN_TYPES)[number];

interface Column {
  type: ColumnType;
  key?: string | null;
}

interface BulkImportBody {
  file: string;
  mapping: { columns: Column[]; delimiter?: string | null; update?: boolean | null; header?: boolean | null };
}

const BODY_SCHEMA = {
  type: 'object',
  required: ['file', 'mapping'],
  properties: {
    file: { type: 'string', description: 'CSV text' },
    mapping: {
      type: 'object',
      required: ['columns'],
      properties: {
        columns: {
          type: 'array',
          items: { type: 'object', required: ['type'], properties: { type: { type: 'string', enum: [...COLUMN_TYPES] }, key: { type: 'string', nullable: true } } },
        },
        delimiter: { type: 'string', nullable: true, minLength: 1, maxLength: 1, description: 'One character (default `,`)' },
        update: { type: 'boolean', nullable: true, description: 'Write attribute and time-series cells of existing devices too (default true)' },
        header: { type: 'boolean', nullable: true, description: 'The first record is a header (default true)' },
      },
    },
  },
};

/** Reads one CSV record through the column mapping. */
function rowFrom(fields: string[], columns: Column[], line: number): BulkImportRow {
  const row: BulkImportRow = { line, shared: [], server: [], timeseries: [] };
  columns.forEach((column, i) => {
    const cell = fields[i];
    if (cell === undefined || cell === '') return; // TB: empty cells are absent
    const key = column.key ?? '';
    switch (column.type) {
      case 'NAME': row.name = cell; break;
      case 'TYPE': row.type = cell; break;
      case 'LABEL': row.label = cell; break;
      case 'DESCRIPTION': row.description = cell; break;
      case 'IS_GATEWAY': row.gateway = cell.toLowerCase() === 'true'; break;
      case 'ACCESS_TOKEN': row.accessToken = cell; break;
      case 'X509': row.certificate = cell; break;
      case 'MQTT_CLIENT_ID': row.clientId = cell; break;
      case 'MQTT_USER_NAME': row.username = cell; break;
      case 'MQTT_PASSWORD': row.password = cell; break;
      case 'SHARED_ATTRIBUTE': if (key !== '') row.shared.push({ key, value: csvCellValue(cell) }); break;
      case 'SERVER_ATTRIBUTE': if (key !== '') row.server.push({ key, value: csvCellValue(cell) }); break;
      case 'TIMESERIES': if (key !== '') row.timeseries.push({ key, value: csvCellValue(cell) }); break;
      case 'LWM2M_CLIENT_ENDPOINT': row.unsupported = 'Invalid device credentials: LWM2M credentials are not supported'; break;
      default: break; // other LwM2M, SNMP and edge-only columns: ignored
    }
  });
  return row;
}

/** Registers the route. */
export function registerBulkImportRoutes(app: FastifyInstance, deps: AdminDeps): void {
  app.post<{ Body: BulkImportBody }>(
    '/api/device/bulk_import',
    {
      bodyLimit: IMPORT_BODY_LIMIT,
      schema: {
        tags: ['devices'],
        summary: 'Create or update devices from CSV (processDevicesBulkImport)',
        description:
          'Each record creates a device, or overwrites the existing device of that NAME with the cells it has (counted `updated`). ' +
          '`update:false` only skips attribute/time-series cells of existing devices. Answers `{created, updated, errors, errorsList}`; ' +
          'errors read `Line <n>: <Exception>: <message>`, records counted from 1.',
        security: SECURED,
        body: BODY_SCHEMA,
      },
    },
    async (req) => {
      const { file, mapping } = req.body;
      let records;
      try {
        records = parseCsv(file, mapping.delimiter ?? ',');
      } catch (err) {
        if (err instanceof CsvError) throw badRequest(`Invalid CSV: ${err.message}`);
        throw err;
      }
      const header = mapping.header ?? true;
      // TB: records are numbered from 1; with a header the first data record is line 2.
      const numbered = records.map((record, i) => ({ line: i + 1, fields: record.fields }));
      const data = header ? numbered.slice(1) : numbered;
      const wide = data.find((record) => record.fields.length > mapping.columns.length);
      if (wide) throw badRequest(`Line ${wide.line}: the record has ${wide.fields.length} fields but the mapping names ${mapping.columns.length} columns`);
      const rows = data.map((record) => rowFrom(record.fields, mapping.columns, record.line));
      return deps.core.bulkImport.run(principalOf(req).tenantId, rows, mapping.update ?? true, actorOf(req));
    },
  );
}
