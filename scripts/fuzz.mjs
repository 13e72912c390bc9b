#!/usr/bin/env node
// `npm run fuzz [-- --seed N --scale K --target parsers|mqtt|coap]`: the longer fuzz runs of test/fuzz (bounded).
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';

const run = join(import.meta.dirname, '..', 'test', 'fuzz', 'run.ts');
const result = spawnSync(process.execPath, ['--expose-gc', '--import', 'tsx', run, ...process.argv.slice(2)], { stdio: 'inherit' });
process.exit(result.status ?? 1);
