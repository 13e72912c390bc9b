/**
 * ThingsBoard's device bulk import (POST /api/device/bulk_import, spec §2.9): each row creates a device or, when a
 * device of that name exists, overwrites the cells it has (counted `updated`, also with `update:false`, which only
 * skips the existing devices' attribute and time-series cells). It goes through the same core paths as the admin API
 * (Devices.saveWithCredentials / save / saveCredentials), so audit, profile choice and session ends are the same;
 * the credential rules are the CSV import's (device-import.ts rowCredentials).
 */
import type { Actor, DeviceImportRow, DeviceInput } from './api.ts';
import type { Attributes } from './attributes.ts';
import { CredentialsRejected } from './credentials.ts';
import { rowCredentials } from './device-import.ts';
import type { Devices } from './devices.ts';
import { FleetgateError } from './errors.ts';
import type { Device, KvEntry, KvValue } from './model.ts';
import type { Store } from './ports/store.ts';

/** One CSV row as the mapping reads it. */
export interface BulkImportRow extends Omit<DeviceImportRow, 'name'> {
  name?: string;
  description?: string;
  /** IS_GATEWAY cell: `additionalInfo.gateway` (true iff the cell is `true`, any case). */
  gateway?: boolean;
  shared: KvEntry[];
  server: KvEntry[];
  timeseries: KvEntry[];
  /** Set when the row has a cell fleetgate cannot honour (LwM2M credentials): the row fails with it. */
  unsupported?: string;
}

/** ThingsBoard's BulkImportResult. */
export interface BulkImportResult {
  created: number;
  updated: number;
  errors: number;
  errorsList: string[];
}

/** TB CSV cell typing (TypeCastUtil): number (`,` read as `.`), boolean, JSON object/array, else string. */
export function csvCellValue(text: string): KvValue {
  const numeric = text.replace(/,/g, '.');
  if (/^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/.test(numeric)) {
    const n = Number(numeric);
    const fractional = numeric.includes('.') || !Number.isInteger(n);
    if (!fractional && Number.isSafeInteger(n)) return { type: 'LONG', value: n };
    if (Number.isFinite(n)) return { type: 'DOUBLE', value: n };
  }
  if (/^(true|false)$/i.test(text)) return { type: 'BOOLEAN', value: text.toLowerCase() === 'true' };
  if (/^\s*[[{]/.test(text)) {
    try {
      JSON.parse(text);
      return { type: 'JSON', value: text };
    } catch {
      // not JSON: a string
    }
  }
  return { type: 'STRING', value: text };
}

const hasCredentials = (row: BulkImportRow) => [row.accessToken, row.clientId, row.username, row.password, row.certificate].some((v) => v !== undefined && v !== '');

/** `Line <n>: <TB exception class>: <message>` for one failed row. */
function rowError(line: number, err: unknown): string {
  if (err instanceof CredentialsRejected) return `Line ${line}: DeviceCredentialsValidationException: Invalid device credentials: ${err.message}`;
  if (err instanceof FleetgateError) {
    const credentials = /credentials/i.test(err.message);
    return `Line ${line}: ${credentials ? 'DeviceCredentialsValidationException' : 'DataValidationException'}: ${err.message}`;
  }
  return `Line ${line}: RuntimeException: ${err instanceof Error ? err.message : String(err)}`;
}

/** Runs ThingsBoard's bulk import over rows already read from CSV. */
export class DeviceBulkImport {
  constructor(
    private readonly store: Store,
    private readonly devices: Devices,
    private readonly attributes: Attributes,
  ) {}

  async run(tenantId: string, rows: BulkImportRow[], update: boolean, actor: Actor): Promise<BulkImportResult> {
    const result: BulkImportResult = { created: 0, updated: 0, errors: 0, errorsList: [] };
    for (const row of rows) {
      try {
        const { device, created } = await this.importRow(tenantId, row, actor);
        if (created || update) await this.writeValues(device, row);
        if (created) result.created++;
        else result.updated++;
      } catch (err) {
        result.errors++;
        result.errorsList.push(rowError(row.line, err));
      }
    }
    return result;
  }

  private async importRow(tenantId: string, row: BulkImportRow, actor: Actor): Promise<{ device: Device; created: boolean }> {
    const name = row.name?.trim() ?? '';
    if (name === '') throw new FleetgateError('INVALID_ARGUMENT', 'Device name should be specified!');
    if (name.length > 255) throw new FleetgateError('INVALID_ARGUMENT', 'Validation error: name length must be equal or less than 255');
    if (row.unsupported) throw new FleetgateError('INVALID_ARGUMENT', row.unsupported);
    const existing = await this.store.findDeviceByName(tenantId, name);
    const info: Record<string, unknown> = { ...(existing?.additionalInfo ?? {}) };
    if (row.description !== undefined) info.description = row.description;
    if (row.gateway !== undefined) info.gateway = row.gateway;
    const input: DeviceInput = {
      name,
      label: row.label ?? existing?.label ?? null,
      additionalInfo: Object.keys(info).length > 0 ? info : null,
      ...(row.type ? { type: row.type } : {}),
      ...(existing ? { id: existing.id } : {}),
    };
    if (!existing) {
      const creds = rowCredentials({ ...row, name });
      const device = await this.devices.saveWithCredentials(tenantId, input, { credentialsType: creds.type, credentialsId: creds.id, credentialsValue: creds.value }, actor);
      return { device, created: true };
    }
    const device = await this.devices.save(tenantId, input, actor);
    if (hasCredentials(row)) {
      const creds = rowCredentials({ ...row, name });
      await this.devices.saveCredentials(tenantId, { deviceId: device.id, credentialsType: creds.type, credentialsId: creds.id, credentialsValue: creds.value }, actor);
    }
    return { device, created: false };
  }

  private async writeValues(device: Device, row: BulkImportRow): Promise<void> {
    await this.attributes.saveEntries(device, 'SHARED_SCOPE', row.shared);
    await this.attributes.saveEntries(device, 'SERVER_SCOPE', row.server);
    if (row.timeseries.length > 0) {
      const ts = Date.now();
      await this.store.writeBatch({ telemetry: row.timeseries.map((e) => ({ deviceId: device.id, ts, key: e.key, value: e.value })), attributes: [] });
    }
  }
}
