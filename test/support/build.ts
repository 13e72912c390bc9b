/**
 * Tests that start the server or the CLI as a child process run bin/fleetgate.js, which runs the JavaScript compiled
 * to dist/. This makes sure dist/ was built from the current sources first (scripts/build.mjs; a no-op when it was,
 * which is the case under `npm test`, whose runner builds before any test starts).
 */
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';

let built = false;

/** Builds dist/ when it is stale; once per test process. */
export function ensureBuilt(): void {
  if (built) return;
  execFileSync(process.execPath, [join(import.meta.dirname, '..', '..', 'scripts', 'build.mjs')], { stdio: ['ignore', 'inherit', 'inherit'] });
  built = true;
}
