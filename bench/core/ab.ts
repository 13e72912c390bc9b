/**
 * A/B of the core ingest micro-benchmark (bench/core/ingest.ts): alternates runs against a base checkout and this
 * tree, in separate processes, and prints the median of each figure. On a shared machine only the ratio means much.
 *
 *   git archive HEAD | tar -x -C /tmp/fg-base && ln -s "$PWD/node_modules" /tmp/fg-base/
 *   node --import tsx bench/core/ab.ts /tmp/fg-base [rounds=5] [ingest.ts arguments...]
 *
 * BENCH_ALLOC=1 adds one allocation-sampling run per side (allocated bytes per message).
 */
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

type Side = 'base' | 'this';
const [base, roundsArg = '5', ...args] = process.argv.slice(2);
if (!base) throw new Error('usage: ab.ts <base checkout> [rounds] [ingest.ts arguments]');
const script = fileURLToPath(new URL('ingest.ts', import.meta.url));

function run(side: Side, alloc: boolean): Record<string, number> {
  const env = { ...process.env, BENCH_ROOT: side === 'base' ? base : '', BENCH_ALLOC: alloc ? '1' : '' };
  const out = execFileSync(process.execPath, ['--import', 'tsx', script, ...args], { env, encoding: 'utf8' });
  return JSON.parse(out.trim().split('\n').at(-1)!);
}

const results: Record<Side, Record<string, number>[]> = { base: [], this: [] };
for (let r = 0; r < Number(roundsArg); r++) {
  for (const side of r % 2 === 0 ? (['base', 'this'] as const) : (['this', 'base'] as const)) {
    const figures = run(side, false);
    results[side].push(figures);
    console.log(side.padEnd(5), JSON.stringify(figures));
  }
}
if (process.env.BENCH_ALLOC) {
  for (const side of ['base', 'this'] as const) console.log(side.padEnd(5), 'allocated bytes per message', run(side, true).allocBytesPerMsg);
}
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
if (results.base.length > 0) {
  for (const key of ['msgPerSec', 'cpuUsPerMsg', 'gcShare']) {
    const a = median(results.base.map((f) => f[key]));
    const b = median(results.this.map((f) => f[key]));
    console.log(`${key.padEnd(12)} base ${a}  this ${b}  this/base ${(b / a).toFixed(3)}`);
  }
}
