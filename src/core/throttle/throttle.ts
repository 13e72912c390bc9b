/**
 * The throttle core consults before provisioning and device authentication (DESIGN 6, issue 7 §1): three failure
 * guards over one shared counter. createCore builds an in-memory one with DEFAULT_THROTTLE_LIMITS unless the
 * composition root passes one (e.g. over Redis, so the limits hold per cluster).
 */
import { MemoryRateCounter, type RateCounter } from './counter.ts';
import { DeviceRateLimiter } from './device-rate.ts';
import { FailureGuard, type BlockListener } from './failure-guard.ts';
import { DEFAULT_THROTTLE_LIMITS, parseRateLimit, type ThrottleLimits } from './limits.ts';

/** Options of {@link Throttle}. */
export interface ThrottleOptions {
  /** Where failures are counted (default: a MemoryRateCounter, per node). */
  counter?: RateCounter;
  /** Limit strings; missing ones take DEFAULT_THROTTLE_LIMITS. */
  limits?: Partial<ThrottleLimits>;
  /** Called when a source or key becomes blocked (log line, metric). Must not throw. */
  onBlock?: BlockListener;
  /** Called when the counter fails (e.g. Redis unreachable); throttling then fails open. Must not throw. */
  onError?: (err: unknown) => void;
  /** Clock, ms (tests). */
  now?: () => number;
  /**
   * Source addresses never throttled per source (default: loopback, DEFAULT_EXEMPT_ADDRESSES). Behind a reverse proxy
   * every request comes from the proxy's address: list it here, or one failing device would lock out all the others.
   * Per-key limits still apply to them.
   */
  exempt?: Iterable<string>;
}

/** Loopback: a local reverse proxy or a health check, never a remote guesser. */
export const DEFAULT_EXEMPT_ADDRESSES: readonly string[] = ['127.0.0.1', '::1', '::ffff:127.0.0.1'];

/** The brute-force guards of one node. */
export class Throttle {
  /** Failed provisioning attempts per source address. */
  readonly provisionBySource: FailureGuard;
  /** Failed provisioning attempts per provision key. */
  readonly provisionByKey: FailureGuard;
  /** Failed device authentications per source address. */
  readonly authBySource: FailureGuard;
  /** Messages per device (token buckets, this node). */
  readonly deviceMessages: DeviceRateLimiter;
  readonly limits: ThrottleLimits;
  /** Addresses exempt from the per-source guards; mutable (an operator's allow-list, tests). */
  readonly exempt: Set<string>;
  private readonly counter: RateCounter;

  /** Throws RateLimitSyntaxError for a malformed limit string. */
  constructor(options: ThrottleOptions = {}) {
    this.limits = { ...DEFAULT_THROTTLE_LIMITS, ...options.limits };
    this.exempt = new Set(options.exempt ?? DEFAULT_EXEMPT_ADDRESSES);
    this.counter = options.counter ?? new MemoryRateCounter();
    const now = options.now ?? Date.now;
    const guard = (name: string, limit: string) => new FailureGuard(name, parseRateLimit(limit), this.counter, now, options.onBlock, options.onError);
    this.provisionBySource = guard('provision-source', this.limits.provisionFailuresPerSource);
    this.provisionByKey = guard('provision-key', this.limits.provisionFailuresPerKey);
    this.authBySource = guard('auth-source', this.limits.authFailuresPerSource);
    this.deviceMessages = new DeviceRateLimiter(parseRateLimit(this.limits.deviceMessageRate), now);
  }

  /** The address to count per-source failures under; undefined (not counted) when missing or exempt. */
  sourceKey(address: string | undefined): string | undefined {
    return address === undefined || this.exempt.has(address) ? undefined : address;
  }

  /**
   * Lifts every block on this node and forgets the failures a memory counter holds (tests, an operator's reset).
   * Failures counted in a shared (Redis) counter remain until their window passes.
   */
  clear(): void {
    this.provisionBySource.clear();
    this.provisionByKey.clear();
    this.authBySource.clear();
    if (this.counter instanceof MemoryRateCounter) this.counter.clear();
  }

  /** Closes the counter (its Redis connection). */
  close(): Promise<void> {
    return this.counter.close();
  }
}

/** Seconds for Retry-After / Max-Age: at least 1. */
export const retryAfterSeconds = (ms: number): number => Math.max(1, Math.ceil(ms / 1000));
