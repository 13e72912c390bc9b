/**
 * The JSON provisioning request (spec §2.1), parsed once for every transport.
 */
import type { ProvisionRequest } from '../api.ts';
import { FleetgateError } from '../errors.ts';
import { CREDENTIALS_TYPES, type CredentialsType } from '../model.ts';

function optionalString(body: Record<string, unknown>, field: string): string | undefined {
  const v = body[field];
  if (v === undefined || v === null) return undefined; // DESIGN 1: JSON null means absent
  if (typeof v === 'string') return v;
  if (typeof v === 'number' || typeof v === 'boolean') return String(v); // Gson getAsString accepts primitives
  throw new FleetgateError('INVALID_ARGUMENT', `Field ${field} must be a string`);
}

function requiredString(body: Record<string, unknown>, field: string): string {
  const v = optionalString(body, field);
  // spec §2.1: ThingsBoard's message, without echoing the body (it holds the secret).
  if (v === undefined) throw new FleetgateError('INVALID_ARGUMENT', `Failed to find the field ${field} in JSON body!`);
  return v;
}

/** Gson `getAsBoolean`: JSON booleans, or strings parsed like Boolean.parseBoolean (spec §2.1 gateway). */
function optionalBoolean(body: Record<string, unknown>, field: string): boolean | undefined {
  const v = body[field];
  if (v === undefined || v === null) return undefined;
  if (typeof v === 'boolean') return v;
  if (typeof v === 'string') return v.toLowerCase() === 'true';
  if (typeof v === 'number') return false;
  throw new FleetgateError('INVALID_ARGUMENT', `Field ${field} must be a boolean`);
}

/** Validates an already-parsed JSON value as a provisioning request. */
export function provisionRequestFromObject(body: unknown): ProvisionRequest {
  if (body === null || typeof body !== 'object' || Array.isArray(body)) {
    throw new FleetgateError('MALFORMED_PAYLOAD', 'Provisioning request must be a JSON object');
  }
  const obj = body as Record<string, unknown>;
  const typeText = optionalString(obj, 'credentialsType');
  if (typeText !== undefined && !CREDENTIALS_TYPES.includes(typeText as CredentialsType)) {
    throw new FleetgateError('INVALID_ARGUMENT', `Unknown credentialsType: ${typeText}`);
  }
  const csr = optionalString(obj, 'csr');
  return {
    ...(csr !== undefined ? { csr } : {}),
    provisionDeviceKey: requiredString(obj, 'provisionDeviceKey'),
    provisionDeviceSecret: requiredString(obj, 'provisionDeviceSecret'),
    deviceName: optionalString(obj, 'deviceName'),
    credentialsType: typeText as CredentialsType | undefined,
    token: optionalString(obj, 'token'),
    clientId: optionalString(obj, 'clientId'),
    username: optionalString(obj, 'username'),
    password: optionalString(obj, 'password'),
    hash: optionalString(obj, 'hash'),
    gateway: optionalBoolean(obj, 'gateway'),
  };
}

/**
 * Parses a JSON provisioning request. Throws FleetgateError MALFORMED_PAYLOAD when the text is not a JSON object
 * (MQTT and CoAP then try protobuf, spec §5.2) and INVALID_ARGUMENT when a field is missing or wrong.
 */
export function parseProvisionJson(text: string | Buffer): ProvisionRequest {
  const source = typeof text === 'string' ? text : text.toString('utf8');
  let body: unknown;
  try {
    body = JSON.parse(source);
  } catch {
    throw new FleetgateError('MALFORMED_PAYLOAD', 'Provisioning request is not valid JSON');
  }
  return provisionRequestFromObject(body);
}
