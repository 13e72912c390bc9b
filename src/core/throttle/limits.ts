/**
 * Rate limits written as ThingsBoard writes them (spec §10 "Transport rate limits"): `capacity:seconds` pairs,
 * comma-separated, e.g. `"10:60"` or `"20:1,600:60"`; every pair must hold. Empty or `"0"` = no limit.
 */

/** One `capacity:seconds` pair: at most `capacity` events within any `windowMs`. */
export interface RateRule {
  capacity: number;
  windowMs: number;
}

/** A limit string that is not `capacity:seconds[,capacity:seconds...]`. */
export class RateLimitSyntaxError extends Error {
  constructor(text: string) {
    super(`rate limit must be "capacity:seconds" pairs separated by commas (e.g. "10:60" or "20:1,600:60"), got ${JSON.stringify(text)}`);
    this.name = 'RateLimitSyntaxError';
  }
}

/** Parses a limit string; `""` or `"0"` gives no rules (unlimited). Throws RateLimitSyntaxError. */
export function parseRateLimit(text: string): RateRule[] {
  const trimmed = text.trim();
  if (trimmed === '' || trimmed === '0') return [];
  return trimmed.split(',').map((part) => {
    const match = /^\s*(\d{1,9})\s*:\s*(\d{1,7})\s*$/.exec(part);
    if (!match) throw new RateLimitSyntaxError(text);
    const capacity = Number(match[1]);
    const seconds = Number(match[2]);
    if (capacity < 1 || seconds < 1) throw new RateLimitSyntaxError(text);
    return { capacity, windowMs: seconds * 1000 };
  });
}

/**
 * The brute-force limits (DESIGN 6, issue 7 §1). Each is a limit string; past it, requests from that source (or for
 * that provision key) are answered RATE_LIMITED without touching the database for the rule's window.
 */
export interface ThrottleLimits {
  /** Failed provisioning attempts per source address (ThingsBoard's IP blocking: 10 failures, 60 s). */
  provisionFailuresPerSource: string;
  /** Failed provisioning attempts per provision key, from all sources together (a distributed guess of one secret). */
  provisionFailuresPerKey: string;
  /** Failed device authentications (bad token, MQTT credentials, certificate) per source address. */
  authFailuresPerSource: string;
  /** Telemetry and attribute messages per device (ThingsBoard `transportDeviceMsgRateLimit`); empty = unlimited. */
  deviceMessageRate: string;
}

/** Defaults: generous enough for a factory line behind one NAT address, tight enough to make guessing hopeless. */
export const DEFAULT_THROTTLE_LIMITS: ThrottleLimits = {
  provisionFailuresPerSource: '10:60',
  provisionFailuresPerKey: '100:60',
  authFailuresPerSource: '20:60',
  deviceMessageRate: '', // ThingsBoard's default: no limit
};
