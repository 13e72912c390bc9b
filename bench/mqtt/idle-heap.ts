/**
 * Where an idle MQTT session's bytes go (issue 17 item 5): heap snapshots of a server holding `n` and then `2n` idle
 * sessions, each after full GCs and settling, grouped by constructor; prints the growth per session. The synthetic
 * `Node / TCPSocketWrap` row is the native socket wrap Node reports in the snapshot (not in the V8 heap figures).
 *   node --import tsx bench/mqtt/idle-heap.ts [--sessions 5000] [--target fleetgate|floor|base] [--base-dist /abs/dist]
 * Snapshots go to the system's temp directory and are removed afterwards.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { NODE_FLAGS } from '../../bin/node-flags.js';
import { diffLines } from '../support/heap-diff.ts';
import { startProbedNode, stopServer } from './idle-measure.ts';
import { idleSessions } from './load.ts';

const { values } = parseArgs({ options: { sessions: { type: 'string', default: '5000' }, target: { type: 'string', default: 'fleetgate' }, 'base-dist': { type: 'string' }, rows: { type: 'string', default: '30' } } });
const n = Number(values.sessions);
const script = values.target === 'floor' ? 'bench/mqtt/floor-server.ts' : 'bench/mqtt/fleetgate-server.ts';
if (values.target === 'fleetgate') execFileSync(process.execPath, ['scripts/build.mjs'], { stdio: 'inherit' });
const env = { BENCH_DEVICES: String(2 * n), FLOOR_MODE: 'reading', ...(values.target === 'base' ? { BENCH_DIST_DIR: values['base-dist'] } : { BENCH_FROM_DIST: '1' }) };
const server = await startProbedNode(values.target!, [...NODE_FLAGS, '--import', 'tsx', script], env);
const dir = mkdtempSync(join(tmpdir(), 'fleetgate-heap-'));
const tokens = Array.from({ length: 2 * n }, (_, i) => `bench-${i}`);
const snapshot = async (name: string) => {
  for (let i = 0; i < 3; i++) {
    await server.probe!();
    await new Promise((r) => setTimeout(r, 2000));
  }
  server.child.stdin!.write(`snapshot ${join(dir, name)}\n`);
  await server.probe!(); // answered after the snapshot is written
};
try {
  const first = await idleSessions(server.port, tokens.slice(0, n));
  await snapshot('a.heapsnapshot');
  const second = await idleSessions(server.port, tokens.slice(n));
  await snapshot('b.heapsnapshot');
  await Promise.all([first.close(), second.close()]);
  console.log(`${values.target}: heap growth per idle session, ${n} → ${2 * n} sessions (node ${process.version}, flags ${NODE_FLAGS.join(' ')})`);
  for (const line of diffLines(join(dir, 'a.heapsnapshot'), join(dir, 'b.heapsnapshot'), n, Number(values.rows))) console.log(line);
} finally {
  await stopServer(server);
  rmSync(dir, { recursive: true, force: true });
}
process.exit(0);
