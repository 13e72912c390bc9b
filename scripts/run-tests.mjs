#!/usr/bin/env node
// Runs every test/**/*.test.ts with node:test under tsx. Extra args are passed to node (e.g. --test-name-pattern).
// First it brings dist/ up to date (scripts/build.mjs): tests that start the server or the CLI as a child process run
// the compiled JavaScript, as users do, and must never run a stale build.
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { build } from './build.mjs';

function findTests(dir) {
  const out = [];
  for (const name of readdirSync(dir).sort()) {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) out.push(...findTests(path));
    else if (name.endsWith('.test.ts')) out.push(path);
  }
  return out;
}

const args = process.argv.slice(2);
const fileArgs = args.filter((a) => a.endsWith('.ts'));
const nodeArgs = args.filter((a) => !a.endsWith('.ts'));
const files = fileArgs.length > 0 ? fileArgs : findTests('test');
// node:test applies --test-timeout to each test file as a whole (and to each test in it). It is a guard against a
// hung file, not a speed check: a file's run time grows several-fold when other work shares the 2 cores (the CLI
// tests once took 120 s under load), so the limit is ten minutes; FLEETGATE_TEST_TIMEOUT_MS overrides it.
const timeoutMs = Number(process.env.FLEETGATE_TEST_TIMEOUT_MS ?? 600_000);
const started = Date.now();
build();
const result = spawnSync(
  process.execPath,
  ['--import', 'tsx', '--test', '--test-concurrency=2', `--test-timeout=${timeoutMs}`, ...nodeArgs, ...files],
  { stdio: 'inherit' },
);
process.stderr.write(`run-tests: ${files.length} file(s) in ${((Date.now() - started) / 1000).toFixed(0)} s (build included)\n`);
process.exit(result.status ?? 1);
