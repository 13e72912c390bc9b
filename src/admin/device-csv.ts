/**
 * The device CSV columns shared by the admin API's text/csv import and the `fleetgate device import` CLI: header
 * names (ThingsBoard's accepted too), a record to an import row, the whole-text reader and the streaming one. It
 * loads no server module, so the CLI starts without them.
 */
import type { Readable } from 'node:stream';
import type { DeviceImportResult, DeviceImportRow } from '../core/api.ts';
import { CsvError, csvRecords, parseCsv, type CsvRecord } from './csv.ts';

type Column = keyof Omit<DeviceImportRow, 'line'> | null;

/** Import columns, as header names map to them (case, spaces, `_` and `-` ignored; ThingsBoard's names accepted). */
const COLUMN_ALIASES: Record<string, Column> = {
  name: 'name',
  devicename: 'name',
  type: 'type',
  label: 'label',
  accesstoken: 'accessToken',
  token: 'accessToken',
  clientid: 'clientId',
  mqttclientid: 'clientId',
  username: 'username',
  mqttusername: 'username',
  password: 'password',
  mqttpassword: 'password',
  certificate: 'certificate',
  x509: 'certificate',
  isgateway: 'isGateway', // ThingsBoard's IS_GATEWAY
  gateway: 'isGateway',
  // Written by the export; the kind of credentials follows from the columns that are filled.
  credentialstype: null,
  // Written by the export for profiles with derived secrets; computed, so never imported.
  provisiondevicesecret: null,
};

/** Columns of an export, in order (a superset of what the import reads). */
export const EXPORT_COLUMNS = ['name', 'type', 'label', 'credentialsType', 'accessToken', 'clientId', 'username', 'password', 'certificate', 'provisionDeviceSecret'];

/** A CSV document that cannot be imported at all (no header, no name column, unknown columns, bad quoting). */
export class ImportFileError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ImportFileError';
  }
}

/** A row that cannot be imported, with its line. */
export type RejectedRow = DeviceImportResult['rejected'][number];

function headerColumns(header: CsvRecord | undefined): Column[] {
  if (!header) throw new ImportFileError('the file is empty: a header line such as "name,accessToken" is expected');
  const columns = header.fields.map((name) => {
    const key = name.trim().toLowerCase().replace(/[\s_-]/g, '');
    if (!(key in COLUMN_ALIASES)) throw new ImportFileError(`unknown column "${name}" (known: name, type, label, accessToken, clientId, username, password, certificate, isGateway)`);
    return COLUMN_ALIASES[key];
  });
  if (!columns.includes('name')) throw new ImportFileError('the header has no "name" column');
  return columns;
}

/** One record as an import row, or rejected when its number of fields is not the header's. */
function recordToRow(columns: Column[], record: CsvRecord): DeviceImportRow | RejectedRow {
  if (record.fields.length !== columns.length) {
    const at = columns.indexOf('name');
    return { line: record.line, name: record.fields[at] ?? null, error: `expected ${columns.length} fields, found ${record.fields.length}` };
  }
  const row: DeviceImportRow = { line: record.line, name: '' };
  columns.forEach((column, i) => {
    if (column) row[column] = record.fields[i];
  });
  return row;
}

const isRejected = (r: DeviceImportRow | RejectedRow): r is RejectedRow => 'error' in r;

/** Reads device CSV into import rows; rows with the wrong number of fields are returned as rejected. */
export function csvToImportRows(text: string): { rows: DeviceImportRow[]; rejected: RejectedRow[] } {
  let records;
  try {
    records = parseCsv(text);
  } catch (err) {
    if (err instanceof CsvError) throw new ImportFileError(err.message);
    throw err;
  }
  const columns = headerColumns(records.shift());
  const rows: DeviceImportRow[] = [];
  const rejected: RejectedRow[] = [];
  for (const record of records) {
    const r = recordToRow(columns, record);
    if (isRejected(r)) rejected.push(r);
    else rows.push(r);
  }
  return { rows, rejected };
}

/**
 * Reads device CSV from a stream in chunks of at most `chunkSize` rows (plus the rows rejected meanwhile), holding no
 * more than one chunk. Throws ImportFileError for a file that cannot be imported (at the point where that shows).
 */
export async function* importRowChunks(input: Readable, chunkSize: number): AsyncGenerator<{ rows: DeviceImportRow[]; rejected: RejectedRow[] }> {
  let columns: Column[] | undefined;
  let chunk = { rows: [] as DeviceImportRow[], rejected: [] as RejectedRow[] };
  try {
    for await (const record of csvRecords(input)) {
      if (!columns) {
        columns = headerColumns(record);
        continue;
      }
      const r = recordToRow(columns, record);
      if (isRejected(r)) chunk.rejected.push(r);
      else chunk.rows.push(r);
      if (chunk.rows.length >= chunkSize) {
        yield chunk;
        chunk = { rows: [], rejected: [] };
      }
    }
  } catch (err) {
    if (err instanceof CsvError) throw new ImportFileError(err.message);
    throw err;
  }
  if (!columns) headerColumns(undefined);
  if (chunk.rows.length > 0 || chunk.rejected.length > 0) yield chunk;
}
