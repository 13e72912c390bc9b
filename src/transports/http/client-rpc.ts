/**
 * Client-side RPC over HTTP (`POST /api/v1/{token}/rpc`, spec §8.3): a device asks the server something.
 */
import type { Config } from '../../config.ts';
import { FleetgateError } from '../../core/errors.ts';

/** spec §8.2: the one client-side RPC method the transport answers itself. */
export const GET_SESSION_LIMITS = 'getSessionLimits';

/** A parsed client-side RPC request `{"method":"..","params":..}`. */
export interface ClientRpcRequest {
  method: string;
  params: unknown;
}

/**
 * Parses a client-side RPC body. Not JSON -> MALFORMED_PAYLOAD; not an object with a non-empty string `method`
 * -> INVALID_ARGUMENT (400 either way; ThingsBoard answers 500).
 */
export function parseClientRpc(text: string): ClientRpcRequest {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw new FleetgateError('MALFORMED_PAYLOAD', 'RPC request body is not valid JSON');
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new FleetgateError('INVALID_ARGUMENT', 'RPC request body must be a JSON object');
  }
  const { method, params } = value as { method?: unknown; params?: unknown };
  if (typeof method !== 'string' || method.length === 0) {
    throw new FleetgateError('INVALID_ARGUMENT', 'RPC request needs a "method" string');
  }
  return { method, params };
}

/**
 * spec §8.2 `getSessionLimits` for an HTTP device: `maxPayloadSize` is the device API body limit; fleetgate applies
 * no per-device rate limits, which ThingsBoard writes as empty limit strings. `maxInflightMessages` keeps
 * ThingsBoard's value (100): an HTTP device has no in-flight window, but SDKs size their queues from it.
 */
export function sessionLimits(config: Config): Record<string, unknown> {
  return {
    maxPayloadSize: config.httpMaxPayload,
    maxInflightMessages: 100,
    rateLimits: { messages: '', telemetryMessages: '', telemetryDataPoints: '' },
  };
}
