/**
 * `npm run fuzz` (via scripts/fuzz.mjs): runs every fuzz target with a longer, still bounded budget and prints one
 * JSON line per target. Exit 1 if any target crashed or a valid request failed afterwards.
 * Flags: --seed N (default: time-based, printed), --scale K (multiplies the inputs, default 1), --target NAME.
 */
import { parseArgs } from 'node:util';
import { fuzzCoap } from './coap.ts';
import { fuzzMqtt } from './mqtt.ts';
import { fuzzParsers } from './parsers.ts';
import type { FuzzReport } from './report.ts';

const { values } = parseArgs({ options: { seed: { type: 'string' }, scale: { type: 'string', default: '1' }, target: { type: 'string' } } });
const seed = values.seed !== undefined ? Number(values.seed) : Date.now() % 2 ** 31;
const scale = Number(values.scale);

/** The longer budgets: a few minutes in all at scale 1. */
const TARGETS: Record<string, () => Promise<FuzzReport>> = {
  parsers: () => fuzzParsers({ seed, inputs: 200_000 * scale }),
  mqtt: () => fuzzMqtt({ seed, inputs: 20_000 * scale, checkEvery: 1000 }),
  coap: () => fuzzCoap({ seed, inputs: 30_000 * scale, checkEvery: 1000 }),
};

let failed = false;
for (const [name, run] of Object.entries(TARGETS)) {
  if (values.target && values.target !== name) continue;
  const started = Date.now();
  const report = await run();
  const bad = report.crashes.length > 0 || report.checksPassed !== report.checks;
  failed ||= bad;
  console.log(JSON.stringify({ ...report, crashes: report.crashes.length, firstCrashes: report.crashes.slice(0, 3), seconds: (Date.now() - started) / 1000 }));
}
process.exit(failed ? 1 : 0);
