/**
 * Admission limits of the HTTP server (issue 7 §2): slow clients and the number of open connections.
 * - Request headers not complete within `headersTimeoutMs`, or the whole request (body included) not received within
 *   `requestTimeoutMs`: 408 with ThingsBoard's error JSON naming the limit, then the connection closes. Node counts
 *   both from the first byte of a request (a silent new connection included) until the request is fully received, so
 *   a long poll (/attributes/updates, /rpc: a complete request waiting for its answer) is not cut by them.
 * - Idle kept-alive connections close after `keepAliveTimeoutMs` (ordinary HTTP; not counted as a rejection).
 * - Beyond `maxConnections` open connections, every request of a new connection is answered 503 naming the limit,
 *   with `Connection: close` (a silent one is closed by the headers timeout).
 * Every refusal calls `onRejected(reason)`: HEADERS_TIMEOUT, REQUEST_TIMEOUT, MAX_CONNECTIONS.
 */
import type { IncomingMessage, ServerOptions } from 'node:http';
import type { Socket } from 'node:net';
import type { FastifyInstance } from 'fastify';
import type { Logger } from '../../log.ts';
import { failureOf, sendFailure, type HttpFailure } from './error-reply.ts';
import { servedByFront } from './socket-front.ts';

/** The HTTP server's admission limits; 0 turns a limit off. */
export interface HttpLimits {
  /** Time from a request's first byte (or the connection's opening) to its last header, ms. */
  headersTimeoutMs: number;
  /** Time from a request's first byte to its last body byte, ms. */
  requestTimeoutMs: number;
  /** Idle time after which a kept-alive connection closes, ms. */
  keepAliveTimeoutMs: number;
  /** Open connections beyond which requests of new connections get 503. */
  maxConnections: number;
}

export const DEFAULT_HTTP_LIMITS: HttpLimits = { headersTimeoutMs: 10_000, requestTimeoutMs: 30_000, keepAliveTimeoutMs: 72_000, maxConnections: 10_000 };

/** Requests answered 503 for the connection limit (observeHttpOutcomes does not count them a second time). */
const refusedRequests = new WeakSet<object>();

/** Connections over the connection limit: each of their requests is answered 503. */
const refusedSockets = new WeakSet<Socket>();

/** True when `socket` came over the connection limit (its requests must reach the admission hook). */
export const socketRefused = (socket: Socket): boolean => refusedSockets.has(socket);

/** True when `req` was refused by the connection limit here. */
export const refusedByAdmission = (req: object): boolean => refusedRequests.has(req);

/**
 * Node's server options for the timeouts. Node checks them every `connectionsCheckingInterval` (default 30 s);
 * a quarter of the shortest timeout, between 50 ms and 1 s, keeps the answer close to the limit.
 */
export function httpTimeoutOptions(limits: HttpLimits): Pick<ServerOptions, 'headersTimeout' | 'requestTimeout' | 'connectionsCheckingInterval'> {
  const shortest = Math.min(...[limits.headersTimeoutMs, limits.requestTimeoutMs].filter((t) => t > 0), 4000);
  return { headersTimeout: limits.headersTimeoutMs, requestTimeout: limits.requestTimeoutMs, connectionsCheckingInterval: Math.max(50, Math.min(1000, Math.floor(shortest / 4))) };
}

function errorResponse(failure: HttpFailure): string {
  const body = JSON.stringify({ status: failure.status, message: failure.message, errorCode: failure.errorCode, timestamp: Date.now() });
  const reason = failure.status === 408 ? 'Request Timeout' : failure.status === 431 ? 'Request Header Fields Too Large' : 'Bad Request';
  return `HTTP/1.1 ${failure.status} ${reason}\r\nContent-Type: application/json; charset=utf-8\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`;
}

/**
 * fastify's `clientErrorHandler`: errors Node raises before a request reaches fastify (timeouts, unparsable
 * requests). Answers in ThingsBoard's error shape when nothing has been written yet, then closes the connection.
 */
export function clientErrorHandler(limits: HttpLimits, logger: Logger, onRejected?: (reason: string) => void): (err: Error & { code?: string }, socket: Socket) => void {
  return (err, socket) => {
    if (err.code === 'ECONNRESET' || socket.destroyed) return;
    let failure: HttpFailure;
    if (err.code === 'ERR_HTTP_REQUEST_TIMEOUT') {
      // Headers complete -> the request (body) timeout fired; otherwise the headers timeout.
      // The socket front (socket-front.ts) says which limit it was; node:http's parser shows it by its request.
      const fromFront = (err as { headersDone?: unknown }).headersDone;
      const incoming = (socket as Socket & { parser?: { incoming?: IncomingMessage | null } }).parser?.incoming;
      const headersDone = typeof fromFront === 'boolean' ? fromFront : !!incoming && !incoming.complete;
      const reason = headersDone ? 'REQUEST_TIMEOUT' : 'HEADERS_TIMEOUT';
      failure = headersDone
        ? failureOf('TIMEOUT', `Request not received within ${limits.requestTimeoutMs} ms (httpRequestTimeoutMs)`)
        : failureOf('TIMEOUT', `Request headers not received within ${limits.headersTimeoutMs} ms (httpHeadersTimeoutMs)`);
      onRejected?.(reason);
      logger.debug({ event: 'http_timeout', reason, address: socket.remoteAddress }, 'slow HTTP client: closing');
    } else if (err.code === 'HPE_HEADER_OVERFLOW') {
      failure = { ...failureOf('INVALID_ARGUMENT', 'Request header fields too large'), status: 431 };
    } else {
      failure = failureOf('INVALID_ARGUMENT', 'Bad request');
    }
    const response = (socket as Socket & { _httpMessage?: { headersSent?: boolean } })._httpMessage;
    // While the socket front still owes answers on a connection it handed over, the first answer in line has not
    // started, whatever node:http's own response has written (held behind it): as node:http alone, answer now.
    if (socket.writable && (!response?.headersSent || servedByFront(socket))) socket.end(errorResponse(failure));
    // A client that does not read must not keep the socket: destroy once written or after a short grace.
    setTimeout(() => socket.destroy(), 1000).unref();
  };
}

/** Installs the connection limit and keep-alive timeout on `app` (before routes are registered). */
export function installHttpAdmission(app: FastifyInstance, limits: HttpLimits, https: boolean, onRejected?: (reason: string) => void): void {
  app.server.keepAliveTimeout = limits.keepAliveTimeoutMs;
  if (limits.maxConnections <= 0) return;
  let open = 0;
  const refused = refusedSockets;
  app.server.on('connection', (socket: Socket) => {
    open++;
    socket.once('close', () => open--);
  });
  // Over HTTPS requests come on the TLS socket, known once the handshake is done.
  app.server.on(https ? 'secureConnection' : 'connection', (socket: Socket) => {
    if (open <= limits.maxConnections) return;
    refused.add(socket);
    onRejected?.('MAX_CONNECTIONS');
  });
  app.addHook('onRequest', (request, reply, done) => {
    if (!refused.has(request.raw.socket)) return done();
    refusedRequests.add(request.raw);
    const failure = failureOf('SERVER_UNAVAILABLE', `Too many connections: this server accepts at most ${limits.maxConnections} (httpMaxConnections)`);
    sendFailure(reply.header('connection', 'close'), { ...failure, retryAfterSeconds: 1 });
  });
}
