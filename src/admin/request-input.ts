/**
 * Reads ThingsBoard-shaped request bodies and query strings into core inputs. Types are checked
 * here (the wire is the transport's business); content rules (unique names, key formats) are core's.
 * JSON `null` means "absent" (DESIGN improvement 1).
 */
import type { CredentialsInput, DeviceInput, ProfileInput } from '../core/api.ts';
import { badRequest } from '../core/errors.ts';
import {
  ATTRIBUTE_SCOPES,
  CREDENTIALS_TYPES,
  PROVISION_TYPES,
  type AttributeScope,
  type CredentialsType,
  type PageQuery,
  type ProfileData,
  type ProvisionType,
} from '../core/model.ts';

const UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** Reads an entity id given as `{"entityType":..,"id":"<uuid>"}` (ThingsBoard) or as a bare uuid string. */
export function entityIdInput(value: unknown, field: string): string | undefined {
  if (value === undefined || value === null) return undefined;
  const raw = typeof value === 'object' && !Array.isArray(value) ? (value as { id?: unknown }).id : value;
  if (raw === undefined || raw === null) return undefined;
  if (typeof raw !== 'string' || !UUID_RE.test(raw)) throw badRequest(`Invalid ${field}: a uuid is expected`);
  return raw.toLowerCase();
}

function optionalString(body: Record<string, unknown>, field: string): string | undefined {
  const value = body[field];
  if (value === undefined || value === null) return undefined;
  if (typeof value !== 'string') throw badRequest(`Invalid ${field}: a string is expected`);
  return value;
}

function optionalObject(body: Record<string, unknown>, field: string): Record<string, unknown> | undefined {
  const value = body[field];
  if (value === undefined || value === null) return undefined;
  if (typeof value !== 'object' || Array.isArray(value)) throw badRequest(`Invalid ${field}: a JSON object is expected`);
  return value as Record<string, unknown>;
}

function requiredName(body: Record<string, unknown>, message: string): string {
  const name = body.name;
  if (typeof name !== 'string' || name.trim() === '') throw badRequest(message);
  return name;
}

function enumValue<T extends string>(value: unknown, allowed: readonly T[], field: string): T | undefined {
  if (value === undefined || value === null) return undefined;
  if (typeof value !== 'string' || !(allowed as readonly string[]).includes(value)) {
    throw badRequest(`Invalid ${field}: expected one of ${allowed.join(', ')}`);
  }
  return value as T;
}

/** Device JSON (POST /api/device) -> DeviceInput. */
export function deviceInput(body: Record<string, unknown>): DeviceInput {
  const input: DeviceInput = { name: requiredName(body, 'Device name should be specified!') };
  const id = entityIdInput(body.id, 'device id');
  if (id) input.id = id;
  const type = optionalString(body, 'type');
  if (type !== undefined) input.type = type;
  const label = optionalString(body, 'label');
  if (label !== undefined) input.label = label;
  const profileId = entityIdInput(body.deviceProfileId, 'deviceProfileId');
  if (profileId) input.deviceProfileId = profileId;
  const additionalInfo = optionalObject(body, 'additionalInfo');
  if (additionalInfo !== undefined) input.additionalInfo = additionalInfo;
  return input;
}

/** DeviceProfile JSON (POST /api/deviceProfile) -> ProfileInput; a missing provisionType stays null (core sets DISABLED, spec §3.2). */
export function profileInput(body: Record<string, unknown>): ProfileInput {
  const input: ProfileInput = { name: requiredName(body, 'Device profile name should be specified!') };
  const id = entityIdInput(body.id, 'device profile id');
  if (id) input.id = id;
  const type = optionalString(body, 'type');
  if (type !== undefined) input.type = type;
  const transportType = optionalString(body, 'transportType');
  if (transportType !== undefined) input.transportType = transportType;
  input.description = optionalString(body, 'description') ?? null;
  if (body.default !== undefined && body.default !== null) {
    if (typeof body.default !== 'boolean') throw badRequest('Invalid default: a boolean is expected');
    input.default = body.default;
  }
  input.provisionType = enumValue<ProvisionType>(body.provisionType, PROVISION_TYPES, 'provisionType') ?? null;
  input.provisionDeviceKey = optionalString(body, 'provisionDeviceKey') ?? null;
  const profileData = optionalObject(body, 'profileData');
  if (profileData?.provisionConfiguration !== undefined && profileData.provisionConfiguration !== null) {
    const config = profileData.provisionConfiguration;
    if (typeof config !== 'object' || Array.isArray(config)) throw badRequest('Invalid profileData.provisionConfiguration: a JSON object is expected');
    enumValue<ProvisionType>((config as { type?: unknown }).type, PROVISION_TYPES, 'profileData.provisionConfiguration.type');
  }
  input.profileData = (profileData as ProfileData | undefined) ?? null;
  return input;
}

/** DeviceCredentials JSON (POST /api/device/credentials) -> CredentialsInput. */
export function credentialsInput(body: Record<string, unknown>): CredentialsInput {
  const deviceId = entityIdInput(body.deviceId, 'deviceId');
  // TB: DeviceCredentialsDataValidator
  if (!deviceId) throw badRequest('Invalid entity id');
  const credentialsType = enumValue<CredentialsType>(body.credentialsType, CREDENTIALS_TYPES, 'credentialsType');
  if (!credentialsType) throw badRequest('Device credentials type should be specified');
  const rowId = entityIdInput(body.id, 'credentials id');
  const id = body.credentialsId;
  if (id !== undefined && id !== null && typeof id !== 'string') throw badRequest('Invalid credentialsId: a string is expected');
  const value = body.credentialsValue;
  let credentialsValue: string | null = null;
  if (typeof value === 'string') credentialsValue = value;
  // Lenient: an MQTT_BASIC value given as an object instead of its JSON text.
  else if (value !== undefined && value !== null && typeof value === 'object') credentialsValue = JSON.stringify(value);
  else if (value !== undefined && value !== null) throw badRequest('Invalid credentialsValue: a string is expected');
  return { ...(rowId ? { id: rowId } : {}), deviceId, credentialsType, credentialsId: (id as string | null | undefined) ?? null, credentialsValue };
}

/** Paging query parameters (already type-checked by the route schema). */
export interface PageParams {
  pageSize: number;
  page: number;
  textSearch?: string;
  sortProperty?: string;
  sortOrder?: 'ASC' | 'DESC';
}

/** Query string -> PageQuery, leaving out parameters that were not given. */
export function pageQuery(query: PageParams): PageQuery {
  const result: PageQuery = { pageSize: query.pageSize, page: query.page };
  if (query.textSearch) result.textSearch = query.textSearch;
  if (query.sortProperty) result.sortProperty = query.sortProperty;
  if (query.sortOrder) result.sortOrder = query.sortOrder;
  return result;
}

/** ThingsBoard's `toKeysList`: comma-separated keys, undefined when none were given. */
export function keysList(keys: string | undefined): string[] | undefined {
  if (keys === undefined || keys === '') return undefined;
  const list = keys.split(',').filter((key) => key !== '');
  return list.length > 0 ? list : undefined;
}

/** An attribute scope path segment; anything else is 400 (TB: `Invalid attribute scope: X`). */
export function attributeScope(scope: string, message = `Invalid attribute scope: ${scope}`): AttributeScope {
  if (!(ATTRIBUTE_SCOPES as readonly string[]).includes(scope)) throw badRequest(message);
  return scope as AttributeScope;
}
