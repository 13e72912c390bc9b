/**
 * The socket front of the plain-HTTP port (issue 17: node:http's own parser, IncomingMessage/ServerResponse and
 * streams cost about half of a lean telemetry post's CPU). It takes node:http's place as the server's `connection`
 * listener, reads each connection's bytes itself and serves the lean routes' strict subset of requests
 * (front-parser.ts) straight from them, with the routes' own handlers (lean-route.ts) and byte-identical answers
 * (front-response.ts). At the first request outside that subset — at a request boundary, at once — it hands the
 * connection to node:http with all its unread bytes (`unshift` back onto the socket), node:http's writes held behind
 * the front's answers still due, and node:http and fastify serve it from then on exactly as without the front.
 *
 * What node:http does for a connection it keeps doing here: answers in request order (pipelined ones too),
 * `Connection: close` honoured, the headers and request timeouts (408 through the app's clientErrorHandler,
 * admission.ts), the keep-alive idle timeout, connections over the limit handed over for their 503, the debug line
 * and response observers (the lean handler), prompt drain on close (in-flight answers written, idle connections
 * closed). A 200 is written only once the route's commit is done (the handler resolves after it).
 */
import type { IncomingMessage, Server } from 'node:http';
import type { Socket } from 'node:net';
import type { FastifyInstance } from 'fastify';
import type { Logger } from '../../log.ts';
import type { HttpLimits } from './admission.ts';
import { FrontConnection, type FrontHost } from './front-connection.ts';
import type { FrontHead } from './front-parser.ts';
import { connectionLines } from './front-response.ts';
import { leanHandlersOf, PLAIN_CONTENT_TYPES, type LeanHandler } from './lean-route.ts';

/** What the front is installed with (app.ts). */
export interface SocketFrontOptions {
  /** Largest request body, bytes; larger ones are node:http's (fastify's 413). */
  bodyLimit: number;
  limits: HttpLimits;
}

/** Connections the front is serving now (connection-drain.ts leaves them to the front's own drain). */
const served = new WeakSet<Socket>();

/** True while the socket front, not node:http, serves `socket` (or node:http's writes wait behind its answers). */
export const servedByFront = (socket: Socket): boolean => served.has(socket);

type ConnectionListener = FrontHost['nodeListener'];

/**
 * Replaces node:http's connection listener on `app`'s server by the front (call once, in createHttpApp, before
 * `listen`; not for HTTPS, whose requests stay on node:http).
 */
export function installSocketFront(app: FastifyInstance, opts: SocketFrontOptions): void {
  const server = app.server as Server;
  const nodeListener = server.listeners('connection').find((l) => l.name === 'connectionListener') as ConnectionListener | undefined;
  if (!nodeListener) throw new Error('node:http connection listener not found: cannot put the socket front before it');
  const front = new SocketFront(app, server, nodeListener, opts);
  server.removeListener('connection', nodeListener);
  server.prependListener('connection', (socket: Socket) => front.accept(socket));
  app.addHook('preClose', (done) => {
    front.close();
    done();
  });
  app.addHook('onClose', (_instance, done) => {
    front.stopTimer();
    done();
  });
}

class SocketFront implements FrontHost {
  readonly connections = new Set<FrontConnection>();
  closing = false;
  readonly keepAliveTail: string;
  readonly closeTail = connectionLines(false, 0);
  readonly log: Logger;
  private timer: NodeJS.Timeout | undefined;
  /**
   * Connections handed over in the middle of a request: node:http's parser counts that request's timeouts from the
   * hand-over, so the front keeps counting them from its first byte until node:http has the whole request.
   */
  private readonly handedOverRequests = new Map<Socket, HandedOverRequest>();

  constructor(
    readonly app: FastifyInstance,
    readonly server: Server,
    readonly nodeListener: ConnectionListener,
    readonly opts: SocketFrontOptions,
  ) {
    this.keepAliveTail = connectionLines(true, opts.limits.keepAliveTimeoutMs);
    this.log = app.log as unknown as Logger;
  }

  accept(socket: Socket): void {
    if (this.closing) {
      this.nodeListener.call(this.server, socket);
      return;
    }
    const connection = new FrontConnection(this, socket);
    this.connections.add(connection);
    served.add(socket);
    // One timer checks every connection's limits, as node:http's connectionsCheckingInterval does.
    if (this.timer === undefined) {
      const { headersTimeoutMs, requestTimeoutMs, keepAliveTimeoutMs } = this.opts.limits;
      const shortest = Math.min(...[headersTimeoutMs, requestTimeoutMs, keepAliveTimeoutMs].filter((t) => t > 0), 4000);
      this.timer = setInterval(() => this.check(), Math.max(50, Math.min(1000, Math.floor(shortest / 4))));
      this.timer.unref();
    }
  }

  /** The lean route and its match for a complete head, or undefined when node:http must serve it. */
  route(head: FrontHead): { handler: LeanHandler; match: unknown } | undefined {
    if (head.contentType === undefined || !PLAIN_CONTENT_TYPES.has(head.contentType)) return undefined;
    if (!(head.contentLength > 0 && head.contentLength <= this.opts.bodyLimit)) return undefined;
    for (const handler of leanHandlersOf(this.app)) {
      const match = handler.match(head.url);
      if (match !== undefined) return { handler, match };
    }
    return undefined;
  }

  /**
   * `socket` goes to node:http with part of a request that began at `started` (performance.now()); `idleSince` when the
   * front's keep-alive timeout was running (its answers all written), which node:http's new parser does not know of.
   */
  watchHandedOver(socket: Socket, started: number, idleSince: number | undefined): void {
    const { headersTimeoutMs, requestTimeoutMs } = this.opts.limits;
    if (headersTimeoutMs <= 0 && requestTimeoutMs <= 0) return;
    // Listened to only while a connection is watched; after fastify's (installLeanRoute takes the first listener).
    if (this.handedOverRequests.size === 0) this.server.on('request', this.onRequest);
    this.handedOverRequests.set(socket, { started, req: undefined, idleSince, bytesRead: socket.bytesRead });
  }

  /**
   * The front's answers on handed-over `socket` are all written: node:http alone would start its keep-alive timeout
   * now, if the next head is not complete yet.
   */
  frontAnswersWritten(socket: Socket): void {
    const watched = this.handedOverRequests.get(socket);
    if (watched !== undefined && watched.req === undefined && watched.idleSince === undefined) {
      watched.idleSince = performance.now();
      watched.bytesRead = socket.bytesRead;
    }
  }

  /** node:http's `request` event: the first request of a watched connection is the one handed over. */
  private readonly onRequest = (req: IncomingMessage): void => {
    const watched = this.handedOverRequests.get(req.socket);
    if (watched !== undefined && watched.req === undefined) watched.req = req;
  };

  release(connection: FrontConnection): void {
    this.connections.delete(connection);
    served.delete(connection.socket);
  }

  private check(): void {
    const now = performance.now();
    for (const connection of this.connections) {
      if (connection.handedOver) continue;
      try {
        this.checkConnection(connection, now);
      } catch (err) {
        // One connection's failure (an app clientError listener that throws, say) must not stop the check of the
        // others, whose timeouts would then never run: that one is logged and closed.
        this.log.error({ err }, 'HTTP socket front: a connection check failed; closing it');
        connection.socket.destroy();
        this.release(connection);
      }
    }
    for (const [socket, watched] of this.handedOverRequests) {
      try {
        this.checkHandedOver(socket, watched, now);
      } catch (err) {
        this.log.error({ err }, 'HTTP socket front: a handed-over connection check failed; closing it');
        this.handedOverRequests.delete(socket);
        socket.destroy();
      }
    }
    if (this.handedOverRequests.size === 0) this.server.removeListener('request', this.onRequest);
  }

  /** The headers, request and keep-alive timeouts of a connection the front serves. */
  private checkConnection(connection: FrontConnection, now: number): void {
    const { headersTimeoutMs, requestTimeoutMs, keepAliveTimeoutMs } = this.opts.limits;
    const started = connection.requestStart;
    if (started > 0) {
      const headersDone = connection.head !== undefined;
      if (!headersDone && headersTimeoutMs > 0 && now - started > headersTimeoutMs) connection.timedOut(false);
      else if (requestTimeoutMs > 0 && now - started > requestTimeoutMs) connection.timedOut(headersDone);
      else if (!headersDone && connection.keepAliveArmed && keepAliveTimeoutMs > 0) {
        // node:http's keep-alive timeout also ends a next request whose head is not complete (silently, as idle).
        if (connection.socket.writableLength > 0) connection.lastActivity = now;
        else if (now - connection.lastActivity >= keepAliveTimeoutMs) connection.socket.destroy();
      }
    } else if (connection.idleSince > 0 && keepAliveTimeoutMs > 0) {
      // As node:http, whose keep-alive timeout starts once the last answer is written out: a client slow to read
      // its answers gets all of them.
      if (connection.socket.writableLength > 0) connection.idleSince = now;
      else if (now - connection.idleSince >= keepAliveTimeoutMs) connection.socket.destroy();
    }
  }

  /** The timeouts node:http's parser does not know of, of a connection handed over part way through a request. */
  private checkHandedOver(socket: Socket, watched: HandedOverRequest, now: number): void {
    const { headersTimeoutMs, requestTimeoutMs, keepAliveTimeoutMs } = this.opts.limits;
    const headersDone = watched.req !== undefined;
    // node:http frees a connection's parser (socket.parser = null) when it upgrades it (WebSocket): no HTTP timeout
    // applies to it any more; an upgrade comes as `upgrade`, never as `request`.
    if (socket.destroyed || watched.req?.complete || !(socket as Socket & { parser?: unknown }).parser) {
      this.handedOverRequests.delete(socket);
    } else if (!headersDone && watched.idleSince !== undefined && keepAliveTimeoutMs > 0 && keepAliveDue(socket, watched, now, keepAliveTimeoutMs)) {
      // node:http alone would have closed it as idle by its keep-alive timeout (until the next head is complete).
      this.handedOverRequests.delete(socket);
      socket.destroy();
    } else if ((!headersDone && headersTimeoutMs > 0 && now - watched.started > headersTimeoutMs) || (requestTimeoutMs > 0 && now - watched.started > requestTimeoutMs)) {
      // As node:http's own check does: the app's clientErrorHandler answers 408 naming the limit.
      this.handedOverRequests.delete(socket);
      const err = Object.assign(new Error('Request timeout'), { code: 'ERR_HTTP_REQUEST_TIMEOUT', headersDone });
      if (!this.server.emit('clientError', err, socket)) socket.destroy();
    }
  }

  /** The app is closing: idle connections close now, the others once their answers are written. */
  close(): void {
    this.closing = true;
    for (const connection of this.connections) connection.drain();
  }

  stopTimer(): void {
    clearInterval(this.timer);
    this.timer = undefined;
  }
}

/** A request handed over to node:http part way (SocketFront.watchHandedOver). */
interface HandedOverRequest {
  started: number;
  /** node:http's request for it, once its head is complete. */
  req: IncomingMessage | undefined;
  /** Since when the connection is idle for the keep-alive timeout (last byte read or written), if it runs. */
  idleSince: number | undefined;
  bytesRead: number;
}

/** True when the keep-alive timeout of `watched` ran out: no byte read or written for `timeoutMs`. */
function keepAliveDue(socket: Socket, watched: HandedOverRequest, now: number, timeoutMs: number): boolean {
  if (socket.bytesRead !== watched.bytesRead || socket.writableLength > 0) {
    watched.bytesRead = socket.bytesRead;
    watched.idleSince = now;
    return false;
  }
  return now - watched.idleSince! >= timeoutMs;
}
