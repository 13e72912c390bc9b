/**
 * The lean path of the device API's two busiest routes: `POST /api/v1/{token}/telemetry` and
 * `POST /api/v1/{token}/attributes` (spec §8.3), served from Node's `request` event before fastify's router, hooks,
 * content-type parser, per-request logger and reply object (issue 17: together they cost more CPU than the rest of the
 * request). The routes stay registered in fastify (telemetry-routes.ts) and answer everything this path leaves to
 * them, so behaviour is the same byte for byte: this path takes only the plain case — no query string, a token of
 * URL-safe characters other than `x509`, a known Content-Type, a Content-Length between 1 and the body limit, a
 * connection admitted by the connection limit, the app not closing — and hands every other request to fastify.
 *
 * What it keeps from fastify's route: the same core calls (authentication with the source address for the throttle,
 * then ingest; 200 with an empty body only after the commit), failures rendered by error-reply.ts and logged as
 * app.ts does (5xx at error with the redacted URL, 4xx at debug), one debug line per completed request
 * (request-log.ts), and the response observers (metrics and auth-failure lines, src/metrics/http.ts).
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { FastifyInstance } from 'fastify';
import type { Core } from '../../core/core-types.ts';
import { redactUrl, type Logger } from '../../log.ts';
import { socketRefused } from './admission.ts';
import { authenticate, CLIENT_CERTIFICATE_TOKEN } from './device-request.ts';
import { describeFailure, failureBody, type HttpFailure } from './error-reply.ts';

/** Called for every response of the lean path (fastify's onResponse hooks do not see them). */
export type FastPathResponseObserver = (req: IncomingMessage, statusCode: number) => void;

const observers = new WeakMap<FastifyInstance, FastPathResponseObserver[]>();

/** Adds an observer of the lean path's responses on `app` (call it before or after the path is installed). */
export function observeFastPathResponses(app: FastifyInstance, observer: FastPathResponseObserver): void {
  const list = observers.get(app);
  if (list) list.push(observer);
  else observers.set(app, [observer]);
}

/**
 * `/api/v1/{token}/telemetry|attributes`. Token characters: unreserved and sub-delims of RFC 3986 minus `;` (which
 * routers may treat as a delimiter) and `%` (escapes fastify decodes); anything else goes to fastify. At most 512
 * characters, the router's maxParamLength (app.ts).
 */
const DEVICE_POST = /^\/api\/v1\/([A-Za-z0-9._~!$&'()*+,=:@-]{1,512})\/(telemetry|attributes)$/;

/** Content-Types the device API's catch-all parser takes as they are (fastify checks others for validity first). */
export const PLAIN_CONTENT_TYPES: ReadonlySet<string> = new Set([
  'application/json',
  'application/json; charset=utf-8',
  'application/json;charset=utf-8',
  'application/json; charset=UTF-8',
  'application/json;charset=UTF-8',
  'text/plain',
  'text/plain;charset=UTF-8', // fetch() with a string body and no Content-Type
  'text/plain; charset=utf-8',
  'text/plain;charset=utf-8',
  'application/x-www-form-urlencoded',
]);

/** `Content-Length` of a plain 200: fastify sends `content-length: 0` and nothing else of its own. */
const OK_HEADERS = { 'content-length': '0' } as const;

/** Tells `app`'s observers about a response that a lean path (this one or fast-provision-path.ts) sent. */
export function notifyFastPathObservers(app: FastifyInstance, req: IncomingMessage, statusCode: number): void {
  const list = observers.get(app);
  if (list) for (const observer of list) observer(req, statusCode);
}

interface FastPathDeps {
  core: Core;
  /** Largest request body, bytes (config.httpMaxPayload); larger ones go to fastify for its 413. */
  bodyLimit: number;
}

/**
 * Puts the lean path in front of `app`'s request handler. Call it once, after `createHttpApp` (the server exists) and
 * before `listen`.
 */
export function installFastDevicePath(app: FastifyInstance, deps: FastPathDeps): void {
  const server = app.server;
  const [fastifyHandler] = server.listeners('request') as ((req: IncomingMessage, res: ServerResponse) => void)[];
  if (!fastifyHandler) throw new Error('fastify has no request handler to put the device fast path in front of');
  let closing = false;
  app.addHook('preClose', (done) => {
    closing = true;
    done();
  });
  let requests = 0;
  // The app's logger is the process logger's `http` child (app.ts), a pino logger.
  const log = app.log as unknown as Logger;
  const { core, bodyLimit } = deps;

  /** A request id for log lines, like fastify's `req-<n>` but its own series (`req-f<n>`). */
  const reqId = (id: number): string => `req-f${id.toString(36)}`;

  function finish(req: IncomingMessage, id: number, started: number, statusCode: number): void {
    if (log.isLevelEnabled('debug')) {
      const responseTime = performance.now() - started;
      log.debug({ reqId: reqId(id), method: req.method, url: redactUrl(req.url ?? ''), statusCode, responseTime }, 'request completed');
    }
    const list = observers.get(app);
    if (list) for (const observer of list) observer(req, statusCode);
  }

  function fail(req: IncomingMessage, res: ServerResponse, id: number, started: number, err: unknown): void {
    const failure: HttpFailure = describeFailure(err, bodyLimit);
    if (failure.internal) {
      log.error({ reqId: reqId(id), err, method: req.method, url: redactUrl(req.url ?? ''), statusCode: failure.status }, 'request failed');
    } else if (log.isLevelEnabled('debug')) {
      // No message: a client error's message may quote the request body.
      log.debug({ reqId: reqId(id), code: (err as { code?: unknown } | null)?.code, statusCode: failure.status }, 'request rejected');
    }
    if (!res.headersSent && !res.destroyed) {
      const body = failureBody(failure);
      const headers: Record<string, string> = {};
      if (failure.retryAfterSeconds !== undefined) headers['retry-after'] = String(failure.retryAfterSeconds);
      headers['content-type'] = 'application/json; charset=utf-8';
      headers['content-length'] = String(Buffer.byteLength(body));
      res.writeHead(failure.status, headers);
      res.end(body);
    }
    finish(req, id, started, failure.status);
  }

  async function serve(req: IncomingMessage, res: ServerResponse, id: number, token: string, attributes: boolean, body: Buffer, started: number): Promise<void> {
    try {
      const device = await authenticate(core, token, req.socket.remoteAddress, req.socket);
      // spec §8.3: 200 with an empty body once the data is committed (DESIGN "Data flow").
      if (attributes) await core.telemetry.saveClientAttributesJson(device, body);
      else await core.telemetry.ingestJson(device, body);
    } catch (err) {
      fail(req, res, id, started, err);
      return;
    }
    if (!res.destroyed) {
      res.writeHead(200, OK_HEADERS);
      res.end();
    }
    finish(req, id, started, 200);
  }

  function fastPath(req: IncomingMessage, res: ServerResponse): boolean {
    if (req.method !== 'POST' || closing) return false;
    const match = DEVICE_POST.exec(req.url ?? '');
    if (!match || match[1] === CLIENT_CERTIFICATE_TOKEN) return false;
    const headers = req.headers;
    const contentType = headers['content-type'];
    if (contentType === undefined || !PLAIN_CONTENT_TYPES.has(contentType) || headers['transfer-encoding'] !== undefined) return false;
    const length = Number(headers['content-length']);
    if (!(length > 0 && length <= bodyLimit) || socketRefused(req.socket)) return false;
    const started = performance.now();
    const id = ++requests;
    const token = match[1]!;
    const attributes = match[2] === 'attributes';
    // Node's parser delivers exactly Content-Length bytes; a request cut short never ends and is dropped with its socket.
    let first: Buffer | undefined;
    let chunks: Buffer[] | undefined;
    req.on('data', (chunk: Buffer) => {
      if (first === undefined) first = chunk;
      else (chunks ??= [first]).push(chunk);
    });
    req.on('end', () => {
      const body = chunks ? Buffer.concat(chunks) : first!;
      serve(req, res, id, token, attributes, body, started).catch((err: unknown) => log.error({ err }, 'device fast path failed'));
    });
    return true;
  }

  server.removeListener('request', fastifyHandler);
  server.prependListener('request', (req: IncomingMessage, res: ServerResponse) => {
    if (!fastPath(req, res)) fastifyHandler(req, res);
  });
}
