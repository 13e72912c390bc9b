/**
 * Bulk pre-provisioning: many devices with their credentials created in batches, one transaction per batch, a few
 * multi-row statements each (Store.insertDevicesIfAbsent). Duplicates are decided by the unique indexes (DESIGN 7),
 * never by a read before the write, so two imports or an import racing provisioning stay correct across nodes. A
 * failure other than a duplicate rolls back its whole batch (no device is ever left without its credentials);
 * earlier batches stay, and re-running the same import is safe because the devices already there are skipped as
 * duplicates.
 */
import type { Actor, DeviceExportRow, DeviceImportResult, DeviceImportRow, ImportOptions } from './api.ts';
import type { AuditRecorder } from './audit.ts';
import { buildCredentials, CredentialsRejected, parseMqttBasicValue } from './credentials.ts';
import { FleetgateError } from './errors.ts';
import { newId, randomAlphanumeric } from './ids.ts';
import type { CredentialsType, Device, DeviceCredentials, DeviceProfile } from './model.ts';
import { DerivedSecretColumn } from './provisioning/derived-secret.ts';
import type { Store } from './ports/store.ts';

/** Devices per transaction unless the caller says otherwise. */
export const DEFAULT_IMPORT_BATCH = 1000;
/** ThingsBoard's limit on entity names. */
const MAX_NAME_LENGTH = 255;

interface Prepared {
  line: number;
  device: Device;
  credentials: DeviceCredentials;
}

const present = (v: string | undefined): v is string => v !== undefined && v !== '';

/** The credentials a row asks for; a row with none gets a generated access token. Throws CredentialsRejected. */
export function rowCredentials(row: DeviceImportRow): { type: CredentialsType; id: string; value: string | null } {
  const mqtt = [row.clientId, row.username, row.password].some(present);
  const kinds = [present(row.accessToken), mqtt, present(row.certificate)].filter(Boolean).length;
  if (kinds > 1) throw new CredentialsRejected('Give one kind of credentials: accessToken, or clientId/username/password, or certificate');
  if (mqtt) {
    const built = buildCredentials('MQTT_BASIC', { clientId: row.clientId, userName: row.username, password: row.password });
    return { type: 'MQTT_BASIC', id: built.credentialsId, value: built.credentialsValue };
  }
  if (present(row.certificate)) {
    const built = buildCredentials('X509_CERTIFICATE', { certificate: row.certificate });
    return { type: 'X509_CERTIFICATE', id: built.credentialsId, value: built.credentialsValue };
  }
  const token = present(row.accessToken) ? row.accessToken : randomAlphanumeric(20);
  const built = buildCredentials('ACCESS_TOKEN', { token });
  return { type: 'ACCESS_TOKEN', id: built.credentialsId, value: built.credentialsValue };
}

/** Checks one row; returns the rows to insert, or the reason it is rejected. */
function prepare(row: DeviceImportRow, profile: DeviceProfile, now: number): Prepared | { line: number; name: string | null; error: string } {
  const name = typeof row.name === 'string' ? row.name.trim() : '';
  const reject = (error: string) => ({ line: row.line, name: name || null, error });
  if (name === '') return reject('Device name should be specified!');
  if (name.length > MAX_NAME_LENGTH) return reject(`Device name is longer than ${MAX_NAME_LENGTH} characters`);
  if (present(row.type) && row.type.trim() !== profile.name) return reject(`Device type "${row.type}" is not the profile name "${profile.name}"`);
  const isGateway = present(row.isGateway) ? row.isGateway.trim().toLowerCase() : 'false';
  if (isGateway !== 'true' && isGateway !== 'false') return reject(`isGateway must be true or false, got "${row.isGateway}"`);
  let creds: ReturnType<typeof rowCredentials>;
  try {
    creds = rowCredentials(row);
  } catch (err) {
    if (err instanceof CredentialsRejected) return reject(err.message);
    throw err;
  }
  const device: Device = {
    id: newId(),
    tenantId: profile.tenantId,
    profileId: profile.id,
    name,
    type: profile.name, // as on every other path: type = profile name
    label: present(row.label) ? row.label : null,
    additionalInfo: isGateway === 'true' ? { gateway: true } : null, // issue 14: ThingsBoard's IS_GATEWAY column
    createdByProvisioning: false,
    createdTime: now,
  };
  const credentials: DeviceCredentials = { id: newId(), deviceId: device.id, credentialsType: creds.type, credentialsId: creds.id, credentialsValue: creds.value, createdTime: now, firstUsedTime: null };
  return { line: row.line, device, credentials };
}

/** Inserts one batch in one transaction; a row whose name or credentials are taken is skipped or rejected alone. */
async function insertBatch(store: Store, batch: Prepared[], result: DeviceImportResult): Promise<void> {
  const outcomes = await store.insertDevicesIfAbsent(batch);
  batch.forEach((p, i) => {
    if (outcomes[i] === 'created') result.created++;
    else if (outcomes[i] === 'device_name') result.duplicates.push({ line: p.line, name: p.device.name });
    else result.rejected.push({ line: p.line, name: p.device.name, error: 'Device credentials are already assigned to another device!' });
  });
}

/** Imports `rows` into a CHECK_PRE_PROVISIONED_DEVICES profile; see the module comment for the guarantees. */
export async function importDevices(
  store: Store,
  audit: AuditRecorder,
  profile: DeviceProfile,
  rows: DeviceImportRow[],
  actor: Actor,
  options: ImportOptions = {},
): Promise<DeviceImportResult> {
  if (profile.provisionType !== 'CHECK_PRE_PROVISIONED_DEVICES') {
    throw new FleetgateError('INVALID_ARGUMENT', `Device profile "${profile.name}" does not check pre-provisioned devices (its strategy is ${profile.provisionType})`);
  }
  const batchSize = Math.max(1, Math.min(options.batchSize ?? DEFAULT_IMPORT_BATCH, 10_000));
  const result: DeviceImportResult = { created: 0, duplicates: [], rejected: [] };
  const now = Date.now();
  for (let start = 0; start < rows.length; start += batchSize) {
    const batch: Prepared[] = [];
    for (const row of rows.slice(start, start + batchSize)) {
      const p = prepare(row, profile, now);
      if ('device' in p) batch.push(p);
      else result.rejected.push(p);
    }
    if (batch.length > 0) await insertBatch(store, batch, result);
    options.onProgress?.(Math.min(start + batchSize, rows.length), rows.length);
  }
  result.rejected.sort((a, b) => a.line - b.line);
  await audit.action(actor, profile.tenantId, { type: 'DEVICE_PROFILE', id: profile.id, name: profile.name }, 'DEVICES_IMPORTED', {
    rows: rows.length,
    created: result.created,
    duplicates: result.duplicates.length,
    rejected: result.rejected.length,
  });
  return result;
}

/** Devices of a profile (or of the tenant) with their credentials, in creation order, for the factory. */
export async function exportDevices(store: Store, audit: AuditRecorder, tenantId: string, profile: DeviceProfile | undefined, actor: Actor): Promise<DeviceExportRow[]> {
  const out: DeviceExportRow[] = [];
  const derivedSecrets = new DerivedSecretColumn(store);
  const pageSize = 1000;
  for (let page = 0; page < 100_000; page++) {
    const batch = await store.listDevices(tenantId, { pageSize, page, sortProperty: 'createdTime', sortOrder: 'ASC', ...(profile ? { profileId: profile.id } : {}) });
    for (const device of batch.data) {
      const c = await store.getCredentialsOfDevice(device.id);
      const row: DeviceExportRow = { name: device.name, type: device.type, label: device.label ?? '', credentialsType: c?.credentialsType ?? '' };
      if (c?.credentialsType === 'ACCESS_TOKEN') row.accessToken = c.credentialsId;
      else if (c?.credentialsType === 'MQTT_BASIC') {
        const v = parseMqttBasicValue(c.credentialsValue);
        Object.assign(row, { clientId: v.clientId ?? '', username: v.userName ?? '', password: v.password ?? '' });
      } else if (c?.credentialsType === 'X509_CERTIFICATE') row.certificate = c.credentialsValue ?? '';
      const secret = await derivedSecrets.of(device);
      if (secret !== undefined) row.provisionDeviceSecret = secret;
      out.push(row);
    }
    if (!batch.hasNext) break;
  }
  await audit.action(actor, tenantId, { type: profile ? 'DEVICE_PROFILE' : 'TENANT', id: profile?.id ?? tenantId, name: profile?.name ?? null }, 'DEVICES_EXPORTED', { devices: out.length });
  return out;
}
