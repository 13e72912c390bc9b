#!/usr/bin/env -S node --max-semi-space-size=64 --enable-source-maps
// Entry point: runs the CLI compiled to dist/ by `npm ci` / `npm run build` (scripts/build.mjs), whose source maps
// make stack traces name the TypeScript files. Without a dist/ (a checkout installed with --ignore-scripts), or with
// FLEETGATE_FROM_SOURCE=1, it compiles the TypeScript at run time through tsx instead (slower to start).
import { existsSync } from 'node:fs';

const compiled = new URL('../dist/cli/main.js', import.meta.url);
if (process.env.FLEETGATE_FROM_SOURCE !== '1' && existsSync(compiled)) {
  await import(compiled.href);
} else {
  const { register } = await import('tsx/esm/api');
  register();
  await import('../src/cli/main.ts');
}
