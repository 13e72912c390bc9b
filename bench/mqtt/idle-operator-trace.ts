/**
 * What an operator's `ps` shows of an idle fleetgate over time, nothing injected (no GC, no probe, no malloc_trim): a
 * fleetgate server (dist/, `npm start`'s node flags, SQLite, `--idle` seeded devices), RSS and PSS every `--every` s
 * from before the sessions connect until `--for` s after the last CONNACK.
 *   node --import tsx bench/mqtt/idle-operator-trace.ts [--idle 19000] [--for 300] [--every 10]
 * Run `node scripts/build.mjs` first (dist/ from the current sources).
 */
import { parseArgs } from 'node:util';
import { NODE_FLAGS } from '../../bin/node-flags.js';
import { pssBytes, rssBytes, startProbedNode, stopServer } from './idle-measure.ts';
import { idleSessions } from './load.ts';

const { values } = parseArgs({ options: { idle: { type: 'string', default: '19000' }, for: { type: 'string', default: '300' }, every: { type: 'string', default: '10' } } });
const count = Number(values.idle);
const server = await startProbedNode('fleetgate', [...NODE_FLAGS, '--import', 'tsx', 'bench/mqtt/fleetgate-server.ts'], { BENCH_DEVICES: String(count), BENCH_FROM_DIST: '1' });
const pid = server.child.pid!;
const mb = (b: number) => (b / 1048576).toFixed(1);
const line = (label: string) => console.log(`${label}: RSS ${mb(rssBytes(pid))} MB, PSS ${mb(pssBytes(pid))} MB`);
await new Promise((r) => setTimeout(r, 5000));
line('started, no session');
const sessions = await idleSessions(server.port, Array.from({ length: count }, (_, i) => `bench-${i}`));
const connected = Date.now();
line(`${sessions.count} sessions connected`);
for (let t = Number(values.every); t <= Number(values.for); t += Number(values.every)) {
  await new Promise((r) => setTimeout(r, connected + t * 1000 - Date.now()));
  line(`${t} s after the last CONNACK, ${sessions.open()} open`);
}
await sessions.close();
await stopServer(server);
process.exit(0);
