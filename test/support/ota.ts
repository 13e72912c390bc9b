/**
 * OTA helpers for tests: create package metadata, upload a file as multipart (fetch + FormData, as a browser or the
 * ThingsBoard UI does), and create a profile and a device that uses it.
 */
import { openAsBlob } from 'node:fs';
import { readResponse } from './fixtures.ts';

export interface Api {
  (method: 'GET' | 'POST' | 'DELETE', path: string, body?: unknown): Promise<{ status: number; text: string; json: any }>;
}

/** An admin API caller for `baseUrl` with `token`. */
export function otaApi(baseUrl: string, token: string): Api {
  return async (method, path, body) => {
    const headers: Record<string, string> = { 'x-authorization': `Bearer ${token}` };
    if (body !== undefined) headers['content-type'] = 'application/json';
    const res = await fetch(`${baseUrl}${path}`, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
    return readResponse(res);
  };
}

/** POST /api/otaPackage/{id}?checksumAlgorithm=..[&checksum=..] with part `file` (bytes or a file on disk). */
export async function uploadPackage(
  baseUrl: string,
  token: string,
  packageId: string,
  file: Buffer | { path: string },
  options: { algorithm?: string; checksum?: string; fileName?: string; contentType?: string } = {},
): Promise<{ status: number; text: string; json: any }> {
  const blob = Buffer.isBuffer(file) ? new Blob([new Uint8Array(file)], { type: options.contentType ?? 'application/octet-stream' }) : await openAsBlob(file.path, { type: options.contentType ?? 'application/octet-stream' });
  const form = new FormData();
  form.append('file', blob, options.fileName ?? 'firmware.bin');
  const query = new URLSearchParams({ checksumAlgorithm: options.algorithm ?? 'SHA256' });
  if (options.checksum) query.set('checksum', options.checksum);
  const res = await fetch(`${baseUrl}/api/otaPackage/${packageId}?${query}`, { method: 'POST', headers: { 'x-authorization': `Bearer ${token}` }, body: form });
  return readResponse(res);
}

/** A profile (name) and its id. */
export async function createProfile(api: Api, name: string): Promise<string> {
  const res = await api('POST', '/api/deviceProfile', { name, type: 'DEFAULT', transportType: 'DEFAULT' });
  if (res.status !== 200) throw new Error(`profile: ${res.status} ${res.text}`);
  return res.json.id.id;
}

/** Package metadata; returns its id. */
export async function createPackage(api: Api, profileId: string, title: string, version: string, type: 'FIRMWARE' | 'SOFTWARE' = 'FIRMWARE', extra: Record<string, unknown> = {}): Promise<string> {
  const res = await api('POST', '/api/otaPackage', { title, version, type, deviceProfileId: { entityType: 'DEVICE_PROFILE', id: profileId }, ...extra });
  if (res.status !== 200) throw new Error(`otaPackage: ${res.status} ${res.text}`);
  return res.json.id.id;
}

/** A device of the profile with access token `token`; returns its JSON. */
export async function createDevice(api: Api, name: string, profileId: string, token: string, extra: Record<string, unknown> = {}): Promise<any> {
  const res = await api('POST', `/api/device?accessToken=${token}`, { name, deviceProfileId: { entityType: 'DEVICE_PROFILE', id: profileId }, ...extra });
  if (res.status !== 200) throw new Error(`device: ${res.status} ${res.text}`);
  return res.json;
}

/** Sets a profile's firmwareId / softwareId (GET, change, POST back, as a script does). */
export async function assignToProfile(api: Api, profileId: string, type: 'FIRMWARE' | 'SOFTWARE', packageId: string | null): Promise<{ status: number; text: string; json: any }> {
  const profile = (await api('GET', `/api/deviceProfile/${profileId}`)).json;
  profile[type === 'FIRMWARE' ? 'firmwareId' : 'softwareId'] = packageId ? { entityType: 'OTA_PACKAGE', id: packageId } : null;
  return api('POST', '/api/deviceProfile', profile);
}

/** Polls until `check` holds (bounded: a hang guard, never a speed check). */
export async function eventually<T>(what: string, check: () => Promise<T | undefined | false>, timeoutMs = 30_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`gave up waiting: ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}
