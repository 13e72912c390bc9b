/**
 * The one fastify instance that serves the device API (/api/v1/...) and the admin API (server.ts composes them).
 * It owns the mapping of every failure to an HTTP response (error-reply.ts) and request logging without tokens.
 */
import { fastify, type FastifyBaseLogger, type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import { redactUrl, type Logger } from '../../log.ts';
import { clientErrorHandler, DEFAULT_HTTP_LIMITS, httpTimeoutOptions, installHttpAdmission, type HttpLimits } from './admission.ts';
import { drainConnectionsOnClose } from './connection-drain.ts';
import { describeFailure, failureOf, sendFailure } from './error-reply.ts';
import { RedactingLogController, httpLogger } from './request-log.ts';
import { installSocketFront } from './socket-front.ts';

export interface HttpAppOptions {
  /** The process logger; request lines are written through a child whose URLs have the device token redacted. */
  logger: Logger;
  /** Largest request body in bytes (config.httpMaxPayload); routes may set a lower one (RPC replies). */
  bodyLimit: number;
  /** Serve HTTPS with this certificate and key (PEM) instead of plain HTTP (issue 7 §5). */
  https?: { cert: string | Buffer; key: string | Buffer };
  /** Slow-client timeouts and the connection limit (admission.ts); DEFAULT_HTTP_LIMITS when absent. */
  limits?: Partial<HttpLimits>;
  /** Called with the reason of each admission refusal (HEADERS_TIMEOUT, REQUEST_TIMEOUT, MAX_CONNECTIONS). */
  onRejected?: (reason: string) => void;
  /**
   * Serve the lean routes' plain requests from the socket's bytes, before node:http (socket-front.ts; plain HTTP only).
   * Default on; off gives node:http every connection (config.httpSocketFront).
   */
  socketFront?: boolean;
}

/** Longest path parameter; access tokens and certificate hashes fit well within it. */
const MAX_PARAM_LENGTH = 512;

/** Sends the failure for `err`, logging our own (5xx) failures with their cause. */
function replyWithError(err: unknown, request: FastifyRequest, reply: FastifyReply): FastifyReply {
  const failure = describeFailure(err, request.routeOptions.bodyLimit);
  if (failure.internal) {
    request.log.error({ err, method: request.method, url: redactUrl(request.url), statusCode: failure.status }, 'request failed');
  } else {
    // No message: a client error's message may quote the request body (e.g. a provisioning secret).
    const code = (err as { code?: unknown } | null)?.code;
    request.log.debug({ code, statusCode: failure.status }, 'request rejected');
  }
  return sendFailure(reply, failure);
}

/**
 * Creates the HTTP application: error and not-found handlers answering ThingsBoard's error JSON
 * (`{"status","message","errorCode","timestamp"}`), framework errors mapped to the same shape, and token-free logs.
 * Device routes are added by `registerDeviceApi`, admin routes by the admin API.
 */
export function createHttpApp(opts: HttpAppOptions): FastifyInstance {
  const limits: HttpLimits = { ...DEFAULT_HTTP_LIMITS, ...opts.limits };
  const timeouts = httpTimeoutOptions(limits);
  const app = fastify({
    // Client certificates are asked for, never required, and not chain-verified: X.509 devices authenticate by the
    // certificate's hash (spec §8.1 step 1) on /api/v1/x509/... (README "X.509 over HTTPS").
    ...(opts.https
      ? { https: { cert: opts.https.cert, key: opts.https.key, minVersion: 'TLSv1.2' as const, requestCert: true, rejectUnauthorized: false, ...timeouts } }
      : { http: timeouts }),
    // fastify sets server.requestTimeout from this option (its default, 0, would switch Node's check off).
    requestTimeout: limits.requestTimeoutMs,
    clientErrorHandler: clientErrorHandler(limits, opts.logger, opts.onRejected),
    // Typed as fastify's logger so the instance is the plain FastifyInstance that routes and server.ts take.
    loggerInstance: httpLogger(opts.logger) as FastifyBaseLogger,
    logController: new RedactingLogController(),
    bodyLimit: opts.bodyLimit,
    routerOptions: { maxParamLength: MAX_PARAM_LENGTH },
    // Malformed URLs (FST_ERR_BAD_URL) bypass the error handler unless routed here.
    frameworkErrors: (error, request, reply) => {
      replyWithError(error, request, reply);
    },
  });

  app.setErrorHandler((error, request, reply) => replyWithError(error, request, reply));

  app.setNotFoundHandler((request, reply) => {
    const path = redactUrl(request.url.split('?')[0] ?? '');
    sendFailure(reply, failureOf('NOT_FOUND', `No route for ${request.method} ${path}`));
  });

  installHttpAdmission(app, limits, !!opts.https, opts.onRejected);
  drainConnectionsOnClose(app);
  if (!opts.https && opts.socketFront !== false) installSocketFront(app, { bodyLimit: opts.bodyLimit, limits });
  return app;
}
