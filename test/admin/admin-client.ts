/**
 * A tiny admin REST client for tests: real HTTP with global fetch, the admin token from the harness.
 */
import type { DeviceIdentity } from '../../src/core/api.ts';
import { readResponse } from '../support/fixtures.ts';
import type { TestServer } from '../support/harness.ts';

export interface ApiResponse {
  status: number;
  headers: Headers;
  text: string;
  /** The body parsed as JSON, undefined when it is empty or not JSON. */
  json: any;
}

export interface CallOptions {
  /** A JSON body (serialised with JSON.stringify). */
  body?: unknown;
  /** A raw body, sent as is. */
  raw?: string;
  contentType?: string;
  /** `null` sends no token; a string sends that token; undefined sends the admin token. */
  token?: string | null;
  /** Which header carries the token. */
  header?: 'X-Authorization' | 'Authorization';
}

export interface AdminClient {
  call(method: string, path: string, options?: CallOptions): Promise<ApiResponse>;
  get(path: string, options?: CallOptions): Promise<ApiResponse>;
  post(path: string, body: unknown, options?: CallOptions): Promise<ApiResponse>;
  delete(path: string, options?: CallOptions): Promise<ApiResponse>;
}

/** A client that logs in as the harness administrator. */
export async function adminClient(server: TestServer): Promise<AdminClient> {
  const adminToken = await server.adminToken();
  const call = async (method: string, path: string, options: CallOptions = {}): Promise<ApiResponse> => {
    const headers: Record<string, string> = {};
    const token = options.token === undefined ? adminToken : options.token;
    if (token !== null) headers[options.header ?? 'X-Authorization'] = `Bearer ${token}`;
    let body: string | undefined;
    if (options.raw !== undefined) body = options.raw;
    else if (options.body !== undefined) body = JSON.stringify(options.body);
    if (body !== undefined) headers['content-type'] = options.contentType ?? 'application/json';
    const res = await fetch(`${server.httpUrl}${path}`, { method, headers, body });
    return readResponse(res);
  };
  return {
    call,
    get: (path, options) => call('GET', path, options),
    post: (path, body, options) => call('POST', path, { ...options, body }),
    delete: (path, options) => call('DELETE', path, options),
  };
}

/** Resolves with `promise`, or rejects naming `what` if it has not settled after `ms` (a hang guard, not a speed check). */
export function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const guard = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} did not happen within ${ms} ms`)), ms);
  });
  return Promise.race([promise, guard]).finally(() => clearTimeout(timer));
}

/** Asserts ThingsBoard's error JSON shape and returns it. */
export function tbError(res: ApiResponse): { status: number; message: string; errorCode: number; timestamp: number } {
  const body = res.json as { status: number; message: string; errorCode: number; timestamp: number } | undefined;
  if (!body || typeof body.message !== 'string' || typeof body.errorCode !== 'number' || typeof body.timestamp !== 'number' || body.status !== res.status) {
    throw new Error(`not a ThingsBoard error body (status ${res.status}): ${res.text}`);
  }
  return body;
}

/**
 * Creates a device with access token `token` through the admin API and resolves the identity its sessions would have;
 * `base` is its telemetry/attributes REST prefix.
 */
export async function deviceWithIdentity(server: TestServer, api: AdminClient, token: string, name: string): Promise<{ deviceId: string; base: string; identity: DeviceIdentity }> {
  const device = await api.post(`/api/device?accessToken=${token}`, { name });
  const deviceId = (device.json as { id: { id: string } }).id.id;
  const identity = await server.core.auth.byAccessToken(token);
  if (!identity) throw new Error(`device ${name} does not authenticate with its token`);
  return { deviceId, base: `/api/plugins/telemetry/DEVICE/${deviceId}`, identity };
}
