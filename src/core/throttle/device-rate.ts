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

interface DeviceBuckets {
  buckets: Bucket[];
  /** When the entry last moved to the end of the map (the most recently seen end). */
  touched: number;
}

/** Bound on the devices tracked at a time (least recently seen dropped first). */
const MAX_DEVICES = 500_000;
/** An entry moves to the most recently seen end at most this often: a Map delete and set per message cost more than the buckets. */
const TOUCH_EVERY_MS = 1000;

/** Token buckets per device. With no rules, every message passes. */
export class DeviceRateLimiter {
  private readonly devices = new Map<string, DeviceBuckets>();

  constructor(
    private readonly rules: readonly RateRule[],
    private readonly now: () => number = Date.now,
    private readonly maxDevices = MAX_DEVICES,
  ) {}

  get enabled(): boolean {
    return this.rules.length > 0;
  }

  /** Takes one message from `deviceId`'s buckets: 0 when it may pass, else ms until it could. */
  take(deviceId: string): number {
    const rules = this.rules;
    if (rules.length === 0) return 0;
    const now = this.now();
    let entry = this.devices.get(deviceId);
    if (entry === undefined) {
      if (this.devices.size >= this.maxDevices) this.devices.delete(this.devices.keys().next().value!);
      entry = { buckets: rules.map((r) => ({ tokens: r.capacity, at: now })), touched: now };
      this.devices.set(deviceId, entry);
    } else if (now - entry.touched >= TOUCH_EVERY_MS) {
      this.devices.delete(deviceId); // re-inserted: Map order is least recently seen first (to the second)
      this.devices.set(deviceId, entry);
      entry.touched = now;
    }
    const buckets = entry.buckets;
    let wait = 0;
    for (let i = 0; i < rules.length; i++) {
      const rule = rules[i];
      const b = buckets[i];
      b.tokens = Math.min(rule.capacity, b.tokens + ((now - b.at) * rule.capacity) / rule.windowMs);
      b.at = now;
      if (b.tokens < 1) wait = Math.max(wait, Math.ceil(((1 - b.tokens) * rule.windowMs) / rule.capacity));
    }
    if (wait > 0) return wait;
    for (const b of buckets) b.tokens -= 1;
    return 0;
  }
}
