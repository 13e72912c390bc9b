/** Brute-force protection and rate limits (issue 7): counters, guards, and the decorators core installs. */
export { MemoryRateCounter, slidingCount, type RateCounter } from './counter.ts';
export { FailureGuard, type BlockListener } from './failure-guard.ts';
export { DEFAULT_THROTTLE_LIMITS, parseRateLimit, RateLimitSyntaxError, type RateRule, type ThrottleLimits } from './limits.ts';
export { DEFAULT_EXEMPT_ADDRESSES, retryAfterSeconds, Throttle, type ThrottleOptions } from './throttle.ts';
export { authRateLimited, COUNTED_PROVISION_REASONS, rateLimitedResult, rateLimitedTelemetry, ThrottledDeviceAuth, throttledProvisioning, throttledUsers } from './guarded.ts';
export { DeviceRateLimiter } from './device-rate.ts';
