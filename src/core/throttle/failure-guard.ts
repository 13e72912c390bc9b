/**
 * Counts failures per key (a source address, a provision key) over sliding windows and says, without any I/O, whether
 * a key is blocked. Failures are counted in a shared {@link RateCounter} (memory or Redis); once a rule's count reaches
 * its capacity the key is blocked on this node for that rule's window. Another node learns of the block at the next
 * failure it sees for the key, since the shared count is already at the limit: at most one extra attempt per node.
 */
import type { RateCounter } from './counter.ts';
import type { RateRule } from './limits.ts';

/** What a guard reports when a key becomes blocked (for logs and metrics). */
export type BlockListener = (guard: string, key: string, blockedMs: number) => void;

/** Bound on the keys one guard keeps blocked at a time. */
const MAX_BLOCKED = 100_000;

/** One kind of failure (e.g. provisioning failures per source) and its rules. */
export class FailureGuard {
  private readonly blocked = new Map<string, number>();

  constructor(
    /** Name used in counter keys and reports, e.g. `provision-source`. */
    readonly name: string,
    private readonly rules: readonly RateRule[],
    private readonly counter: RateCounter,
    private readonly now: () => number,
    private readonly onBlock: BlockListener = () => {},
    private readonly onError: (err: unknown) => void = () => {},
  ) {}

  /** True when the guard has rules (an empty limit string disables it). */
  get enabled(): boolean {
    return this.rules.length > 0;
  }

  /** Milliseconds `key` stays blocked on this node; 0 when it is not. Synchronous: no round trip. */
  blockedMs(key: string | undefined): number {
    if (key === undefined || this.blocked.size === 0) return 0;
    const until = this.blocked.get(key);
    if (until === undefined) return 0;
    const left = until - this.now();
    if (left > 0) return left;
    this.blocked.delete(key);
    return 0;
  }

  /**
   * Records one failure of `key`; blocks it when a rule's sliding count reaches its capacity. A counter failure
   * (Redis down) is reported and ignored: throttling fails open rather than refusing every device.
   */
  async failed(key: string | undefined): Promise<void> {
    if (key === undefined || this.rules.length === 0) return;
    const now = this.now();
    let blockFor = 0;
    try {
      for (const rule of this.rules) {
        const count = await this.counter.hit(`${this.name}:${key}`, rule.windowMs, now);
        // The sliding count is an estimate that weights the previous window's failures by their overlap: a burst that
        // straddles a window boundary reads a fraction under its real size (9.98 for 10). A guard rounds up.
        if (Math.ceil(count) >= rule.capacity) blockFor = Math.max(blockFor, rule.windowMs);
      }
    } catch (err) {
      this.onError(err);
      return;
    }
    if (blockFor === 0) return;
    const until = now + blockFor;
    if ((this.blocked.get(key) ?? 0) >= until) return;
    if (!this.blocked.has(key) && this.blocked.size >= MAX_BLOCKED) this.sweep(now);
    this.blocked.set(key, until);
    this.onBlock(this.name, key, blockFor);
  }

  /** Drops expired blocks, and the oldest ones if the map is still full. */
  private sweep(now: number): void {
    for (const [key, until] of this.blocked) if (until <= now) this.blocked.delete(key);
    while (this.blocked.size >= MAX_BLOCKED) this.blocked.delete(this.blocked.keys().next().value!);
  }

  /** Lifts every block on this node (tests, and an operator's reset). */
  clear(): void {
    this.blocked.clear();
  }
}
