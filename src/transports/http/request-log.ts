/**
 * Request logging for the HTTP server. Device API URLs carry the access token (`/api/v1/{token}/...`), so no URL is
 * logged without `redactUrl` (DESIGN 6: secrets are never logged).
 */
import { LogController, type FastifyReply, type FastifyRequest } from 'fastify';
import { redactUrl, type Logger } from '../../log.ts';

interface RequestLike {
  method?: string;
  url?: string;
  ip?: string;
}

/** pino serializer for `req`, replacing fastify's (which logs the raw URL). */
export function serializeRequest(req: RequestLike): Record<string, unknown> {
  return { method: req.method, url: redactUrl(req.url ?? ''), remoteAddress: req.ip };
}

/**
 * One `debug` line per completed request (method, redacted URL, status, time); none on arrival. Device traffic is
 * too frequent for `info`; failures are logged by the error handler (5xx at `error`).
 */
export class RedactingLogController extends LogController {
  override incomingRequest(): void {}

  override requestCompleted(error: Error | null | undefined, request: FastifyRequest, reply: FastifyReply): void {
    const line = { method: request.method, url: redactUrl(request.url), statusCode: reply.statusCode, responseTime: reply.elapsedTime };
    if (error) reply.log.warn({ ...line, err: error }, 'request errored');
    else reply.log.debug(line, 'request completed');
  }

  override routeNotFound(request: FastifyRequest): void {
    request.log.debug({ method: request.method, url: redactUrl(request.url) }, 'route not found');
  }
}

/** The logger fastify should use: a child of the process logger whose `req` serializer redacts tokens. */
export function httpLogger(logger: Logger): Logger {
  return logger.child({ component: 'http' }, { serializers: { req: serializeRequest } });
}
