/**
 * The cluster-wide {@link RateCounter}: the same two-bucket sliding window as the memory counter, kept in Redis so
 * every node counts the same failures (issue 7: "limits hold per cluster"). One Lua script increments the current
 * bucket, sets its expiry and reads the previous bucket atomically in a single round trip.
 */
import { Redis } from 'ioredis';
import { slidingCount, type RateCounter } from './counter.ts';

/** KEYS[1] current bucket, KEYS[2] previous bucket; ARGV[1] hits to add (0 = read only), ARGV[2] bucket ttl ms. */
const SCRIPT = `
local added = tonumber(ARGV[1])
local current
if added > 0 then
  current = redis.call('INCRBY', KEYS[1], added)
  if current == added then redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
else
  current = tonumber(redis.call('GET', KEYS[1]) or '0')
end
local previous = tonumber(redis.call('GET', KEYS[2]) or '0')
return {current, previous}
`;

type WithScript = Redis & { fleetgateSlidingHit(current: string, previous: string, added: number, ttlMs: number): Promise<[number, number]> };

/** Options of {@link RedisRateCounter}. */
export interface RedisRateCounterOptions {
  /** Prefix of every key (default `fleetgate:throttle:`), so several clusters can share one Redis. */
  prefix?: string;
  /** Errors the connection emits (Redis restarted or unreachable); without a listener ioredis prints each one. */
  onConnectionError?: (err: Error) => void;
  /** ioredis's reconnection delay after `times` failed attempts, ms (default: ioredis's). */
  retryStrategy?: (times: number) => number;
}

/** A {@link RateCounter} in Redis. Owns its connection: `close()` quits it. */
export class RedisRateCounter implements RateCounter {
  private readonly redis: WithScript;
  private readonly prefix: string;

  constructor(redis: Redis, options: RedisRateCounterOptions = {}) {
    redis.defineCommand('fleetgateSlidingHit', { numberOfKeys: 2, lua: SCRIPT });
    this.redis = redis as WithScript;
    this.prefix = options.prefix ?? 'fleetgate:throttle:';
  }

  /** Connects to `url` (`redis://host:port/db`). */
  static open(url: string, options: RedisRateCounterOptions = {}): RedisRateCounter {
    const redis = new Redis(url, { maxRetriesPerRequest: 2, enableOfflineQueue: true, retryStrategy: options.retryStrategy });
    redis.on('error', (err: Error) => options.onConnectionError?.(err));
    return new RedisRateCounter(redis, options);
  }

  private async run(key: string, windowMs: number, now: number, n: number): Promise<number> {
    const index = Math.floor(now / windowMs);
    // One hash tag per key keeps both buckets in one Redis Cluster slot.
    const base = `${this.prefix}{${key}}:${windowMs}:`;
    const [current, previous] = await this.redis.fleetgateSlidingHit(base + index, base + (index - 1), n, windowMs * 2);
    return slidingCount(Number(previous), Number(current), windowMs, now);
  }

  hit(key: string, windowMs: number, now: number, n = 1): Promise<number> {
    return this.run(key, windowMs, now, n);
  }

  peek(key: string, windowMs: number, now: number): Promise<number> {
    return this.run(key, windowMs, now, 0);
  }

  async close(): Promise<void> {
    await this.redis.quit().catch(() => this.redis.disconnect());
  }
}
