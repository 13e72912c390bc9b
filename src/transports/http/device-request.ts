/**
 * Reading the parts of a device API request: the token, the body, query lists and timeouts. Wire parsing only;
 * payloads are parsed by core.
 */
import type { FastifyRequest } from 'fastify';
import { stringify } from 'lossless-json';
import type { DeviceIdentity } from '../../core/api.ts';
import type { Core } from '../../core/core-types.ts';
import { FleetgateError } from '../../core/errors.ts';
import { clientCertificateOf } from '../tls-client-certificate.ts';

/** Route params of every `/api/v1/{token}/...` route. */
export interface TokenParams {
  token: string;
}

/**
 * The token segment that asks for client-certificate authentication over HTTPS instead of an access token:
 * `/api/v1/x509/telemetry` (fleetgate's; README "X.509 over HTTPS").
 */
export const CLIENT_CERTIFICATE_TOKEN = 'x509';

/**
 * The device behind an access token (spec §8.3: only ACCESS_TOKEN credentials work on HTTP), or, for the token
 * `x509` on an HTTPS connection (`socket`), behind the client certificate (X509_CERTIFICATE credentials, spec §8.1).
 * Bad token or certificate -> 401. ThingsBoard sends an empty body; fleetgate adds its JSON error body, which clients
 * that only look at the status ignore. `address` lets core throttle a source that keeps failing (429 + Retry-After).
 */
export async function authenticate(core: Core, token: string, address?: string, socket?: unknown): Promise<DeviceIdentity> {
  if (token === CLIENT_CERTIFICATE_TOKEN && socket !== undefined) {
    const certificate = clientCertificateOf(socket);
    if (certificate.kind !== 'none') {
      if (certificate.kind === 'expired') throw new FleetgateError('UNAUTHORIZED', 'Client certificate expired or not yet valid');
      const byCertificate = await core.auth.byX509Hash(certificate.hash, 'HTTP', { transport: 'http', address });
      if (!byCertificate) throw new FleetgateError('UNAUTHORIZED', 'Client certificate is not registered for a device');
      return byCertificate;
    }
  }
  const device = await core.auth.byAccessToken(token, undefined, { transport: 'http', address });
  if (!device) throw new FleetgateError('UNAUTHORIZED', 'Invalid device access token');
  return device;
}

/** The raw body bytes (the device API's content-type parser keeps bodies as Buffers); empty when there was none. */
export function bodyBytes(request: FastifyRequest): Buffer {
  const body = request.body;
  if (Buffer.isBuffer(body)) return body;
  if (typeof body === 'string') return Buffer.from(body, 'utf8');
  return Buffer.alloc(0);
}

/**
 * The body of a route whose body is required. ThingsBoard's endpoints take a required `@RequestBody String`, so an
 * empty body is a 400 (spec §5.5: "Spring: required request body missing").
 */
export function requiredBody(request: FastifyRequest): Buffer {
  const body = bodyBytes(request);
  if (body.length === 0) throw new FleetgateError('INVALID_ARGUMENT', 'Required request body is missing');
  return body;
}

/**
 * A comma-separated key list (`clientKeys=a,b`, spec §8.3); a repeated parameter counts as one list. Undefined when
 * absent or empty. Keys are not trimmed: ThingsBoard splits on "," only.
 */
export function keyList(value: unknown): string[] | undefined {
  const parts = Array.isArray(value) ? value : value === undefined ? [] : [value];
  const keys = parts.flatMap((part) => String(part).split(',')).filter((key) => key.length > 0);
  return keys.length > 0 ? keys : undefined;
}

/** Longest long poll; ThingsBoard's server-wide async limit `transport.http.max_request_timeout` (spec §8.3). */
export const MAX_LONG_POLL_MS = 300_000;

/**
 * The `timeout` query parameter of a long poll, ms: absent or 0 -> `defaultMs` (spec §8.3), capped at MAX_LONG_POLL_MS.
 * Anything but a whole number -> 400 (ThingsBoard: a `long` request parameter).
 */
export function longPollTimeout(value: unknown, defaultMs: number): number {
  if (value === undefined || value === '') return Math.min(defaultMs, MAX_LONG_POLL_MS);
  const text = String(value);
  if (!/^\d+$/.test(text)) throw new FleetgateError('INVALID_ARGUMENT', `Invalid timeout: ${text}`);
  const ms = Number(text);
  return Math.min(ms === 0 ? defaultMs : ms, MAX_LONG_POLL_MS);
}

/**
 * An RPC request id path segment: an integer (ThingsBoard binds it to `Integer`, so anything else is a 400 before the
 * token is checked).
 */
export function rpcRequestId(value: string): number {
  const id = /^[+-]?\d{1,10}$/.test(value) ? Number(value) : NaN;
  if (!Number.isInteger(id) || id > 2_147_483_647 || id < -2_147_483_648) {
    throw new FleetgateError('INVALID_ARGUMENT', `Invalid RPC request id: ${value}`);
  }
  return id;
}

/** JSON text of a value from core; lossless so 64-bit integers (LONG values) keep every digit. */
export function jsonText(value: unknown): string {
  return stringify(value) ?? 'null';
}
