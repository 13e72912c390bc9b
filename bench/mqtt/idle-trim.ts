/**
 * What the native memory releaser (src/native-memory.ts) does after a connect storm when nothing from outside forces a
 * GC or a trim: `count` idle device sessions connect (500 at a time, as in idle.ts), then for `--watch` seconds the
 * server's RSS every 5 s and each of its debug log lines `malloc-trim` (why, how long the call held the event loop).
 * With --gdb-trim, RSS at the end before and after glibc's malloc_trim(0) called from outside (what is left to give back).
 *   node --import tsx bench/mqtt/idle-trim.ts [--idle 19000] [--watch 120] [--gdb-trim]
 */
import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { parseArgs } from 'node:util';
import { NODE_FLAGS } from '../../bin/node-flags.js';
import { mallocTrim, rssBytes } from './idle-measure.ts';
import { idleSessions } from './load.ts';

const { values } = parseArgs({ options: { idle: { type: 'string', default: '19000' }, watch: { type: 'string', default: '120' }, 'gdb-trim': { type: 'boolean', default: false } } });
const count = Number(values.idle);
const child = spawn(process.execPath, [...NODE_FLAGS, '--import', 'tsx', 'bench/mqtt/fleetgate-server.ts'], {
  env: { ...process.env, BENCH_DEVICES: String(count), BENCH_FROM_DIST: '1', BENCH_LOG_LEVEL: 'debug' },
  stdio: ['ignore', 'pipe', 'pipe'],
});
const port = await new Promise<number>((resolve) => createInterface({ input: child.stdout! }).once('line', (line) => resolve(JSON.parse(line).mqttPort)));
const mb = (b: number) => (b / 1048576).toFixed(1);
const started = Date.now();
const at = () => `${((Date.now() - started) / 1000).toFixed(1)} s`;
createInterface({ input: child.stderr! }).on('line', (line) => {
  if (!line.includes('malloc-trim')) return;
  const entry = JSON.parse(line) as { gcMs: number; released: boolean; ms: number };
  console.log(`${at()}: full GC (incremental, ${entry.gcMs} ms to finish) and trim (released ${entry.released}, ${entry.ms} ms on the event loop); RSS ${mb(rssBytes(child.pid!))} MB`);
});
const start = rssBytes(child.pid!);
const sessions = await idleSessions(port, Array.from({ length: count }, (_, i) => `bench-${i}`));
console.log(`${at()}: ${count} sessions connected, RSS ${mb(rssBytes(child.pid!))} MB (seeded, before any: ${mb(start)} MB)`);
for (let t = 0; t < Number(values.watch); t += 5) {
  await new Promise((r) => setTimeout(r, 5000));
  console.log(`${at()}: RSS ${mb(rssBytes(child.pid!))} MB`);
}
if (values['gdb-trim']) {
  const before = rssBytes(child.pid!);
  mallocTrim(child.pid!);
  await new Promise((r) => setTimeout(r, 200));
  console.log(`${at()}: glibc malloc_trim(0) through gdb: RSS ${mb(before)} -> ${mb(rssBytes(child.pid!))} MB`);
}
await sessions.close();
child.kill('SIGTERM');
process.exit(0);
