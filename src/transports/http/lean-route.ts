/**
 * Lean routes: a few of the device API's busiest requests served from Node's `request` event before fastify's router,
 * hooks, content-type parser, per-request logger and reply object (issue 17: together they cost more CPU than the
 * rest of such a request). The routes stay registered in fastify and answer everything a lean route leaves to them,
 * so behaviour is the same byte for byte: a lean route takes only the plain case — its own method and URL, a known
 * Content-Type, no Transfer-Encoding, a Content-Length between 1 and the body limit, a connection admitted by the
 * connection limit, the app not closing — and hands every other request to fastify.
 *
 * What it keeps from fastify: failures rendered by error-reply.ts and logged as app.ts does (5xx at error with the
 * redacted URL, 4xx at debug without the message, which may quote the body and its secrets), one debug line per
 * completed request (request-log.ts), and the response observers (metrics and auth-failure lines, src/metrics/http.ts).
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import type { FastifyInstance } from 'fastify';
import type { Core } from '../../core/core-types.ts';
import { redactUrl, type Logger } from '../../log.ts';
import { socketRefused } from './admission.ts';
import { describeFailure, failureBody, type HttpFailure } from './error-reply.ts';

/**
 * What a lean route sees of a request: node:http's IncomingMessage, or the socket front's request (socket-front.ts),
 * which reads the same few things straight from the connection's bytes.
 */
export interface LeanRequest {
  readonly method?: string;
  readonly url?: string;
  readonly socket: Socket;
}

/** Called for every response of a lean route (fastify's onResponse hooks do not see them). */
export type FastPathResponseObserver = (req: LeanRequest, statusCode: number) => void;

const observers = new WeakMap<FastifyInstance, FastPathResponseObserver[]>();

/**
 * A lean route bound to its app, as the socket front (socket-front.ts) calls it: which URLs it takes, and its answer to
 * a whole request — failures rendered, the request logged and observed as on the `request` event path.
 */
export interface LeanHandler {
  /** What the route needs from a POST's URL, or undefined to leave the request to others. */
  match(url: string): unknown;
  /** The answer to a whole request (never rejects; the debug line and the observers have run). */
  answer(req: LeanRequest, match: unknown, body: Buffer): Promise<LeanAnswer>;
}

const handlers = new WeakMap<FastifyInstance, LeanHandler[]>();

/** The lean routes installed on `app`, in the order a request is offered to them. */
export function leanHandlersOf(app: FastifyInstance): readonly LeanHandler[] {
  return handlers.get(app) ?? [];
}

/** Adds an observer of the lean routes' responses on `app` (call it before or after they are installed). */
export function observeFastPathResponses(app: FastifyInstance, observer: FastPathResponseObserver): void {
  const list = observers.get(app);
  if (list) list.push(observer);
  else observers.set(app, [observer]);
}

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

/** A lean route's answer: fastify's reply would send these headers, in this order (Retry-After is set first by the routes). */
export interface LeanAnswer {
  status: number;
  retryAfter?: string;
  /** Left out for an empty 200 (fastify then sends only `content-length: 0`). */
  contentType?: string;
  body: string;
}

/** What a lean path is installed with (device-api.ts). */
export interface LeanPathDeps {
  core: Core;
  /** Largest request body, bytes (config.httpMaxPayload); larger ones go to fastify for its 413. */
  bodyLimit: number;
}

/** One lean route: which requests it takes and how it answers them. */
export interface LeanRoute<Match> {
  /** Names the route in a last-resort error line. */
  name: string;
  /** Request ids of its log lines: `req-<idPrefix><n>`, a series of its own beside fastify's `req-<n>`. */
  idPrefix: string;
  /** What the route needs from a POST's URL, or undefined to leave the request to fastify. */
  match(url: string): Match | undefined;
  /** The answer to a whole body; a throw is answered as fastify's error handler would. */
  serve(req: LeanRequest, match: Match, body: Buffer): Promise<LeanAnswer>;
}

/**
 * Puts `route` in front of `app`'s request handler (whatever is first then: fastify's, or another lean route that
 * falls back to it). Call it after `createHttpApp` (the server exists) and before `listen`.
 */
export function installLeanRoute<Match>(app: FastifyInstance, bodyLimit: number, route: LeanRoute<Match>): void {
  const server = app.server;
  const [next] = server.listeners('request') as ((req: IncomingMessage, res: ServerResponse) => void)[];
  if (!next) throw new Error(`fastify has no request handler to put the ${route.name} in front of`);
  let closing = false;
  app.addHook('preClose', (done) => {
    closing = true;
    done();
  });
  let requests = 0;
  // The app's logger is the process logger's `http` child (app.ts), a pino logger.
  const log = app.log as unknown as Logger;
  const reqId = (id: number): string => `req-${route.idPrefix}${id.toString(36)}`;

  function send(res: ServerResponse, answer: LeanAnswer): void {
    if (res.headersSent || res.destroyed) return;
    const headers: Record<string, string> = {};
    if (answer.retryAfter !== undefined) headers['retry-after'] = answer.retryAfter;
    if (answer.contentType !== undefined) headers['content-type'] = answer.contentType;
    headers['content-length'] = answer.body === '' ? '0' : String(Buffer.byteLength(answer.body));
    res.writeHead(answer.status, headers);
    if (answer.body === '') res.end();
    else res.end(answer.body);
  }

  function finish(req: LeanRequest, id: number, started: number, statusCode: number): void {
    if (log.isLevelEnabled('debug')) {
      const responseTime = performance.now() - started;
      log.debug({ reqId: reqId(id), method: req.method, url: redactUrl(req.url ?? ''), statusCode, responseTime }, 'request completed');
    }
    const list = observers.get(app);
    if (list) for (const observer of list) observer(req, statusCode);
  }

  function failureAnswer(req: LeanRequest, id: number, err: unknown): LeanAnswer {
    const failure: HttpFailure = describeFailure(err, bodyLimit);
    if (failure.internal) {
      log.error({ reqId: reqId(id), err, method: req.method, url: redactUrl(req.url ?? ''), statusCode: failure.status }, 'request failed');
    } else if (log.isLevelEnabled('debug')) {
      // No message: a client error's message may quote the request body.
      log.debug({ reqId: reqId(id), code: (err as { code?: unknown } | null)?.code, statusCode: failure.status }, 'request rejected');
    }
    const retryAfter = failure.retryAfterSeconds === undefined ? undefined : String(failure.retryAfterSeconds);
    return { status: failure.status, retryAfter, contentType: 'application/json; charset=utf-8', body: failureBody(failure) };
  }

  /** The answer to a whole request, logged and observed. */
  async function answer(req: LeanRequest, match: Match, body: Buffer): Promise<LeanAnswer> {
    const started = performance.now();
    const id = ++requests;
    let result: LeanAnswer;
    try {
      result = await route.serve(req, match, body);
    } catch (err) {
      result = failureAnswer(req, id, err);
    }
    finish(req, id, started, result.status);
    return result;
  }

  const handler: LeanHandler = { match: route.match, answer: answer as LeanHandler['answer'] };
  const list = handlers.get(app);
  // The latest installed is offered requests first, as on the `request` event below.
  if (list) list.unshift(handler);
  else handlers.set(app, [handler]);

  function take(req: IncomingMessage, res: ServerResponse): boolean {
    if (req.method !== 'POST' || closing) return false;
    const match = route.match(req.url ?? '');
    if (match === undefined) return false;
    const headers = req.headers;
    const contentType = headers['content-type'];
    if (contentType === undefined || !PLAIN_CONTENT_TYPES.has(contentType) || headers['transfer-encoding'] !== undefined) return false;
    const length = Number(headers['content-length']);
    if (!(length > 0 && length <= bodyLimit) || socketRefused(req.socket)) return false;
    // Node's parser delivers exactly Content-Length bytes; a request cut short never ends and is dropped with its socket.
    let first: Buffer | undefined;
    let chunks: Buffer[] | undefined;
    req.on('data', (chunk: Buffer) => {
      if (first === undefined) first = chunk;
      else (chunks ??= [first]).push(chunk);
    });
    req.on('end', () => {
      const body = chunks ? Buffer.concat(chunks) : first!;
      answer(req, match, body).then(
        (result) => send(res, result),
        (err: unknown) => log.error({ err }, `${route.name} failed`),
      );
    });
    return true;
  }

  server.removeListener('request', next);
  server.prependListener('request', (req: IncomingMessage, res: ServerResponse) => {
    if (!take(req, res)) next(req, res);
  });
}
