/**
 * Live V8 heap per idle MQTT session (issue 17 item 5), without the collectable heap the memory probe's GCs leave.
 * The probe's full GCs (bench/support/memory-probe.ts) leave 5-40 MB of heap that the GC of a heap snapshot frees,
 * varying from run to run (most likely V8's compilation cache: Node 20's `gc({ flavor: 'last-resort' })` does not clear
 * it, a snapshot's GC does), so `V8 heap used per session` in bench/mqtt/idle.ts swings by several KB per session. Here
 * each of A (first half of the sessions connected) and B (all) is read twice: after the probe's GCs, and again after
 * a heap snapshot's GC; the second reading is what the sessions hold. Alternates targets in one run for an A/B.
 *   node --import tsx bench/mqtt/idle-live.ts [--idle 19000] [--targets fleetgate,base,fleetgate,base] [--base-dist /abs/dist]
 * The snapshot goes to the system's temp directory and is removed afterwards. Builds dist/ first when stale.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { NODE_FLAGS } from '../../bin/node-flags.js';
import { rssBytes, startProbedNode, stopServer, type ProbedServer } from './idle-measure.ts';
import { idleSessions } from './load.ts';

const { values } = parseArgs({ options: { idle: { type: 'string', default: '19000' }, targets: { type: 'string', default: 'fleetgate,base' }, 'base-dist': { type: 'string' } } });
const count = Number(values.idle);
const half = Math.floor(count / 2);
execFileSync(process.execPath, ['scripts/build.mjs'], { stdio: 'inherit' });
const dir = mkdtempSync(join(tmpdir(), 'fleetgate-live-'));

/** Heap used after the probe's GCs, then after a heap snapshot's GC; RSS after both. */
async function read(server: ProbedServer): Promise<{ probed: number; live: number; rss: number }> {
  for (let i = 0; i < 2; i++) {
    await server.probe!();
    await new Promise((r) => setTimeout(r, 1500));
  }
  const probed = (await server.probe!()).heapUsed;
  server.child.stdin!.write(`snapshot ${join(dir, 'live.heapsnapshot')}\n`);
  await server.probe!(); // answered after the snapshot is written
  rmSync(join(dir, 'live.heapsnapshot'), { force: true });
  const live = (await server.probe!()).heapUsed;
  return { probed, live, rss: rssBytes(server.child.pid!) };
}

try {
  console.log(`| server | V8 heap used per session after the probe's GCs, KB | after a snapshot's GC (live), KB | heap the probe's GCs left at A / B, MB |\n|---|---|---|---|`);
  for (const target of values.targets!.split(',')) {
    if (target === 'base' && !values['base-dist']) throw new Error('--base-dist is needed for target base');
    const env = target === 'base' ? { BENCH_DEVICES: String(count), BENCH_DIST_DIR: values['base-dist'] } : { BENCH_DEVICES: String(count), BENCH_FROM_DIST: '1' };
    const server = await startProbedNode(target, [...NODE_FLAGS, '--import', 'tsx', 'bench/mqtt/fleetgate-server.ts'], env);
    try {
      const tokens = Array.from({ length: count }, (_, i) => `bench-${i}`);
      const first = await idleSessions(server.port, tokens.slice(0, half));
      const a = await read(server);
      const second = await idleSessions(server.port, tokens.slice(half));
      const b = await read(server);
      const kb = (bytes: number) => (bytes / second.count / 1024).toFixed(2);
      const mb = (bytes: number) => Math.round(bytes / 1048576);
      console.log(`| ${target} | ${kb(b.probed - a.probed)} | **${kb(b.live - a.live)}** | ${mb(a.probed - a.live)} / ${mb(b.probed - b.live)} |`);
      await Promise.all([first.close(), second.close()]);
    } finally {
      await stopServer(server);
    }
  }
} finally {
  rmSync(dir, { recursive: true, force: true });
}
process.exit(0);
