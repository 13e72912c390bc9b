/**
 * The one typed error registry (DESIGN "Shape of the code"). Every error core or a transport raises has a
 * stable code here with its signal on each wire; each transport maps errors in one place using this table.
 */

export interface ErrorSignal {
  /** HTTP status code. */
  http: number;
  /** ThingsBoard's REST `errorCode` (ThingsboardErrorCode): 2 general, 10 auth, 11 JWT expired, 20 permission, 30 invalid args, 31 bad params, 32 not found, 33 too many requests. */
  tbErrorCode: number;
  /** MQTT 3.1.1 CONNACK return code for connect-time errors, or null when the connection is simply closed. */
  mqtt3: number | null;
  /** MQTT 5 reason code (used on CONNACK, PUBACK, SUBACK and DISCONNECT). */
  mqtt5: number;
  /** CoAP response code, `class.detail`. */
  coap: string;
}

/** All error codes, with their wire signals. */
export const ERRORS = {
  /** Bytes that are not the expected format (not JSON, not protobuf). */
  MALFORMED_PAYLOAD: { http: 400, tbErrorCode: 31, mqtt3: null, mqtt5: 0x99, coap: '4.00' },
  /** Well-formed input whose content is wrong: missing field, unknown enum value, wrong type. */
  INVALID_ARGUMENT: { http: 400, tbErrorCode: 31, mqtt3: null, mqtt5: 0x83, coap: '4.00' },
  /** Device or user credentials not accepted. */
  UNAUTHORIZED: { http: 401, tbErrorCode: 10, mqtt3: 5, mqtt5: 0x87, coap: '4.01' },
  /** An admin JWT past its expiry: ThingsBoard's JWT_TOKEN_EXPIRED (11), which tells clients to refresh it. */
  TOKEN_EXPIRED: { http: 401, tbErrorCode: 11, mqtt3: 5, mqtt5: 0x87, coap: '4.01' },
  /** Username/password given but wrong (MQTT CONNACK 0x86 on v5). */
  BAD_USERNAME_OR_PASSWORD: { http: 401, tbErrorCode: 10, mqtt3: 5, mqtt5: 0x86, coap: '4.01' },
  /** Client id alone did not identify a device (spec §8.1). */
  CLIENT_ID_REJECTED: { http: 401, tbErrorCode: 10, mqtt3: 2, mqtt5: 0x85, coap: '4.01' },
  PERMISSION_DENIED: { http: 403, tbErrorCode: 20, mqtt3: 5, mqtt5: 0x87, coap: '4.03' },
  NOT_FOUND: { http: 404, tbErrorCode: 32, mqtt3: null, mqtt5: 0x83, coap: '4.04' },
  /** A unique value already taken (provision key, device name, credentials id). ThingsBoard answers 400. */
  ALREADY_EXISTS: { http: 400, tbErrorCode: 31, mqtt3: null, mqtt5: 0x83, coap: '4.00' },
  TIMEOUT: { http: 408, tbErrorCode: 2, mqtt3: null, mqtt5: 0x83, coap: '5.04' },
  PAYLOAD_TOO_LARGE: { http: 413, tbErrorCode: 31, mqtt3: null, mqtt5: 0x95, coap: '4.13' },
  UNSUPPORTED_MEDIA_TYPE: { http: 415, tbErrorCode: 31, mqtt3: null, mqtt5: 0x99, coap: '4.15' },
  RATE_LIMITED: { http: 429, tbErrorCode: 33, mqtt3: 3, mqtt5: 0x97, coap: '4.29' },
  /** A count limit reached (a gateway's sub-devices, devices in one gateway message): MQTT 5 0x97 quota exceeded. */
  QUOTA_EXCEEDED: { http: 400, tbErrorCode: 31, mqtt3: null, mqtt5: 0x97, coap: '4.00' },
  /**
   * Too many failed device authentications from one address (DESIGN 6): CONNACK quota exceeded on v5, "not
   * authorised" on v3 (clients retry code 3 at once, but back off on 5), HTTP 429 + Retry-After, CoAP 4.29.
   */
  AUTH_RATE_LIMITED: { http: 429, tbErrorCode: 33, mqtt3: 5, mqtt5: 0x97, coap: '4.29' },
  TOPIC_NAME_INVALID: { http: 404, tbErrorCode: 32, mqtt3: null, mqtt5: 0x90, coap: '4.04' },
  /** A feature fleetgate does not offer (e.g. a client-side RPC method with no handler). */
  NOT_IMPLEMENTED: { http: 501, tbErrorCode: 2, mqtt3: null, mqtt5: 0x83, coap: '5.01' },
  SERVER_UNAVAILABLE: { http: 503, tbErrorCode: 2, mqtt3: 3, mqtt5: 0x88, coap: '5.03' },
  SHUTTING_DOWN: { http: 503, tbErrorCode: 2, mqtt3: 3, mqtt5: 0x8b, coap: '5.03' },
  /**
   * A part the server needs (the database, the bus) is down or refuses writes (disk full): "not now", never "no".
   * HTTP 503 + Retry-After, CoAP 5.03 + Max-Age, MQTT 5 PUBACK 0x83 (0x88/0x89 are not PUBACK reasons, MQTT 5.0
   * §3.4.2.1), CONNACK 3 / 0x88 at connect time; on MQTT 3.x a PUBLISH that fails so gets no PUBACK (the client resends).
   */
  DEPENDENCY_UNAVAILABLE: { http: 503, tbErrorCode: 2, mqtt3: 3, mqtt5: 0x83, coap: '5.03' },
  INTERNAL: { http: 500, tbErrorCode: 2, mqtt3: 3, mqtt5: 0x83, coap: '5.00' },
} as const satisfies Record<string, ErrorSignal>;

export type ErrorCode = keyof typeof ERRORS;

/** An expected, classified failure. Anything else reaching a transport is an INTERNAL error. */
export class FleetgateError extends Error {
  readonly code: ErrorCode;
  /** For rate limits: when the client may try again, seconds (HTTP Retry-After, CoAP Max-Age per RFC 8516). */
  readonly retryAfterSeconds: number | undefined;
  constructor(code: ErrorCode, message: string, options?: { cause?: unknown; retryAfterSeconds?: number }) {
    super(message, options);
    this.name = 'FleetgateError';
    this.code = code;
    this.retryAfterSeconds = options?.retryAfterSeconds;
  }

  get signal(): ErrorSignal {
    return ERRORS[this.code];
  }
}

/** Normalises anything thrown into a FleetgateError (unknown errors become INTERNAL with a generic message). */
export function toFleetgateError(err: unknown): FleetgateError {
  if (err instanceof FleetgateError) return err;
  return new FleetgateError('INTERNAL', 'Internal server error', { cause: err });
}

/** Which part is down, as `/healthz` names it. */
export type DependencyPart = 'database' | 'bus';

/** Seconds a device is told to wait (Retry-After, Max-Age) while a part is down. */
export const UNAVAILABLE_RETRY_AFTER_SECONDS = 5;

/**
 * DEPENDENCY_UNAVAILABLE with what the operator needs: `part`, a plain `reason` ("the disk is full (SQLITE_FULL)")
 * and `advice` (what to do). Devices see only the generic message.
 */
export class DependencyUnavailableError extends FleetgateError {
  constructor(
    readonly part: DependencyPart,
    readonly reason: string,
    readonly advice: string,
    cause?: unknown,
  ) {
    super('DEPENDENCY_UNAVAILABLE', `The ${part} is unavailable; try again later`, { cause, retryAfterSeconds: UNAVAILABLE_RETRY_AFTER_SECONDS });
    this.name = 'DependencyUnavailableError';
  }
}

/** True for an error that means "a part is down, try again later". */
export function isDependencyUnavailable(err: unknown): err is DependencyUnavailableError {
  return err instanceof DependencyUnavailableError;
}

export const badRequest = (message: string) => new FleetgateError('INVALID_ARGUMENT', message);
export const notFound = (message: string) => new FleetgateError('NOT_FOUND', message);
