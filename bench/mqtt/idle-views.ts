/**
 * Idle MQTT sessions, every way of reading them side by side (issue 17 item 5): for each server, three fresh processes
 * measured at the same time, one per view (IdleView in idle-measure.ts), each by its own `idle.ts --view V` child:
 * - operator: nothing injected (no GC, no probe, no malloc_trim), RSS and PSS after the quiet period: what `ps` shows;
 * - plain: ordinary full GCs only before each reading, no malloc_trim;
 * - probe: session 6's probe (V8's thorough collection through v8.queryObjects, full GCs), RSS before and after glibc
 *   malloc_trim(0) through gdb: a labelled reference, not an operator's figure.
 * Per session = (reading with all sessions − reading with the first half) / second half (9,500 of 19,000).
 *   node --import tsx bench/mqtt/idle-views.ts [--idle 19000] [--only fleetgate,aedes,mosquitto] [--quiet 150]
 * --quiet: seconds after each half's last CONNACK before reading. Nothing injected, fleetgate's RSS holds the storm's
 * grown young generation and garbage until V8's memory reducer runs on its own, 75-120 s after the storm here
 * (bench/mqtt/idle-operator-trace.ts); a 70 s quiet reads the operator's view before it, and that view then swings by
 * ±60 MB (bench/RESULTS.md, "what an operator sees"). About 6 minutes per server with 150 s (the servers run one after
 * another, the three views of each at once).
 */
import { execFileSync, spawn } from 'node:child_process';
import { parseArgs } from 'node:util';
import type { IdleFigures, IdleView } from './idle-measure.ts';

const { values } = parseArgs({ options: { idle: { type: 'string', default: '19000' }, only: { type: 'string', default: 'fleetgate,aedes,mosquitto' }, quiet: { type: 'string', default: '150' } } });
const views: IdleView[] = ['operator', 'plain', 'probe'];
execFileSync(process.execPath, ['scripts/build.mjs'], { stdio: 'inherit' }); // dist/ from the current sources, once

/** Every idle.ts child's process group: all stopped when one child fails, so no server outlives this run. */
const groups: number[] = [];

function stopAll(): void {
  for (const pgid of groups) {
    try {
      process.kill(-pgid, 'SIGTERM');
    } catch {
      /* the group has ended */
    }
  }
}

/** Runs one idle.ts child and returns its figures. */
function runView(name: string, view: IdleView): Promise<IdleFigures> {
  const args = ['--import', 'tsx', 'bench/mqtt/idle.ts', '--idle', values.idle!, '--only', name, '--quiet', values.quiet!, '--view', view, '--no-build', '--json'];
  // Its own process group, so stopping it stops the servers it started too.
  const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'inherit'], detached: true });
  groups.push(child.pid!);
  let out = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  return new Promise((resolve, reject) =>
    child.on('exit', (code) => {
      const last = out.trim().split('\n').at(-1) ?? '';
      if (code !== 0 || !last.startsWith('{"figures"')) reject(new Error(`${name} (${view}) exited ${code}`));
      else resolve((JSON.parse(last) as { figures: IdleFigures[] }).figures[0]);
    }),
  );
}

const kb = (b: number | undefined) => (b === undefined ? '—' : (b / 1024).toFixed(2));
const mb = (b: number) => Math.round(b / 1048576);
const rows: string[] = [];
for (const name of values.only!.split(',')) {
  const [operator, plain, probe] = await Promise.all(views.map((v) => runView(name, v))).catch((err: unknown) => {
    stopAll();
    throw err;
  });
  rows.push(
    `| ${name} | **${kb(operator.perSession)}** | ${kb(operator.pssPerSession)} | ${mb(operator.rssBefore)} → ${mb(operator.rssAfter)} | ${kb(plain.perSession)} | ${kb(plain.pssPerSession)} | ${kb(probe.untrimmedPerSession)} | ${kb(probe.perSession)} | ${kb(probe.heapPerSession)} |`,
  );
  process.stderr.write(`${rows.at(-1)}\n`);
}
console.log(
  `Idle MQTT sessions, every view, ${new Date().toISOString()}, node ${process.version}, ${values.idle} sessions, quiet ${values.quiet} s; per session = (reading at ${values.idle} − reading at the first half) / second half, KB\n\n` +
    '| server | operator: RSS, nothing injected | operator: PSS | operator: RSS A → B, MB | ordinary full GCs: RSS | ordinary full GCs: PSS | probe (v8.queryObjects + GCs): RSS | reference: probe + malloc_trim(0): RSS | probe: V8 heap used |\n|---|---|---|---|---|---|---|---|---|\n' +
    rows.join('\n'),
);
process.exit(0);
