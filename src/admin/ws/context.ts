/**
 * What every WebSocket session shares: core, the limits from the configuration, the per-user session counts of this
 * node, the open sessions (closed on shutdown) and the metrics sink.
 */
import type { FastifyInstance } from 'fastify';
import type { Core, CoreLogger } from '../../core/core-types.ts';
import type { FramePacer } from './frame-pacer.ts';
import type { WsSession } from './session.ts';

/** Limits of the WebSocket API (config keys `ws*`, README "Live data over WebSocket"). */
export interface WsLimits {
  /** Live subscriptions (TIMESERIES + ATTRIBUTES) one session may hold. */
  maxSubscriptionsPerSession: number;
  /** Open sessions one user may hold on this node. */
  maxSessionsPerUser: number;
  /** Frames queued for one socket before it is closed as a slow reader (TB `max_queue_messages_per_session`). */
  maxQueuePerSession: number;
  /** Time an `/api/ws` session has to send its `authCmd`, ms (TB `auth_timeout_ms`). */
  authTimeoutMs: number;
  /** A session that answers no ping for this long is closed with 4500, ms (TB `ping_timeout`; pings every third). */
  pingTimeoutMs: number;
  /** 0: a frame per commit (ThingsBoard); otherwise a subscription's updates are sent at most once per this many ms. */
  updateIntervalMs: number;
  /** Live update frames per second this node aims to stay under (stretches `updateIntervalMs`; 0 = no budget). */
  maxUpdateFramesPerSecond: number;
}

/** What the WebSocket API reports to metrics (src/metrics/metrics.ts implements it). Never throws. */
export interface WsMetrics {
  /** Registers how to count open sessions and subscriptions and read the current update interval (ms); read at each scrape. */
  wsGauges(sessions: () => number, subscriptions: () => number, updateIntervalMs?: () => number): void;
  /** One frame sent; `latencyMs` is commit-to-socket for live updates, undefined for other frames. */
  wsMessageSent(latencyMs: number | undefined): void;
  /** A session closed by the server, by close code. */
  wsClosed(code: string): void;
}

/** Open sessions per user on this node. */
export class UserSessionCounts {
  private readonly counts = new Map<string, number>();

  /** Takes a slot for the user; false when the user already holds `max`. */
  acquire(userId: string, max: number): boolean {
    const n = this.counts.get(userId) ?? 0;
    if (max > 0 && n >= max) return false;
    this.counts.set(userId, n + 1);
    return true;
  }

  release(userId: string): void {
    const n = (this.counts.get(userId) ?? 1) - 1;
    if (n <= 0) this.counts.delete(userId);
    else this.counts.set(userId, n);
  }
}

export interface WsContext {
  /** The admin fastify context (its `jwt` verifies tokens). */
  app: FastifyInstance;
  core: Core;
  logger: CoreLogger;
  limits: WsLimits;
  userSessions: UserSessionCounts;
  sessions: Set<WsSession>;
  metrics: WsMetrics | undefined;
  /** The node-wide frame budget every live subscription consults. */
  pacer: FramePacer;
}
