/**
 * CPU cost of the live-update path alone, in one process (no sockets): 1,000 watched devices, commits of 8 messages x
 * 3 points per device go through LiveUpdates (memory bus), one LATEST_TELEMETRY subscription per device, each reply
 * serialised as the session would send it. Prints CPU ns per point and us per message.
 * WATCHED=k subscribes only the first k devices (0: nobody watches anything; 1: the others pay the lookup only).
 *   N=100 [WATCHED=1000] [INTERVAL=0] node --import tsx bench/ws/fanout-cpu.ts   (INTERVAL: wsUpdateIntervalMs)
 */
import { MemoryBus } from '../../src/bus/memory-bus.ts';
import { LiveInterest } from '../../src/core/live-interest.ts';
import { LiveUpdates } from '../../src/core/live-updates.ts';
import { LiveSubscription } from '../../src/admin/ws/subscription.ts';
import { ReplyData } from '../../src/admin/ws/render.ts';
const quiet = { info() {}, warn() {}, error() {}, debug() {} };
const bus = new MemoryBus();
const interest = new LiveInterest(bus, quiet);
await interest.start();
const live = new LiveUpdates(bus, interest, quiet);
let bytes = 0;
const devices = Array.from({ length: 1000 }, (_, i) => `dev-${i}`);
const watched = Number(process.env.WATCHED ?? devices.length);
for (const d of devices.slice(0, watched)) {
  const sub = new LiveSubscription(1, { kind: 'TIMESERIES', target: { deviceId: d, keys: undefined }, latestOnly: true }, (r) => { bytes += typeof r === 'string' || Buffer.isBuffer(r) ? r.length : JSON.stringify(r).length; }, { overflow() {}, maxHeld: 1000, updateIntervalMs: Number(process.env.INTERVAL ?? 0) });
  await sub.start(live, async () => new ReplyData());
}
const batch = { telemetry: [] as any[], attributes: [] };
let ts = Date.now();
for (let m = 0; m < Number(process.env.MSGS ?? 8); m++) for (const d of devices) { ts++; batch.telemetry.push({ deviceId: d, ts, key: 'temperature', value: { type: 'DOUBLE', value: 21.5 } }, { deviceId: d, ts, key: 'humidity', value: { type: 'LONG', value: 40 } }, { deviceId: d, ts, key: 'ok', value: { type: 'BOOLEAN', value: true } }); }
const N = Number(process.env.N ?? 30);
const c0 = process.cpuUsage();
const t0 = process.hrtime.bigint();
for (let i = 0; i < N; i++) { live.committed(batch); await new Promise((r) => setImmediate(r)); }
const wall = Number(process.hrtime.bigint() - t0);
const c = process.cpuUsage(c0);
const ns = (c.user + c.system) * 1000;
console.log(`${watched} of ${devices.length} devices watched; wall ${(wall / 1e6).toFixed(0)} ms, cpu ${(ns / 1e6).toFixed(0)} ms`);
console.log(`${(ns / (N * batch.telemetry.length)).toFixed(0)} ns per point, ${(ns / (N * batch.telemetry.length / 3) / 1000).toFixed(2)} us per message, ${bytes} bytes`);
process.exit(0);
