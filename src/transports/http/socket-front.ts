/**
 * The socket front of the plain-HTTP port (issue 17: node:http's own parser, IncomingMessage/ServerResponse and
 * streams cost about half of a lean telemetry post's CPU). It takes node:http's place as the server's `connection`
 * listener, reads each connection's bytes itself and serves the lean routes' strict subset of requests
 * (front-parser.ts) straight from them, with the routes' own handlers (lean-route.ts) and byte-identical answers
 * (front-response.ts). At the first request outside that subset — at a request boundary, once every answer before
 * it is written — it hands the connection to node:http with all its unread bytes (`unshift` back onto the socket),
 * and node:http and fastify serve it from then on exactly as without the front.
 *
 * What node:http does for a connection it keeps doing here: answers in request order (pipelined ones too),
 * `Connection: close` honoured, the headers and request timeouts (408 through the app's clientErrorHandler,
 * admission.ts), the keep-alive idle timeout, connections over the limit handed over for their 503, the debug line
 * and response observers (the lean handler), prompt drain on close (in-flight answers written, idle connections
 * closed). A 200 is written only once the route's commit is done (the handler resolves after it).
 */
import type { Server } from 'node:http';
import type { Socket } from 'node:net';
import type { FastifyInstance } from 'fastify';
import type { Logger } from '../../log.ts';
import { socketRefused, type HttpLimits } from './admission.ts';
import { HAND_OVER, NEED_MORE, parseFrontHead, type FrontHead } from './front-parser.ts';
import { connectionLines, encodeAnswer } from './front-response.ts';
import { leanHandlersOf, PLAIN_CONTENT_TYPES, type LeanHandler } from './lean-route.ts';

/** What the front is installed with (app.ts). */
export interface SocketFrontOptions {
  /** Largest request body, bytes; larger ones are node:http's (fastify's 413). */
  bodyLimit: number;
  limits: HttpLimits;
}

type ConnectionListener = (this: Server, socket: Socket) => void;

/** Connections the front is serving now (connection-drain.ts leaves them to the front's own drain). */
const served = new WeakSet<Socket>();

/** True while the socket front, not node:http, serves `socket`. */
export const servedByFront = (socket: Socket): boolean => served.has(socket);

/** An answer's place in the connection's order; `bytes` once known. */
interface Slot {
  bytes: string | undefined;
}

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

class SocketFront {
  readonly connections = new Set<FrontConnection>();
  closing = false;
  readonly keepAliveTail: string;
  readonly closeTail = connectionLines(false, 0);
  readonly log: Logger;
  private timer: NodeJS.Timeout | undefined;

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

  release(connection: FrontConnection): void {
    this.connections.delete(connection);
    served.delete(connection.socket);
  }

  private check(): void {
    const now = Date.now();
    const { headersTimeoutMs, requestTimeoutMs, keepAliveTimeoutMs } = this.opts.limits;
    for (const connection of this.connections) {
      const started = connection.requestStart;
      if (started > 0 && !connection.handingOver) {
        const headersDone = connection.head !== undefined;
        if (!headersDone && headersTimeoutMs > 0 && now - started > headersTimeoutMs) connection.timedOut(false);
        else if (requestTimeoutMs > 0 && now - started > requestTimeoutMs) connection.timedOut(headersDone);
      } else if (connection.idleSince > 0 && keepAliveTimeoutMs > 0 && now - connection.idleSince >= keepAliveTimeoutMs) {
        connection.socket.destroy();
      }
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

class FrontConnection {
  /** Bytes read and not yet consumed; they start at a request's first byte. */
  private buf: Buffer | undefined;
  /** The complete head of the request whose body is awaited. */
  head: FrontHead | undefined;
  private pick: { handler: LeanHandler; match: unknown } | undefined;
  private readonly queue: Slot[] = [];
  /** Date.now() of the current request's first byte (of the connection's opening for the first), 0 between requests. */
  requestStart = Date.now();
  /** Date.now() since which the connection waits for a next request, 0 when not idle. */
  idleSince = 0;
  /** A `Connection: close` request was read: nothing after it is. */
  private closeAfter = false;
  /** A request outside the subset was read: node:http takes the connection once the answers before it are written. */
  handingOver = false;
  private checkedAdmission = false;
  private readonly onData = (chunk: Buffer): void => this.data(chunk);
  private readonly onEnd = (): void => this.end();
  private readonly onError = (): void => void this.socket.destroy();
  private readonly onClose = (): void => this.front.release(this);

  constructor(
    private readonly front: SocketFront,
    readonly socket: Socket,
  ) {
    socket.on('data', this.onData);
    socket.on('end', this.onEnd);
    socket.on('error', this.onError);
    socket.on('close', this.onClose);
  }

  private data(chunk: Buffer): void {
    if (!this.checkedAdmission) {
      this.checkedAdmission = true;
      // Over the connection limit: node:http and the admission hook answer 503.
      if (socketRefused(this.socket)) this.handingOver = true;
    }
    this.idleSince = 0;
    if (this.requestStart === 0) this.requestStart = Date.now();
    this.buf = this.buf === undefined ? chunk : Buffer.concat([this.buf, chunk]);
    this.read();
  }

  private read(): void {
    while (this.buf !== undefined && !this.handingOver && !this.closeAfter && !this.front.closing) {
      let head = this.head;
      if (head === undefined) {
        const parsed = parseFrontHead(this.buf);
        if (parsed === NEED_MORE) return;
        if (parsed === HAND_OVER) break;
        const pick = this.front.route(parsed);
        if (pick === undefined) break;
        this.head = head = parsed;
        this.pick = pick;
      }
      const end = head.bodyStart + head.contentLength;
      if (this.buf.length < end) return;
      const body = this.buf.subarray(head.bodyStart, end);
      this.buf = this.buf.length > end ? this.buf.subarray(end) : undefined;
      this.requestStart = this.buf === undefined ? 0 : Date.now();
      this.head = undefined;
      if (head.close) this.closeAfter = true;
      this.serve(head, this.pick!, body);
    }
    if (this.buf !== undefined && !this.closeAfter && !this.front.closing) this.handingOver = true;
    if (this.handingOver) {
      this.socket.pause();
      if (this.queue.length === 0) this.handOver();
    }
  }

  private serve(head: FrontHead, { handler, match }: { handler: LeanHandler; match: unknown }, body: Buffer): void {
    const slot: Slot = { bytes: undefined };
    this.queue.push(slot);
    const tail = head.close ? this.front.closeTail : this.front.keepAliveTail;
    handler.answer({ method: 'POST', url: head.url, socket: this.socket }, match, body).then(
      (answer) => {
        slot.bytes = encodeAnswer(answer, tail);
        this.flush();
      },
      (err: unknown) => {
        this.front.log.error({ err }, 'HTTP socket front: a lean route failed');
        this.socket.destroy();
      },
    );
  }

  /** Writes the answers that are ready, in request order; then closes, hands over or waits as the state says. */
  private flush(): void {
    const socket = this.socket;
    if (socket.destroyed || !socket.writable) return;
    while (this.queue.length > 0 && this.queue[0]!.bytes !== undefined) socket.write(this.queue.shift()!.bytes!);
    if (this.queue.length > 0) return;
    if (this.closeAfter) {
      // As node:http after a `Connection: close` answer: end, then destroy once written.
      this.front.release(this);
      socket.destroySoon();
    } else if (this.front.closing) {
      this.front.release(this);
      socket.end();
    } else if (this.handingOver) {
      this.handOver();
    } else if (this.buf === undefined) {
      this.idleSince = Date.now();
    }
  }

  /** Gives the connection to node:http with the unread bytes in front of whatever the socket reads next. */
  private handOver(): void {
    const socket = this.socket;
    this.front.release(this);
    this.detach();
    if (socket.destroyed) return;
    socket.pause();
    if (this.buf !== undefined) socket.unshift(this.buf);
    this.buf = undefined;
    // node:http then reads through the socket's `data` events (as on TLS) rather than straight from the handle, so
    // the bytes given back come first.
    const handle = (socket as Socket & { _handle?: { _consumed?: boolean } | null })._handle;
    if (handle) handle._consumed = true;
    this.front.nodeListener.call(this.front.server, socket);
    socket.resume();
  }

  private detach(): void {
    const socket = this.socket;
    socket.removeListener('data', this.onData);
    socket.removeListener('end', this.onEnd);
    socket.removeListener('error', this.onError);
    socket.removeListener('close', this.onClose);
  }

  /**
   * The client ended its side. node:http (httpAllowHalfOpen off) answers a request cut short with its 400 and
   * otherwise ends the connection at once, answers still due included.
   */
  private end(): void {
    const partial = this.buf !== undefined;
    this.front.release(this);
    this.detach();
    this.socket.on('error', () => this.socket.destroy());
    this.queue.length = 0;
    if (partial) {
      const err = Object.assign(new Error('Parse Error: Invalid EOF state'), { code: 'HPE_INVALID_EOF_STATE' });
      if (!this.front.server.emit('clientError', err, this.socket)) this.socket.destroy();
    } else if (this.socket.writable) {
      this.socket.end();
    }
  }

  /** The headers or request timeout ran out: the app's clientErrorHandler answers 408 as node:http would have it. */
  timedOut(headersDone: boolean): void {
    this.front.release(this);
    this.detach();
    this.socket.on('error', () => this.socket.destroy());
    this.queue.length = 0;
    const err = Object.assign(new Error('Request timeout'), { code: 'ERR_HTTP_REQUEST_TIMEOUT', headersDone });
    if (!this.front.server.emit('clientError', err, this.socket)) this.socket.destroy();
  }

  /** The app is closing (SocketFront.close). */
  drain(): void {
    if (this.queue.length === 0) {
      this.front.release(this);
      this.socket.destroy();
    }
  }
}
