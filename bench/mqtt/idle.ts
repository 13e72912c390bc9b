/**
 * Idle MQTT sessions (issue 17 item 5): server memory per idle session for fleetgate (compiled dist/ as `npm start`
 * runs it, with its node flags and without them), the bare-socket floor (a net.createServer answering CONNACK, paused /
 * reading), aedes and mosquitto, each in a fresh process, one after another, measured the same way
 * (bench/mqtt/idle-measure.ts). Builds dist/ first when stale.
 *   node --import tsx bench/mqtt/idle.ts [--idle 19000] [--only fleetgate,floor-reading] [--base-dist /abs/other/dist] [--quiet 66] [--no-trim]
 *     [--view probe|plain|operator] [--no-build] [--json]
 * --quiet: seconds of quiet after each half's last CONNACK before probing; --no-trim: RSS without malloc_trim (needs gdb).
 * --view: what is done to the server before each reading (IdleView in idle-measure.ts): `probe` (default: V8's thorough
 * collection, full GCs, malloc_trim), `plain` (ordinary full GCs only), `operator` (nothing: RSS/PSS as the OS shows
 * them). --json: one last line `{"figures":[...]}` (bench/mqtt/idle-views.ts reads it). All views side by side:
 * bench/mqtt/idle-views.ts.
 * One target takes about 2.5-3 minutes (two quiet waits of 66 s).
 * Targets: floor-paused, floor-reading, fleetgate, fleetgate-noflags, fleetgate-tsx (src/ through tsx), aedes,
 * mosquitto, and with --base-dist, fleetgate-base (another checkout's build, for a before/after in the same run).
 */
import { execFileSync, spawn } from 'node:child_process';
import { parseArgs } from 'node:util';
import { NODE_FLAGS } from '../../bin/node-flags.js';
import { freePort } from '../support/processes.ts';
import { gdbAvailable, IDLE_HEADER, idleRow, measureIdle, startProbedNode, stopServer, type IdleFigures, type IdleView, type ProbedServer } from './idle-measure.ts';
import { idleSessions } from './load.ts';

const { values } = parseArgs({ options: { idle: { type: 'string', default: '19000' }, only: { type: 'string' }, 'base-dist': { type: 'string' }, quiet: { type: 'string', default: '66' }, 'no-trim': { type: 'boolean', default: false }, view: { type: 'string', default: 'probe' }, 'no-build': { type: 'boolean', default: false }, json: { type: 'boolean', default: false } } });
const view = values.view as IdleView;
if (!['probe', 'plain', 'operator'].includes(view)) throw new Error(`--view: probe, plain or operator, not ${view}`);
const options = { quietMs: Number(values.quiet) * 1000, trim: values['no-trim'] ? false : gdbAvailable(), view };
if (!values['no-trim'] && !options.trim) process.stderr.write('gdb not found: RSS is read without malloc_trim\n');
const count = Number(values.idle);

async function startMosquitto(): Promise<ProbedServer> {
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

const targets: Record<string, () => Promise<ProbedServer>> = {
  'floor-paused': () => startProbedNode('floor-paused', [...NODE_FLAGS, '--import', 'tsx', 'bench/mqtt/floor-server.ts'], { FLOOR_MODE: 'bare' }),
  'floor-reading': () => startProbedNode('floor-reading', [...NODE_FLAGS, '--import', 'tsx', 'bench/mqtt/floor-server.ts'], { FLOOR_MODE: 'reading' }),
  fleetgate: () => startProbedNode('fleetgate', [...NODE_FLAGS, '--import', 'tsx', 'bench/mqtt/fleetgate-server.ts'], { BENCH_DEVICES: String(count), BENCH_FROM_DIST: '1' }),
  'fleetgate-noflags': () => startProbedNode('fleetgate-noflags', ['--import', 'tsx', 'bench/mqtt/fleetgate-server.ts'], { BENCH_DEVICES: String(count), BENCH_FROM_DIST: '1' }),
  'fleetgate-tsx': () => startProbedNode('fleetgate-tsx', [...NODE_FLAGS, '--import', 'tsx', 'bench/mqtt/fleetgate-server.ts'], { BENCH_DEVICES: String(count) }),
  'fleetgate-base': () => startProbedNode('fleetgate-base', [...NODE_FLAGS, '--import', 'tsx', 'bench/mqtt/fleetgate-server.ts'], { BENCH_DEVICES: String(count), BENCH_DIST_DIR: values['base-dist'] }),
  aedes: () => startProbedNode('aedes', ['--import', 'tsx', 'bench/mqtt/aedes-server.ts']),
  mosquitto: startMosquitto,
};
const names = values.only ? values.only.split(',') : ['floor-reading', 'fleetgate', ...(values['base-dist'] ? ['fleetgate-base'] : []), 'aedes', 'mosquitto'];
if (!values['no-build']) execFileSync(process.execPath, ['scripts/build.mjs'], { stdio: 'inherit' }); // dist/ from the current sources
const rows: string[] = [];
const all: IdleFigures[] = [];
for (const name of names) {
  const server = await targets[name]();
  try {
    const figures = await measureIdle(server, count, options);
    all.push(figures);
    rows.push(idleRow(figures));
    process.stderr.write(`${rows.at(-1)}\n`);
  } finally {
    await stopServer(server);
  }
}
console.log(`Idle MQTT sessions, ${new Date().toISOString()}, node ${process.version}, node flags for fleetgate and the floor: ${NODE_FLAGS.join(' ')}, quiet ${values.quiet} s, view ${view}, RSS ${view === 'probe' && options.trim ? 'after' : 'without'} malloc_trim\n\n${IDLE_HEADER}\n${rows.join('\n')}`);
if (values.json) console.log(JSON.stringify({ figures: all }));
process.exit(0);
