/**
 * Helpers for the HTTP device API tests: a whole server from the lead's harness, provisioning profiles and devices
 * made through core, and small fetch wrappers.
 */
import { provisioningProfileInput, readResponse } from '../../support/fixtures.ts';
import { randomBytes } from 'node:crypto';
import { DEFAULT_TENANT_ID, type Device, type DeviceProfile, type ProvisionType } from '../../../src/core/model.ts';
import { startTestServer, TEST_ACTOR, type TestServer } from '../../support/harness.ts';

export { startTestServer, TEST_ACTOR, type TestServer };
export const TENANT = DEFAULT_TENANT_ID;

/** A fresh 20-char `[0-9a-z]` string, as ThingsBoard's UI generates keys and secrets (spec §3.2). */
export function randomId(): string {
  return randomBytes(20).toString('hex').slice(0, 20);
}

/** Saves a provisioning profile (spec §3.2 shape); DISABLED profiles get key and secret only when given. */
export async function provisioningProfile(
  server: TestServer,
  type: ProvisionType,
  key: string | null = randomId(),
  secret: string | null = randomId(),
): Promise<DeviceProfile & { key: string; secret: string }> {
  const profile = await server.core.profiles.save(
    TENANT,
    provisioningProfileInput(`http-${type}-${randomId()}`, type, key, secret),
    TEST_ACTOR,
  );
  // The stored key: an X.509 chain profile's key is the SHA3 of its certificate (spec §3.2).
  return { ...profile, key: profile.provisionDeviceKey ?? '', secret: secret ?? '' };
}

/** Creates a device with ACCESS_TOKEN credentials; returns it with its token. */
export async function createDevice(server: TestServer, name: string, profile?: DeviceProfile, token?: string): Promise<{ device: Device; token: string }> {
  const device = await server.core.devices.save(TENANT, { name, ...(profile ? { deviceProfileId: profile.id } : {}) }, TEST_ACTOR, token);
  const creds = await server.core.devices.getCredentials(TENANT, device.id);
  return { device, token: creds.credentialsId };
}

export interface HttpAnswer {
  status: number;
  contentType: string | null;
  text: string;
  /** The body parsed as JSON, or undefined when it is empty or not JSON. */
  json: any;
}

/** One request to the server; the body is read completely. */
export async function call(server: TestServer, path: string, init: RequestInit = {}): Promise<HttpAnswer> {
  const { status, headers, text, json } = await readResponse(await fetch(`${server.httpUrl}${path}`, init));
  return { status, contentType: headers.get('content-type'), text, json };
}

/** `POST /api/v1/provision` with `body` (an object is sent as JSON text, a string as is). */
export function provision(server: TestServer, body: unknown, headers: Record<string, string> = { 'content-type': 'application/json' }): Promise<HttpAnswer> {
  return call(server, '/api/v1/provision', { method: 'POST', headers, body: typeof body === 'string' ? body : JSON.stringify(body) });
}

/** POSTs `body` to `/api/v1/{token}/{feature}`. */
export function post(server: TestServer, token: string, feature: string, body: string): Promise<HttpAnswer> {
  return call(server, `/api/v1/${token}/${feature}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body });
}

/** Waits (bounded) until `condition` holds; throws after `attempts` checks 20 ms apart. */
export async function until(condition: () => boolean | Promise<boolean>, what: string, attempts = 250): Promise<void> {
  for (let i = 0; i < attempts; i++) {
    if (await condition()) return;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  throw new Error(`gave up waiting for ${what}`);
}

/** Asserts the ThingsBoard error JSON shape and returns it. */
export function tbError(answer: HttpAnswer): { status: number; message: string; errorCode: number; timestamp: number } {
  const body = answer.json;
  if (!body || typeof body !== 'object') throw new Error(`expected a JSON error body, got ${JSON.stringify(answer.text)}`);
  const keys = Object.keys(body);
  if (keys.join(',') !== 'status,message,errorCode,timestamp') throw new Error(`unexpected error keys: ${keys.join(',')}`);
  if (body.status !== answer.status) throw new Error(`body status ${body.status} != HTTP status ${answer.status}`);
  return body;
}
