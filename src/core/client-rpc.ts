/**
 * Client-side RPC (a device asks the server, spec §8.2 / §8.3 / §8.4): parsed and answered here for every transport.
 * fleetgate answers `getSessionLimits` itself; it has no rule engine, so other methods are NOT_IMPLEMENTED and each
 * transport renders that in its own way.
 */
import { FleetgateError } from './errors.ts';

/** A parsed client-side RPC request `{"method":"..","params":..}`. */
export interface ClientRpcRequest {
  method: string;
  params: unknown;
}

/** What a transport tells devices about its limits in the `getSessionLimits` reply. */
export interface SessionLimits {
  maxPayloadSize: number;
  maxInflightMessages: number;
  /** The session is a gateway's: the reply also has `gatewayRateLimits` (gateway spec §4.8). */
  gateway?: boolean;
}

/** spec §8.2: the one client-side RPC method the server answers without a rule engine. */
export const GET_SESSION_LIMITS = 'getSessionLimits';

/**
 * Parses a client-side RPC body. Not JSON -> MALFORMED_PAYLOAD; not an object with a non-empty string `method`
 * -> INVALID_ARGUMENT (ThingsBoard answers 500 on HTTP; DESIGN 5).
 */
export function parseClientRpc(payload: string | Buffer): ClientRpcRequest {
  let value: unknown;
  try {
    value = JSON.parse(typeof payload === 'string' ? payload : payload.toString('utf8'));
  } catch {
    throw new FleetgateError('MALFORMED_PAYLOAD', 'RPC request body is not valid JSON');
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new FleetgateError('INVALID_ARGUMENT', 'RPC request body must be a JSON object');
  }
  const { method, params } = value as { method?: unknown; params?: unknown };
  if (typeof method !== 'string' || method.length === 0) throw new FleetgateError('INVALID_ARGUMENT', 'RPC request needs a "method" string');
  return { method, params };
}

/**
 * The reply to a client-side RPC. spec §8.2 `getSessionLimits`: the transport's limits; fleetgate applies no
 * per-device rate limits, which ThingsBoard writes as empty limit strings (its SDKs read "" as "no limit").
 * Any other method: NOT_IMPLEMENTED.
 */
export function answerClientRpc(request: ClientRpcRequest, limits: SessionLimits): Record<string, unknown> {
  if (request.method === GET_SESSION_LIMITS) {
    const none = { messages: '', telemetryMessages: '', telemetryDataPoints: '' };
    return {
      maxPayloadSize: limits.maxPayloadSize,
      maxInflightMessages: limits.maxInflightMessages,
      rateLimits: none,
      // TB ([MQH] onGetSessionLimitsRpc): a gateway is also told the limits of its sub-devices' traffic. fleetgate has
      // no shared per-gateway budget (each sub-device has its own deviceMessageRate), so none is announced.
      ...(limits.gateway ? { gatewayRateLimits: none } : {}),
    };
  }
  throw new FleetgateError('NOT_IMPLEMENTED', `Client-side RPC method "${request.method}" is not supported: fleetgate has no rule engine to answer it`);
}
