/**
 * The lean path of `POST /api/v1/provision` (spec §5.3), served from Node's `request` event before fastify's router,
 * hooks, content-type parser, per-request logger and reply object, as fast-device-path.ts does for telemetry (issue
 * 17: a provisioning storm is every device's first request). The route stays registered in fastify
 * (provision-route.ts) and answers everything this path leaves to it, so behaviour is the same byte for byte: this
 * path takes only the plain case — the exact path without a query string, a known Content-Type, a Content-Length
 * between 1 and the body limit, a connection admitted by the connection limit, the app not closing — and hands every
 * other request to fastify.
 *
 * What it keeps from fastify's route: the same core call (the source address for the throttle), the same answer
 * (`provisionAnswer`: 200 or 429 only after the commit), failures rendered by error-reply.ts and logged as app.ts does
 * (5xx at error with the URL, 4xx at debug without the message, which may quote the body and its secret), one debug
 * line per completed request, and the lean paths' response observers (metrics and auth-failure lines).
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { FastifyInstance } from 'fastify';
import type { Core } from '../../core/core-types.ts';
import { parseProvisionJson } from '../../core/provisioning/request.ts';
import type { Logger } from '../../log.ts';
import { socketRefused } from './admission.ts';
import { describeFailure, failureBody, type HttpFailure } from './error-reply.ts';
import { notifyFastPathObservers, PLAIN_CONTENT_TYPES } from './fast-device-path.ts';
import { PROVISION_WIRE_CONTENT_TYPE, provisionAnswer } from './provision-route.ts';

/** The one URL taken: the route's path, no query string (spec §5.3). */
const PROVISION_URL = '/api/v1/provision';

interface FastProvisionDeps {
  core: Core;
  /** Largest request body, bytes (config.httpMaxPayload); larger ones go to fastify for its 413. */
  bodyLimit: number;
}

/**
 * Puts the lean provisioning path in front of `app`'s request handler (whatever is first then: fastify's, or the
 * device lean path that falls back to it). Call it once, after `createHttpApp` and before `listen`.
 */
export function installFastProvisionPath(app: FastifyInstance, deps: FastProvisionDeps): void {
  const server = app.server;
  const [next] = server.listeners('request') as ((req: IncomingMessage, res: ServerResponse) => void)[];
  if (!next) throw new Error('fastify has no request handler to put the provisioning fast path in front of');
  let closing = false;
  app.addHook('preClose', (done) => {
    closing = true;
    done();
  });
  let requests = 0;
  // The app's logger is the process logger's `http` child (app.ts), a pino logger.
  const log = app.log as unknown as Logger;
  const { core, bodyLimit } = deps;

  /** A request id for log lines, like fastify's `req-<n>` but its own series (`req-p<n>`). */
  const reqId = (id: number): string => `req-p${id.toString(36)}`;

  function finish(req: IncomingMessage, id: number, started: number, statusCode: number): void {
    if (log.isLevelEnabled('debug')) {
      const responseTime = performance.now() - started;
      log.debug({ reqId: reqId(id), method: req.method, url: PROVISION_URL, statusCode, responseTime }, 'request completed');
    }
    notifyFastPathObservers(app, req, statusCode);
  }

  function send(res: ServerResponse, status: number, contentType: string, body: string, retryAfter: string | undefined): void {
    if (res.headersSent || res.destroyed) return;
    // The header order fastify's reply gives: Retry-After (set first by the route), Content-Type, Content-Length.
    const headers: Record<string, string> = {};
    if (retryAfter !== undefined) headers['retry-after'] = retryAfter;
    headers['content-type'] = contentType;
    headers['content-length'] = String(Buffer.byteLength(body));
    res.writeHead(status, headers);
    res.end(body);
  }

  function fail(req: IncomingMessage, res: ServerResponse, id: number, started: number, err: unknown): void {
    const failure: HttpFailure = describeFailure(err, bodyLimit);
    if (failure.internal) {
      log.error({ reqId: reqId(id), err, method: req.method, url: PROVISION_URL, statusCode: failure.status }, 'request failed');
    } else if (log.isLevelEnabled('debug')) {
      // No message: a client error's message may quote the request body (the provisioning secret).
      log.debug({ reqId: reqId(id), code: (err as { code?: unknown } | null)?.code, statusCode: failure.status }, 'request rejected');
    }
    const retryAfter = failure.retryAfterSeconds === undefined ? undefined : String(failure.retryAfterSeconds);
    send(res, failure.status, 'application/json; charset=utf-8', failureBody(failure), retryAfter);
    finish(req, id, started, failure.status);
  }

  async function serve(req: IncomingMessage, res: ServerResponse, id: number, body: Buffer, started: number): Promise<void> {
    let answer;
    try {
      const request = parseProvisionJson(body);
      answer = provisionAnswer(await core.provisioning.provision(request, { transport: 'http', address: req.socket.remoteAddress }));
    } catch (err) {
      fail(req, res, id, started, err);
      return;
    }
    send(res, answer.status, PROVISION_WIRE_CONTENT_TYPE, answer.body, answer.retryAfter);
    finish(req, id, started, answer.status);
  }

  function fastPath(req: IncomingMessage, res: ServerResponse): boolean {
    if (req.method !== 'POST' || req.url !== PROVISION_URL || closing) return false;
    const headers = req.headers;
    const contentType = headers['content-type'];
    if (contentType === undefined || !PLAIN_CONTENT_TYPES.has(contentType) || headers['transfer-encoding'] !== undefined) return false;
    const length = Number(headers['content-length']);
    if (!(length > 0 && length <= bodyLimit) || socketRefused(req.socket)) return false;
    const started = performance.now();
    const id = ++requests;
    // Node's parser delivers exactly Content-Length bytes; a request cut short never ends and is dropped with its socket.
    let first: Buffer | undefined;
    let chunks: Buffer[] | undefined;
    req.on('data', (chunk: Buffer) => {
      if (first === undefined) first = chunk;
      else (chunks ??= [first]).push(chunk);
    });
    req.on('end', () => {
      const body = chunks ? Buffer.concat(chunks) : first!;
      serve(req, res, id, body, started).catch((err: unknown) => log.error({ err }, 'provisioning fast path failed'));
    });
    return true;
  }

  server.removeListener('request', next);
  server.prependListener('request', (req: IncomingMessage, res: ServerResponse) => {
    if (!fastPath(req, res)) next(req, res);
  });
}
