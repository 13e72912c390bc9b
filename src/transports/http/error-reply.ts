/**
 * The one place where failures become HTTP responses (DESIGN "Rules of the house": transports map errors in one
 * place). Every error body has ThingsBoard's REST error shape (ThingsboardErrorResponse):
 * `{"status":<http>,"message":"...","errorCode":<tbErrorCode>,"timestamp":<ms>}`.
 */
import type { FastifyReply } from 'fastify';
import { ERRORS, FleetgateError, type ErrorCode } from '../../core/errors.ts';

/** What the client is told about a failed request. */
export interface HttpFailure {
  status: number;
  /** ThingsBoard's `errorCode` (see ErrorSignal.tbErrorCode). */
  errorCode: number;
  message: string;
  /** True when the failure is ours (5xx): logged with its cause, never described to the client. */
  internal: boolean;
  /** Sent as Retry-After (RFC 9110 §10.2.3) with a 429. */
  retryAfterSeconds?: number;
}

const GENERIC_INTERNAL_MESSAGE = 'Internal server error';

/** A failure with the wire signals of one registry code. */
export function failureOf(code: ErrorCode, message: string): HttpFailure {
  const signal = ERRORS[code];
  return { status: signal.http, errorCode: signal.tbErrorCode, message, internal: signal.http >= 500 };
}


/** ThingsBoard's errorCode for a status no registry code was given for (first registry entry with that status). */
function tbErrorCodeFor(status: number): number {
  const match = Object.values(ERRORS).find((signal) => signal.http === status);
  return match ? match.tbErrorCode : ERRORS.INTERNAL.tbErrorCode;
}

interface FrameworkError {
  code?: unknown;
  statusCode?: unknown;
  message?: unknown;
  validation?: unknown;
}

/**
 * Classifies anything thrown while serving a request.
 * @param bodyLimit the body limit of the route that failed, named in 413 messages.
 */
export function describeFailure(err: unknown, bodyLimit: number): HttpFailure {
  if (err instanceof FleetgateError) {
    // INTERNAL messages may carry details of our own failure; the client gets the generic text.
    const failure = failureOf(err.code, err.code === 'INTERNAL' ? GENERIC_INTERNAL_MESSAGE : err.message);
    // A part that is down is logged once as an outage by core, not once per request; its message is generic.
    if (err.code === 'DEPENDENCY_UNAVAILABLE') failure.internal = false;
    return err.retryAfterSeconds === undefined ? failure : { ...failure, retryAfterSeconds: err.retryAfterSeconds };
  }
  const e = (typeof err === 'object' && err !== null ? err : {}) as FrameworkError;
  switch (e.code) {
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      // spec §5.3, §10 ([HSEC] PayloadSizeFilter): "Payload size exceeds the limit of N bytes" -> 413
      return failureOf('PAYLOAD_TOO_LARGE', `Payload size exceeds the limit of ${bodyLimit} bytes`);
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
      return failureOf('UNSUPPORTED_MEDIA_TYPE', 'Unsupported Media Type');
    case 'FST_ERR_CTP_INVALID_JSON_BODY':
    case 'FST_ERR_CTP_EMPTY_JSON_BODY':
    case 'FST_ERR_CTP_INVALID_CONTENT_LENGTH':
      return failureOf('MALFORMED_PAYLOAD', String(e.message));
    case 'FST_ERR_BAD_URL':
      // fastify's own message repeats the path, which holds the device token.
      return failureOf('INVALID_ARGUMENT', 'Malformed URL');
  }
  if (e.validation !== undefined) return failureOf('INVALID_ARGUMENT', String(e.message));
  // Other client errors from fastify or its plugins (e.g. @fastify/jwt 401s) are safe to describe.
  if (typeof e.statusCode === 'number' && e.statusCode >= 400 && e.statusCode < 500) {
    return { status: e.statusCode, errorCode: tbErrorCodeFor(e.statusCode), message: String(e.message), internal: false };
  }
  return failureOf('INTERNAL', GENERIC_INTERNAL_MESSAGE);
}

/** ThingsBoard's error JSON for `failure` (the body of every error response). */
export function failureBody(failure: HttpFailure): string {
  return JSON.stringify({ status: failure.status, message: failure.message, errorCode: failure.errorCode, timestamp: Date.now() });
}

/** Writes `failure` as ThingsBoard's error JSON. */
export function sendFailure(reply: FastifyReply, failure: HttpFailure): FastifyReply {
  if (failure.retryAfterSeconds !== undefined) reply.header('retry-after', String(failure.retryAfterSeconds));
  return reply.code(failure.status).header('content-type', 'application/json; charset=utf-8').send(failureBody(failure));
}
