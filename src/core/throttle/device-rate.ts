/**
 * Per-device message rate (issue 7 §2), ThingsBoard-style `capacity:seconds` rules (spec §10
 * `transportDeviceMsgRateLimit`, e.g. "20:1,600:60"): one token bucket per rule and device, refilled continuously.
 * Kept on the node that holds the device's session (a device talks to one node at a time), so it costs no I/O.
 */
import type { RateRule } from './limits.ts';

interface Bucket {
  tokens: number;
  at: number;
}

/** Bound on the devices tracked at a time (least recently seen dropped first). */
const MAX_DEVICES = 500_000;

/** Token buckets per device. With no rules, every message passes. */
export class DeviceRateLimiter {
  private readonly buckets = new Map<string, Bucket[]>();

  constructor(
    private readonly rules: readonly RateRule[],
    private readonly now: () => number = Date.now,
  ) {}

  get enabled(): boolean {
    return this.rules.length > 0;
  }

  /** Takes one message from `deviceId`'s buckets: 0 when it may pass, else ms until it could. */
  take(deviceId: string): number {
    if (this.rules.length === 0) return 0;
    const now = this.now();
    let buckets = this.buckets.get(deviceId);
    if (buckets) this.buckets.delete(deviceId); // re-inserted: Map order is least recently seen first
    else {
      if (this.buckets.size >= MAX_DEVICES) this.buckets.delete(this.buckets.keys().next().value!);
      buckets = this.rules.map((r) => ({ tokens: r.capacity, at: now }));
    }
    this.buckets.set(deviceId, buckets);
    let wait = 0;
    this.rules.forEach((rule, i) => {
      const b = buckets![i]!;
      b.tokens = Math.min(rule.capacity, b.tokens + ((now - b.at) * rule.capacity) / rule.windowMs);
      b.at = now;
      if (b.tokens < 1) wait = Math.max(wait, Math.ceil(((1 - b.tokens) * rule.windowMs) / rule.capacity));
    });
    if (wait > 0) return wait;
    for (const b of buckets) b.tokens -= 1;
    return 0;
  }
}
