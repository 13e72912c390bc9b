/**
 * Which Redis errors mean "Redis is down or unreachable" (issue 18): they become a DependencyUnavailableError naming
 * the bus, logged once per outage; anything else passes through.
 */
import { DependencyUnavailableError } from '../core/errors.ts';

const ADVICE = 'check that Redis is running and reachable; fleetgate reconnects on its own';
const SOCKET_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'ENOTFOUND', 'EHOSTUNREACH', 'ENETUNREACH', 'EAI_AGAIN', 'ECONNABORTED']);
/** ioredis's own messages for a connection that is gone or a command given up on. */
const CLOSED = /Connection is closed|Stream isn't writeable|max retries per request|LOADING|READONLY|MASTERDOWN/i;

/** The bus outage `err` stands for, or undefined when it is not one. */
export function redisUnavailable(err: unknown): DependencyUnavailableError | undefined {
  if (err instanceof DependencyUnavailableError) return err;
  const e = (err ?? {}) as { code?: unknown; message?: unknown; name?: unknown };
  const code = typeof e.code === 'string' ? e.code : '';
  const message = typeof e.message === 'string' ? e.message : String(err);
  if (SOCKET_CODES.has(code)) return new DependencyUnavailableError('bus', `Redis cannot be reached (${code})`, ADVICE, err);
  if (e.name === 'MaxRetriesPerRequestError' || CLOSED.test(message)) return new DependencyUnavailableError('bus', `Redis connection lost: ${message}`, ADVICE, err);
  return undefined;
}

/**
 * ioredis's reconnection delay after `times` failed attempts: 100 ms doubling to at most 1 s, each scaled by 0.5-1
 * (jitter), so nodes that lost Redis together do not all come back in the same millisecond.
 */
export function redisRetryDelay(times: number): number {
  return Math.round(Math.min(1000, 100 * 2 ** Math.min(times - 1, 4)) * (0.5 + Math.random() / 2));
}
