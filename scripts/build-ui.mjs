#!/usr/bin/env node
// Builds the web console (src/ui) into dist-ui/ with Vite, and writes .gz and .br copies of every asset so the server
// sends them pre-compressed. Run by `npm ci` (the `prepare` script) and, with --if-missing, by `npm start`.
import { existsSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { brotliCompressSync, gzipSync, constants } from 'node:zlib';

const root = resolve(import.meta.dirname, '..');
const outDir = join(root, 'dist-ui');
const ifMissing = process.argv.includes('--if-missing');

/** Newest modification time under a folder (ms). */
function newest(dir) {
  let latest = 0;
  for (const name of readdirSync(dir)) {
    const path = join(dir, name);
    const stat = statSync(path);
    latest = Math.max(latest, stat.isDirectory() ? newest(path) : stat.mtimeMs);
  }
  return latest;
}
// --if-missing: build only when there is no build yet, or the sources changed since (e.g. after a git pull).
const builtIndex = join(outDir, 'index.html');
if (ifMissing && existsSync(builtIndex) && statSync(builtIndex).mtimeMs >= newest(join(root, 'src/ui'))) process.exit(0);

let vite;
try {
  vite = await import('vite');
} catch {
  // `npm ci --omit=dev` installs no bundler: the server then answers / with a note instead of the console.
  console.error('build-ui: vite is not installed (npm ci without dev dependencies?); the web console is not built');
  process.exit(0);
}

await vite.build({
  root: join(root, 'src/ui'),
  base: '/',
  logLevel: 'warn',
  configFile: false,
  esbuild: { jsx: 'automatic', jsxImportSource: 'preact' },
  build: {
    outDir,
    emptyOutDir: true,
    assetsDir: 'assets',
    // The polyfill would be an inline script, which the Content-Security-Policy forbids.
    modulePreload: { polyfill: false },
    target: 'es2022',
    reportCompressedSize: false,
    chunkSizeWarningLimit: 400,
  },
});

function* files(dir) {
  for (const name of readdirSync(dir)) {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) yield* files(path);
    else yield path;
  }
}
for (const path of files(join(outDir, 'assets'))) {
  if (!/\.(js|css|svg|json)$/.test(path)) continue;
  const body = readFileSync(path);
  writeFileSync(`${path}.gz`, gzipSync(body, { level: 9 }));
  writeFileSync(`${path}.br`, brotliCompressSync(body, { params: { [constants.BROTLI_PARAM_QUALITY]: 11 } }));
}
console.error(`build-ui: web console built into ${outDir}`);
