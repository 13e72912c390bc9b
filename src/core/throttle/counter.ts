/**
 * Sliding-window counters behind one interface, so throttling holds per node (memory) or per cluster (Redis,
 * redis-counter.ts). The window is the classic two-bucket approximation: the count of the current fixed window plus
 * the previous window's count weighted by how much of it still overlaps the sliding window. It never under-counts
 * a burst by more than one window's worth of decay and costs two integers per key.
 */

/** Adds hits to named counters and reads their sliding-window count. Implementations must be safe across nodes. */
export interface RateCounter {
  /**
   * Adds `n` hits to `key` at time `now` (ms) and resolves to the sliding-window count over the last `windowMs`,
   * this hit included. Each window length has its own count for a key.
   */
  hit(key: string, windowMs: number, now: number, n?: number): Promise<number>;
  /** The sliding-window count of `key` at `now`, without adding to it. */
  peek(key: string, windowMs: number, now: number): Promise<number>;
  /** Releases connections (Redis); the memory counter has nothing to release. */
  close(): Promise<void>;
}

/** The sliding estimate from the two fixed windows: `previous` weighted by its overlap, plus `current`. */
export function slidingCount(previous: number, current: number, windowMs: number, now: number): number {
  const intoCurrent = now % windowMs;
  return previous * (1 - intoCurrent / windowMs) + current;
}

interface Buckets {
  /** Index of the fixed window `current` belongs to: floor(now / windowMs). */
  index: number;
  previous: number;
  current: number;
}

/** Default bound on the keys one memory counter keeps (oldest-touched keys are dropped first). */
export const DEFAULT_MAX_KEYS = 100_000;

/**
 * A {@link RateCounter} in this process's memory: per node, bounded to `maxKeys` keys (an attacker inventing source
 * addresses or provision keys cannot grow it without limit; the least recently touched key is dropped).
 */
export class MemoryRateCounter implements RateCounter {
  private readonly buckets = new Map<string, Buckets>();

  constructor(private readonly maxKeys = DEFAULT_MAX_KEYS) {}

  /** Number of keys held (for tests of the bound). */
  get size(): number {
    return this.buckets.size;
  }

  private roll(key: string, windowMs: number, now: number): Buckets | undefined {
    const b = this.buckets.get(`${windowMs}:${key}`);
    if (!b) return undefined;
    const index = Math.floor(now / windowMs);
    if (b.index === index) return b;
    b.previous = b.index === index - 1 ? b.current : 0;
    b.current = 0;
    b.index = index;
    return b;
  }

  /** {@link RateCounter.hit}, synchronously. */
  hitSync(key: string, windowMs: number, now: number, n = 1): number {
    let b = this.roll(key, windowMs, now);
    const id = `${windowMs}:${key}`;
    if (b) {
      this.buckets.delete(id); // re-inserted below: Map order is then least-recently-touched first
    } else {
      b = { index: Math.floor(now / windowMs), previous: 0, current: 0 };
      if (this.buckets.size >= this.maxKeys) this.buckets.delete(this.buckets.keys().next().value!);
    }
    b.current += n;
    this.buckets.set(id, b);
    return slidingCount(b.previous, b.current, windowMs, now);
  }

  /** {@link RateCounter.peek}, synchronously. */
  peekSync(key: string, windowMs: number, now: number): number {
    const b = this.roll(key, windowMs, now);
    return b ? slidingCount(b.previous, b.current, windowMs, now) : 0;
  }

  async hit(key: string, windowMs: number, now: number, n = 1): Promise<number> {
    return this.hitSync(key, windowMs, now, n);
  }

  async peek(key: string, windowMs: number, now: number): Promise<number> {
    return this.peekSync(key, windowMs, now);
  }

  /** Forgets every count. */
  clear(): void {
    this.buckets.clear();
  }

  async close(): Promise<void> {
    this.buckets.clear();
  }
}
