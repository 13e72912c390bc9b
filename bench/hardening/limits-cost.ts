/**
 * Cost of the limits on the hot path (issue 7 "Figures": at most 5% on the MQTT telemetry benchmark).
 *   node --import tsx bench/hardening/limits-cost.ts [--devices 100] [--messages 5000000] [--mqtt-rate 571609]
 * With limits on, each telemetry message takes one DeviceRateLimiter.take (per-device token buckets) and each
 * CONNECT one FailureGuard.blockedMs; nothing else is added per message. This measures both per call and states them
 * as a share of the per-message time of the MQTT telemetry benchmark (bench/RESULTS.md "MQTT", msg/s on 2 cores).
 */
import { parseArgs } from 'node:util';
import { DeviceRateLimiter, MemoryRateCounter, parseRateLimit, Throttle } from '../../src/core/throttle/index.ts';

const { values } = parseArgs({ options: { devices: { type: 'string', default: '100' }, messages: { type: 'string', default: '5000000' }, 'mqtt-rate': { type: 'string', default: '571609' } } });
const devices = Array.from({ length: Number(values.devices) }, (_, i) => `device-${i}`);
const messages = Number(values.messages);
const mqttRate = Number(values['mqtt-rate']);

function nsPerCall(fn: (i: number) => unknown, n: number): number {
  for (let i = 0; i < 100_000; i++) fn(i); // warm up
  const start = process.hrtime.bigint();
  for (let i = 0; i < n; i++) fn(i);
  return Number(process.hrtime.bigint() - start) / n;
}

// ThingsBoard-style rule pair, generous enough that every message passes (the common case).
const limiter = new DeviceRateLimiter(parseRateLimit('1000000:1,100000000:60'));
const take = nsPerCall((i) => limiter.take(devices[i % devices.length]!), messages);
const throttle = new Throttle({ counter: new MemoryRateCounter() });
throttle.exempt.clear();
const check = nsPerCall((i) => throttle.authBySource.blockedMs(`10.0.${(i >> 8) & 255}.${i & 255}`), messages);

// The benchmark's server spends at most 2 cores / rate per message (it shares the cores with the load generator).
const budgetNs = (2 * 1e9) / mqttRate;
console.log(`| Per telemetry message: DeviceRateLimiter.take ("1000000:1,100000000:60", ${devices.length} devices) | ${take.toFixed(0)} ns | ${((100 * take) / budgetNs).toFixed(2)}% of ${budgetNs.toFixed(0)} ns/msg |`);
console.log(`| Per CONNECT/provisioning request: FailureGuard.blockedMs | ${check.toFixed(0)} ns | ${((100 * check) / budgetNs).toFixed(3)}% of one message |`);
