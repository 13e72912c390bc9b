/**
 * One connection of the socket front (socket-front.ts): its bytes read into the lean routes' requests, its answers
 * written in request order, and the hand-over to node:http at the first request outside the front's subset.
 */
import type { Server } from 'node:http';
import type { Socket } from 'node:net';
import type { Logger } from '../../log.ts';
import { socketRefused } from './admission.ts';
import { endAfterResponse } from './connection-drain.ts';
import { HAND_OVER, NEED_MORE, parseFrontHead, type FrontHead } from './front-parser.ts';
import { encodeAnswer } from './front-response.ts';
import type { LeanHandler } from './lean-route.ts';

/** What a connection needs of the front that accepted it. */
export interface FrontHost {
  readonly server: Server;
  /** node:http's own connection listener, which takes a handed-over connection. */
  readonly nodeListener: (this: Server, socket: Socket) => void;
  /** The app is closing: a new request is node:http's (fastify answers 503). */
  readonly closing: boolean;
  /** The end of an answer's head that keeps the connection, and the one that closes it (front-response.ts). */
  readonly keepAliveTail: string;
  readonly closeTail: string;
  readonly log: Logger;
  /** The lean route for a complete head, or undefined when node:http must serve it. */
  route(head: FrontHead): { handler: LeanHandler; match: unknown } | undefined;
  /** The connection is no longer the front's. */
  release(connection: FrontConnection): void;
  /** `socket` goes to node:http with part of a request that began at `started`: its timeouts still count from then. */
  watchHandedOver(socket: Socket, started: number, idleSince: number | undefined): void;
  /** The front's answers on handed-over `socket` are all written (its keep-alive timeout starts, as node:http's would). */
  frontAnswersWritten(socket: Socket): void;
}

/** Reads of one request head after which node:http takes the connection (front-parser.ts reads a head from its start). */
const FRONT_MAX_HEAD_READS = 32;

/** An answer's place in the connection's order; `bytes` once known. */
interface Slot {
  bytes: string | undefined;
}

/** A connection the front serves until it hands it over, fails it or it closes. */
export class FrontConnection {
  /** Bytes read and not yet consumed; they start at a request's first byte. */
  private buf: Buffer | undefined;
  /** The complete head of the request whose body is awaited. */
  head: FrontHead | undefined;
  private pick: { handler: LeanHandler; match: unknown } | undefined;
  private readonly queue: Slot[] = [];
  /**
   * performance.now() of the current request's first byte (of the connection's opening for the first), 0 between
   * requests. The front's timeouts count on the monotonic clock, as node:http's do (uv_hrtime): on the wall clock
   * (Date.now) a clock set back left connections unclosed for as long, one set forward closed them early.
   */
  requestStart = performance.now();
  /** performance.now() since which the connection waits for a next request, 0 when not idle. */
  idleSince = 0;
  /** A `Connection: close` request was read: nothing after it is. */
  private closeAfter = false;
  /** node:http has the connection; its writes wait behind the front's answers still due (`held`). */
  handedOver = false;
  private held: (() => void)[] = [];
  private checkedAdmission = false;
  /**
   * node:http's keep-alive timeout runs: from the last answer written out (all answers done) until the next head is
   * complete, counted from the last byte read or written (`lastActivity`), as its socket timeout is.
   */
  keepAliveArmed = false;
  lastActivity = performance.now();
  /** A whole request was read on this connection (line ends before a later one are skipped, as llhttp does). */
  private readOne = false;
  /** The connection's reading and writing are this object's (until detach). */
  private own = true;
  /** Bytes of answers ready but waiting behind an earlier answer still due. */
  private readyBytes = 0;
  /** Reading is paused because the answers back up (`congested`). */
  private throttled = false;
  private readonly onDrain = (): void => this.unthrottle();
  /** Chunks of the awaited body read after `buf`, joined to it once the body is whole (`data`). */
  private bodyParts: Buffer[] = [];
  /** Reads that brought bytes of the current head. */
  private headReads = 0;
  private bodyPartsLength = 0;
  private readonly onData = (chunk: Buffer): void => this.data(chunk);
  private readonly onEnd = (): void => this.end();
  private readonly onError = (): void => void this.socket.destroy();
  private readonly onClose = (): void => this.front.release(this);

  constructor(
    private readonly front: FrontHost,
    readonly socket: Socket,
  ) {
    socket.on('data', this.onData);
    socket.on('end', this.onEnd);
    socket.on('error', this.onError);
    socket.on('close', this.onClose);
  }

  private data(chunk: Buffer): void {
    this.idleSince = 0;
    const now = performance.now();
    this.lastActivity = now;
    if (this.requestStart === 0) this.requestStart = now;
    const head = this.head;
    if (head !== undefined && this.buf !== undefined) {
      // A body coming in many small chunks is gathered and joined once, when whole (joining at each chunk would copy
      // the body again and again: a 1 MiB body in 256-byte pieces cost ~8x node:http's CPU).
      this.bodyParts.push(chunk);
      this.bodyPartsLength += chunk.length;
      if (this.buf.length + this.bodyPartsLength < head.bodyStart + head.contentLength) return;
      this.buf = Buffer.concat([this.buf, ...this.bodyParts]);
      this.bodyParts = [];
      this.bodyPartsLength = 0;
    } else {
      this.buf = this.buf === undefined ? chunk : Buffer.concat([this.buf, chunk]);
      // A head in many small pieces goes to node:http, whose parser resumes where it stopped (this one starts over).
      if (++this.headReads > FRONT_MAX_HEAD_READS) return this.handOver();
    }
    if (!this.checkedAdmission) {
      this.checkedAdmission = true;
      // Over the connection limit: node:http and the admission hook answer 503.
      if (socketRefused(this.socket)) return this.handOver();
    }
    this.read();
    if (this.own && !this.throttled && this.congested()) this.throttle();
  }

  /**
   * As node:http: once the answers back up — the socket's write buffer needs a drain, or answers ready behind one
   * still due reach its high-water mark — no further request is read until they move (a client that never reads its
   * answers must not make the server buffer them without bound).
   */
  private congested(): boolean {
    return this.socket.writableNeedDrain || this.readyBytes >= this.socket.writableHighWaterMark;
  }

  private throttle(): void {
    this.throttled = true;
    this.socket.pause();
    this.socket.on('drain', this.onDrain);
  }

  private unthrottle(): void {
    if (!this.throttled || !this.own || this.congested()) return;
    this.throttled = false;
    this.socket.removeListener('drain', this.onDrain);
    this.socket.resume();
  }

  private read(): void {
    while (this.buf !== undefined) {
      if (this.closeAfter) return this.afterClose();
      let head = this.head;
      if (head === undefined && this.readOne && isLineEnd(this.buf[0]!)) {
        // Line ends between requests: llhttp skips them without starting a request (RFC 9112 §2.2), so the
        // connection stays idle for the keep-alive timeout rather than the headers timeout.
        let i = 1;
        while (i < this.buf.length && isLineEnd(this.buf[i]!)) i++;
        if (i === this.buf.length) {
          this.buf = undefined;
          this.requestStart = 0;
          if (this.queue.length === 0) this.idleSince = performance.now();
          return;
        }
        this.buf = this.buf.subarray(i);
      }
      // Closing: a request whose head came before goes on; a new one is node:http's (fastify's 503 while closing),
      // as it would have been without the front.
      if (this.front.closing && head === undefined) return this.handOver();
      if (head === undefined) {
        const parsed = parseFrontHead(this.buf);
        if (parsed === NEED_MORE) return;
        if (parsed === HAND_OVER) return this.handOver();
        const pick = this.front.route(parsed);
        if (pick === undefined) return this.handOver();
        this.head = head = parsed;
        this.keepAliveArmed = false;
        this.pick = pick;
      }
      const end = head.bodyStart + head.contentLength;
      if (this.buf.length < end) return;
      const body = this.buf.subarray(head.bodyStart, end);
      this.buf = this.buf.length > end ? this.buf.subarray(end) : undefined;
      this.requestStart = this.buf === undefined ? 0 : performance.now();
      this.headReads = 0;
      this.head = undefined;
      this.readOne = true;
      if (head.close) this.closeAfter = true;
      this.serve(head, this.pick!, body);
    }
  }

  private serve(head: FrontHead, { handler, match }: { handler: LeanHandler; match: unknown }, body: Buffer): void {
    const slot: Slot = { bytes: undefined };
    this.queue.push(slot);
    const tail = head.close ? this.front.closeTail : this.front.keepAliveTail;
    handler.answer({ method: 'POST', url: head.url, socket: this.socket }, match, body).then(
      (answer) => {
        slot.bytes = encodeAnswer(answer, tail);
        this.readyBytes += slot.bytes.length;
        this.flush();
      },
      (err: unknown) => {
        this.front.log.error({ err }, 'HTTP socket front: a lean route failed');
        this.socket.destroy();
      },
    );
  }

  /** Writes the answers that are ready, in request order; then closes, releases node:http's writes or waits. */
  private flush(): void {
    const socket = this.socket;
    if (socket.destroyed || !socket.writable) return;
    while (this.queue.length > 0 && this.queue[0]!.bytes !== undefined) {
      const bytes = this.queue.shift()!.bytes!;
      this.readyBytes -= bytes.length;
      writeOf(socket).call(socket, bytes);
    }
    if (this.throttled) this.unthrottle();
    else if (this.own && this.congested()) this.throttle();
    if (this.queue.length > 0) return;
    if (this.handedOver) {
      this.front.frontAnswersWritten(socket);
      this.front.release(this);
      this.ungate();
      for (const write of this.held.splice(0)) write();
      if (this.front.closing) endAfterResponse(socket);
    } else if (this.closeAfter) {
      // As node:http after a `Connection: close` answer: end, then destroy once written.
      this.front.release(this);
      socket.destroySoon();
    } else if (this.front.closing) {
      this.front.release(this);
      socket.end();
    } else {
      this.keepAliveArmed = true;
      this.lastActivity = performance.now();
      if (this.buf === undefined) this.idleSince = this.lastActivity;
    }
  }

  /**
   * Gives the connection to node:http at once, with the unread bytes in front of whatever the socket reads next, so it
   * sees them when it would have without the front (a bad byte answered 400 at once, a GET served while a post
   * commits). While answers of the front are still due, node:http's writes wait behind them; its `end` (a 400, a
   * 408) drops them, as it drops its own responses still due.
   */
  private handOver(): void {
    const socket = this.socket;
    this.detach();
    if (socket.destroyed) return this.front.release(this);
    if (this.queue.length > 0) this.gate();
    else this.front.release(this);
    if (this.bodyParts.length > 0) {
      this.buf = Buffer.concat([this.buf!, ...this.bodyParts]);
      this.bodyParts = [];
      this.bodyPartsLength = 0;
    }
    socket.pause();
    if (this.buf !== undefined && this.requestStart > 0) {
      const idle = this.keepAliveArmed && this.queue.length === 0 && this.head === undefined;
      this.front.watchHandedOver(socket, this.requestStart, idle ? this.lastActivity : undefined);
    }
    if (this.buf !== undefined) socket.unshift(this.buf);
    this.buf = undefined;
    // node:http then reads through the socket's `data` events (as on TLS) rather than straight from the handle, so
    // the bytes given back come first.
    const handle = (socket as Socket & { _handle?: { _consumed?: boolean } | null })._handle;
    if (handle) handle._consumed = true;
    this.front.nodeListener.call(this.front.server, socket);
    socket.resume();
  }

  private gate(): void {
    const socket = this.socket;
    this.handedOver = true;
    // A reset or destroyed socket never flushes: it must still leave the front's connections.
    socket.once('close', this.onClose);
    const write = socket.write;
    const end = socket.end;
    socket.write = ((...args: Parameters<Socket['write']>) => {
      this.held.push(() => write.apply(socket, args));
      return true;
    }) as Socket['write'];
    socket.end = ((...args: Parameters<Socket['end']>) => {
      this.queue.length = 0;
      this.held.length = 0;
      this.front.release(this);
      this.ungate();
      return end.apply(socket, args);
    }) as Socket['end'];
  }

  private ungate(): void {
    // The instance's own functions go; the prototype's are the socket's again.
    const socket = this.socket as unknown as Record<string, unknown>;
    delete socket.write;
    delete socket.end;
  }

  private detach(): void {
    const socket = this.socket;
    this.own = false;
    this.throttled = false;
    this.readyBytes = 0;
    socket.removeListener('drain', this.onDrain);
    socket.removeListener('data', this.onData);
    socket.removeListener('end', this.onEnd);
    socket.removeListener('error', this.onError);
    socket.removeListener('close', this.onClose);
  }

  /** Ends the front's part: answers still due are dropped and the app's clientErrorHandler answers `err`. */
  private fail(err: Error): void {
    this.front.release(this);
    this.detach();
    this.socket.on('error', () => this.socket.destroy());
    this.queue.length = 0;
    if (!this.front.server.emit('clientError', err, this.socket)) this.socket.destroy();
  }

  /** Bytes after a `Connection: close` request: node:http's parser takes line ends and fails on anything else. */
  private afterClose(): void {
    const rest = this.buf!;
    this.buf = undefined;
    for (const byte of rest) {
      if (byte !== 13 && byte !== 10) return this.fail(Object.assign(new Error('Parse Error: Data after `Connection: close`'), { code: 'HPE_CLOSED_CONNECTION' }));
    }
  }

  /**
   * The client ended its side. node:http (httpAllowHalfOpen off) answers a request cut short with its 400 and
   * otherwise ends the connection at once, answers still due included.
   */
  private end(): void {
    if (this.buf !== undefined) return this.fail(Object.assign(new Error('Parse Error: Invalid EOF state'), { code: 'HPE_INVALID_EOF_STATE' }));
    this.front.release(this);
    this.detach();
    this.socket.on('error', () => this.socket.destroy());
    this.queue.length = 0;
    if (this.socket.writable) this.socket.end();
  }

  /** The headers or request timeout ran out: the app's clientErrorHandler answers 408 as node:http would have it. */
  timedOut(headersDone: boolean): void {
    this.fail(Object.assign(new Error('Request timeout'), { code: 'ERR_HTTP_REQUEST_TIMEOUT', headersDone }));
  }

  /**
   * The app is closing (SocketFront.close): as connection-drain.ts does for node:http, a connection with no request
   * whose head is complete closes now; the others once their answers are written (flush).
   */
  drain(): void {
    if (this.queue.length === 0 && this.head === undefined) {
      this.front.release(this);
      this.socket.destroy();
    }
  }
}

const isLineEnd = (byte: number): boolean => byte === 13 || byte === 10;

/** The socket's own write, also while node:http's writes are held back (FrontConnection.gate). */
const writeOf = (socket: Socket): Socket['write'] => Object.getPrototypeOf(socket).write as Socket['write'];
