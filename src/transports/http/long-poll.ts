/**
 * HTTP long polls (spec §8.3 `GET /{token}/attributes/updates`, `GET /{token}/rpc`): a device session lives exactly
 * as long as one request waits, and the first message from core answers it.
 */
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { DeviceSessionHandle } from '../../core/api.ts';
import { FleetgateError } from '../../core/errors.ts';

/** The long polls waiting in one app, so that stopping the server can answer them instead of waiting them out. */
export class LongPolls {
  private readonly waiting = new Set<() => void>();

  /** Registers a waiting poll's stop function; returns the function that unregisters it. */
  add(stop: () => void): () => void {
    this.waiting.add(stop);
    return () => this.waiting.delete(stop);
  }

  /** Answers every waiting poll with 503 (the server is stopping). */
  stopAll(): void {
    for (const stop of [...this.waiting]) stop();
  }
}

/** Writes the 200 answer of a poll; resolves once the response is written, rejects if it cannot be. */
export type Answer = (jsonBody: string) => Promise<void>;

export interface LongPollOptions {
  request: FastifyRequest;
  reply: FastifyReply;
  timeoutMs: number;
  polls: LongPolls;
  /**
   * Opens the device session whose first message calls `answer` (possibly at once, from inside `open`); `abort`
   * ends the poll with an error instead (e.g. the device was deleted).
   */
  open: (answer: Answer, abort: (error: FleetgateError) => void) => DeviceSessionHandle;
}

class PollClosedError extends Error {
  constructor(why: string) {
    super(`long poll closed: ${why}`);
    this.name = 'PollClosedError';
  }
}

/**
 * Holds the request until the session answers (200 JSON), the timeout passes (408, empty body, spec §8.3), the client
 * goes away (nothing sent; a later `answer` rejects, so core keeps an RPC pending) or the server stops (503).
 * The session is closed in every case. Resolves when the request is settled.
 */
export function longPoll(opts: LongPollOptions): Promise<void> {
  const { reply, polls } = opts;
  const res = reply.raw;
  return new Promise<void>((resolve, reject) => {
    let settled = false;
    let session: DeviceSessionHandle | undefined;
    let sessionDone = false;
    let timer: NodeJS.Timeout | undefined;
    let unregister = () => {};

    const closeSession = () => {
      sessionDone = true;
      session?.close();
    };
    /** Marks the poll settled and stops listening; true when it was still open. */
    const settle = (): boolean => {
      if (settled) return false;
      settled = true;
      clearTimeout(timer);
      unregister();
      // ServerResponse 'close' fires when the connection drops (IncomingMessage 'close' fires once the request body
      // was read, which for a GET is at once).
      res.off('close', onClientGone);
      resolve();
      return true;
    };
    let gone = false;
    function onClientGone(): void {
      gone = true;
      if (settle()) closeSession();
    }
    const clientGone = () => res.destroyed || res.writableEnded || opts.request.raw.socket?.destroyed === true;

    const answer: Answer = (jsonBody) => {
      if (settled || clientGone()) return Promise.reject(new PollClosedError(gone || clientGone() ? 'client went away' : 'already answered'));
      settle();
      const written = new Promise<void>((ok, fail) => {
        res.once('finish', ok);
        res.once('close', () => {
          if (!res.writableFinished) fail(new PollClosedError('client went away before the answer was written'));
        });
      });
      reply.code(200).header('content-type', 'application/json').send(jsonBody);
      written.then(closeSession, closeSession);
      return written;
    };

    if (clientGone()) {
      settle();
      return;
    }
    res.on('close', onClientGone);
    timer = setTimeout(() => {
      if (settle()) {
        reply.code(408).send(); // spec §8.3: 408, empty body, on timeout
        closeSession();
      }
    }, opts.timeoutMs);
    unregister = polls.add(() => {
      if (settle()) {
        // Without `connection: close` the kept-alive socket would hold server.close() open.
        reply.header('connection', 'close').send(new FleetgateError('SHUTTING_DOWN', 'Server is shutting down'));
        closeSession();
      }
    });
    const abort = (error: FleetgateError) => {
      if (settle()) {
        reply.send(error);
        closeSession();
      }
    };
    try {
      session = opts.open(answer, abort);
    } catch (err) {
      if (!settled) {
        settled = true;
        clearTimeout(timer);
        unregister();
        res.off('close', onClientGone);
        reject(err);
      }
      return;
    }
    if (sessionDone) session.close(); // answered (or abandoned) from inside open()
  });
}
