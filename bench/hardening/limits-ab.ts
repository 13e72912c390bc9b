/**
 * A/B run of the MQTT telemetry benchmark with the limits off (defaults) and on (a per-device message rate and a
 * per-source connect rate generous enough that nothing is refused), alternating rounds in one run.
 *   node --import tsx bench/hardening/limits-ab.ts [--rounds 3] [--duration 8000]
 */
import { spawn } from 'node:child_process';
import { NODE_FLAGS } from '../../bin/node-flags.js';
import { once } from 'node:events';
import { createInterface } from 'node:readline';
import { parseArgs } from 'node:util';
import { telemetryRate } from '../mqtt/load.ts';

const { values } = parseArgs({ options: { rounds: { type: 'string', default: '3' }, duration: { type: 'string', default: '8000' } } });
const LIMITS_ON = { FLEETGATE_DEVICE_MESSAGE_RATE: '1000000:1,100000000:60', FLEETGATE_MQTT_CONNECT_RATE_PER_SOURCE: '100000:1' };

async function round(env: Record<string, string>): Promise<number> {
  const child = spawn(process.execPath, [...NODE_FLAGS, '--import', 'tsx', 'bench/mqtt/fleetgate-server.ts'], { env: { ...process.env, BENCH_DEVICES: '100', ...env }, stdio: ['ignore', 'pipe', 'inherit'] });
  const [line] = (await once(createInterface({ input: child.stdout! }), 'line')) as [string];
  const rate = await telemetryRate(JSON.parse(line).mqttPort, Array.from({ length: 100 }, (_, i) => `bench-${i}`), Number(values.duration));
  child.kill('SIGTERM');
  await once(child, 'exit');
  return rate;
}

const off: number[] = [];
const on: number[] = [];
for (let r = 0; r < Number(values.rounds); r++) {
  off.push(await round({}));
  on.push(await round(LIMITS_ON));
  console.log(`round ${r + 1}: limits off ${Math.round(off[r])} msg/s, limits on ${Math.round(on[r])} msg/s`);
}
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const [a, b] = [median(off), median(on)];
console.log(`median: off ${Math.round(a)} msg/s, on ${Math.round(b)} msg/s, cost ${(((a - b) / a) * 100).toFixed(1)}%`);
process.exit(0);
