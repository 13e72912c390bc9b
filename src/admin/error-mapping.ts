/**
 * Turns fastify's own request errors (schema validation, body parsing) into FleetgateErrors, so the
 * shared error handler of the HTTP app renders them as ThingsBoard error JSON with a 4xx status
 * instead of a 500 (DESIGN improvement 5). Admin code never renders errors itself.
 */
import type { FastifyError, FastifyRequest } from 'fastify';
import { FleetgateError, type ErrorCode } from '../core/errors.ts';

interface ValidationIssue {
  keyword: string;
  instancePath: string;
  params: Record<string, unknown>;
  message?: string;
}

function fleetgate(code: ErrorCode, message: string, cause?: unknown): FleetgateError {
  return withHttpStatus(new FleetgateError(code, message, { cause }));
}

/** Sets `statusCode` from the registry so any fastify error handler would answer the right status. */
export function withHttpStatus(err: FleetgateError): FleetgateError {
  return Object.assign(err, { statusCode: err.signal.http });
}

function paramValue(req: FastifyRequest, issue: ValidationIssue): unknown {
  const name = issue.instancePath.replace(/^\//, '');
  return (req.params as Record<string, unknown> | undefined)?.[name];
}

/** A ThingsBoard-like message for the first schema violation. */
function validationMessage(err: FastifyError, req: FastifyRequest): string {
  const issue = (err.validation as ValidationIssue[] | undefined)?.[0];
  const where = err.validationContext ?? 'request';
  if (!issue) return err.message;
  if (where === 'params' && issue.keyword === 'format') {
    // TB: UUID.fromString failure -> 400 "Invalid UUID string: <value>"
    return `Invalid UUID string: ${String(paramValue(req, issue))}`;
  }
  if (where === 'querystring' && issue.keyword === 'required') {
    return `Required request parameter '${String(issue.params.missingProperty)}' is not present`;
  }
  if (where === 'body' && issue.instancePath === '' && issue.keyword === 'type') {
    return 'Invalid request body: a JSON object is expected';
  }
  return err.message;
}

/**
 * Maps an error raised while handling an admin request to the error to hand on to the parent
 * (application-wide) error handler. FleetgateErrors pass through; unknown errors are left as they
 * are and become INTERNAL there.
 */
export function toAdminError(error: unknown, req: FastifyRequest): unknown {
  if (error instanceof FleetgateError) return withHttpStatus(error);
  const err = error as Partial<FastifyError> | null;
  if (!err || typeof err !== 'object') return error;
  if (err.validation) return fleetgate('INVALID_ARGUMENT', validationMessage(err as FastifyError, req), error);
  const code = typeof err.code === 'string' ? err.code : '';
  if (code.startsWith('FST_ERR_CTP_')) {
    if (err.statusCode === 415) return fleetgate('UNSUPPORTED_MEDIA_TYPE', err.message ?? 'Unsupported media type', error);
    if (err.statusCode === 413) return fleetgate('PAYLOAD_TOO_LARGE', err.message ?? 'Payload too large', error);
    return fleetgate('MALFORMED_PAYLOAD', `Invalid request body: ${err.message ?? 'not valid JSON'}`, error);
  }
  if (code.startsWith('FST_JWT_') || code.startsWith('FAST_JWT_')) {
    return fleetgate('UNAUTHORIZED', 'Authentication failed', error);
  }
  if (err.statusCode === 400) return fleetgate('INVALID_ARGUMENT', err.message ?? 'Bad request', error);
  return error;
}
