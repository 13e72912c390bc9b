/**
 * Does the probe's own full GC leave free malloc memory behind? A fleetgate server (dist/, `npm start`'s node flags)
 * with `--idle` sessions, quiet for `--quiet` s, then four rounds of: the probe (bench/support/memory-probe.ts; rounds
 * 1 and 3 ordinary full GCs only, 2 and 4 V8's most thorough collection first, as idle.ts probes), RSS, glibc
 * malloc_trim(0) through gdb, RSS.
 *   node --import tsx bench/mqtt/idle-regrow.ts [--idle 19000] [--quiet 70]
 */
import { parseArgs } from 'node:util';
import { NODE_FLAGS } from '../../bin/node-flags.js';
import { mallocTrim, rssBytes, startProbedNode, stopServer } from './idle-measure.ts';
import { idleSessions } from './load.ts';

const { values } = parseArgs({ options: { idle: { type: 'string', default: '19000' }, quiet: { type: 'string', default: '70' } } });
const count = Number(values.idle);
const server = await startProbedNode('fleetgate', [...NODE_FLAGS, '--import', 'tsx', 'bench/mqtt/fleetgate-server.ts'], { BENCH_DEVICES: String(count), BENCH_FROM_DIST: '1' });
const pid = server.child.pid!;
const mb = (b: number) => (b / 1048576).toFixed(1);
const sessions = await idleSessions(server.port, Array.from({ length: count }, (_, i) => `bench-${i}`));
await new Promise((r) => setTimeout(r, Number(values.quiet) * 1000));
for (let round = 1; round <= 4; round++) {
  const command = round % 2 === 1 ? 'measure-plain' : 'measure';
  const m = await server.probe!(command);
  const probed = rssBytes(pid);
  mallocTrim(pid);
  await new Promise((r) => setTimeout(r, 200));
  console.log(`round ${round}, ${command === 'measure' ? 'thorough collection (v8.queryObjects) + full GCs' : 'full GCs only'}: after the probe's GCs RSS ${mb(probed)} MB (heap used ${mb(m.heapUsed)}, total ${mb(m.heapTotal)}), after malloc_trim(0) ${mb(rssBytes(pid))} MB`);
  await new Promise((r) => setTimeout(r, 2000));
}
await sessions.close();
await stopServer(server);
process.exit(0);
