/**
 * MQTT benchmark (issue 3 "Speed"): fleetgate vs Debian mosquitto and aedes (as shipped, and with fleetgate's node flags), alternating rounds.
 *   node --import tsx bench/mqtt/run.ts [--rounds 3] [--duration 10000] [--idle 19000]
 * Prints a markdown section for bench/RESULTS.md.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { createInterface } from 'node:readline';
import { parseArgs } from 'node:util';
import { NODE_FLAGS } from '../../bin/node-flags.js';
import { freePort } from '../support/processes.ts';
import { idleRow, measureIdle, startProbedNode, stopServer, type ProbedServer } from './idle-measure.ts';
import { idleSessions, provisionRate, telemetryRate } from './load.ts';

const { values } = parseArgs({ options: { rounds: { type: 'string', default: '3' }, duration: { type: 'string', default: '10000' }, idle: { type: 'string', default: '19000' } } });
const rounds = Number(values.rounds);
const duration = Number(values.duration);
const idleCount = Number(values.idle);

interface Target {
  name: string;
  port: number;
  child: ChildProcess;
}

async function startFleetgate(devices: number): Promise<Target> {
  const child = spawn(process.execPath, [...NODE_FLAGS, '--import', 'tsx', 'bench/mqtt/fleetgate-server.ts'], { env: { ...process.env, BENCH_DEVICES: String(devices) }, stdio: ['ignore', 'pipe', 'inherit'] });
  const [line] = (await once(createInterface({ input: child.stdout! }), 'line')) as [string];
  return { name: 'fleetgate', port: JSON.parse(line).mqttPort, child };
}

/** aedes as shipped (plain `node`), or with fleetgate's node flags (`tuned`) to show what they are worth to it. */
async function startAedes(tuned = false): Promise<Target> {
  const child = spawn(process.execPath, [...(tuned ? NODE_FLAGS : []), '--import', 'tsx', 'bench/mqtt/aedes-server.ts'], { stdio: ['ignore', 'pipe', 'inherit'] });
  const [line] = (await once(createInterface({ input: child.stdout! }), 'line')) as [string];
  return { name: tuned ? 'aedesTuned' : 'aedes', port: JSON.parse(line).mqttPort, child };
}

async function startMosquitto(): Promise<Target> {
  const port = await freePort();
  const child = spawn('/usr/sbin/mosquitto', ['-p', String(port)], { stdio: ['ignore', 'ignore', 'ignore'] });
  for (let i = 0; i < 100; i++) {
    await new Promise((r) => setTimeout(r, 50));
    try {
      await idleSessions(port, ['probe']).then((s) => s.close());
      break;
    } catch {
      /* not up yet */
    }
  }
  return { name: 'mosquitto', port, child };
}

async function stop(target: Target): Promise<void> {
  target.child.kill('SIGTERM');
  await once(target.child, 'exit');
}

const tokens = (n: number) => Array.from({ length: n }, (_, i) => `bench-${i}`);
const lines: string[] = [];
const log = (line: string) => {
  lines.push(line);
  process.stderr.write(`${line}\n`);
};

// 1. QoS 1 telemetry, 100 devices, alternating rounds.
const telemetry: Record<string, number[]> = { fleetgate: [], mosquitto: [], aedes: [], aedesTuned: [] };
const cpuPerMsg: Record<string, number[]> = { fleetgate: [], mosquitto: [], aedes: [], aedesTuned: [] };
for (let r = 0; r < rounds; r++) {
  for (const start of [() => startFleetgate(100), startMosquitto, () => startAedes(), () => startAedes(true)]) {
    const target = await start();
    const rate = await telemetryRate(target.port, tokens(100), duration, 64, target.child.pid);
    telemetry[target.name].push(+rate);
    cpuPerMsg[target.name].push(rate.cpuUsPerMsg!);
    log(`round ${r + 1} ${target.name}: ${Math.round(rate)} msg/s, server CPU ${rate.cpuUsPerMsg!.toFixed(2)} us/msg`);
    await stop(target);
  }
}

// 2. Idle sessions: settled server RSS growth per session, measured as bench/mqtt/idle.ts does (full GCs, settling,
// the marginal cost of the second half of the sessions). fleetgate runs its compiled dist/, as `npm start` does.
const idle: Record<string, number> = {};
execFileSync(process.execPath, ['scripts/build.mjs'], { stdio: 'inherit' });
for (const start of [
  () => startProbedNode('fleetgate', [...NODE_FLAGS, '--import', 'tsx', 'bench/mqtt/fleetgate-server.ts'], { BENCH_DEVICES: String(idleCount), BENCH_FROM_DIST: '1' }),
  async () => ({ ...(await startMosquitto()) }),
  () => startProbedNode('aedes', ['--import', 'tsx', 'bench/mqtt/aedes-server.ts']),
]) {
  const target: ProbedServer = await start();
  const figures = await measureIdle(target, idleCount);
  idle[target.name] = figures.perSession;
  log(`${target.name}: ${idleRow(figures)}`);
  await stopServer(target);
}

// 3. Provisioning round trips (fleetgate only: a broker has no provisioning).
const fleetgate = await startFleetgate(0);
const provision = await provisionRate(fleetgate.port, 64, duration);
log(`fleetgate provisioning: ${Math.round(provision.rate)} devices/s (${provision.failures} failures)`);
await stop(fleetgate);

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const fg = median(telemetry.fleetgate);
const mq = median(telemetry.mosquitto);
const ae = median(telemetry.aedes);
const aeTuned = median(telemetry.aedesTuned);
console.log(`| Measure | fleetgate | mosquitto 2.0 | aedes 1 |
|---|---|---|---|
| QoS 1 telemetry, 100 devices, msg/s (median of ${rounds}) | ${Math.round(fg)} | ${Math.round(mq)} (fleetgate/mosquitto = ${(fg / mq).toFixed(2)}) | ${Math.round(ae)} (fleetgate/aedes = ${(fg / ae).toFixed(2)}) |
| Idle sessions: server memory per session (settled RSS, marginal cost of the second ${Math.floor(idleCount / 2)} of ${idleCount}; bench/mqtt/idle.ts) | ${(idle.fleetgate / 1024).toFixed(1)} KB | ${(idle.mosquitto / 1024).toFixed(1)} KB | ${(idle.aedes / 1024).toFixed(1)} KB |
| Server CPU per message, us (median) | ${median(cpuPerMsg.fleetgate).toFixed(2)} | ${median(cpuPerMsg.mosquitto).toFixed(2)} | ${median(cpuPerMsg.aedes).toFixed(2)} |
| Provisioning over MQTT (connect, request, response, disconnect), devices/s | ${Math.round(provision.rate)} | n/a | n/a |

aedes with fleetgate's node flags (${NODE_FLAGS.join(' ')}): ${Math.round(aeTuned)} msg/s (fleetgate/aedes = ${(fg / aeTuned).toFixed(2)}), ${median(cpuPerMsg.aedesTuned).toFixed(2)} us of CPU per message.

Rounds: ${lines.join('; ')}`);
process.exit(0);
