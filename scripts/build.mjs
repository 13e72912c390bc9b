#!/usr/bin/env node
/**
 * Compiles src/ to dist/ (JavaScript + source maps) with tsc, for bin/fleetgate.js. Run by `npm ci`/`npm install`
 * (`prepare`), by `npm run build`, and by the test runner before any test, so a test never runs stale compiled code.
 *
 * Skips the work when dist/ was built from exactly the current sources: a fingerprint (SHA-256 of every file's path
 * and content under src/ but src/ui/, the tsconfigs and the compiler version) is kept in dist/.fingerprint. `--force`
 * always builds. Files under src/ that are not code (JSON, templates, ...) are copied beside the compiled modules.
 * The build goes to a temporary directory that then replaces dist/, so a reader never sees a half-written dist/; a
 * lock directory keeps two builds (two test files started at once) from racing. Type errors do not stop the build
 * (`--noCheck`: isolatedModules makes the emit independent of types); `npm run typecheck` reports them.
 */
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, relative } from 'node:path';
import { pathToFileURL } from 'node:url';

const root = join(import.meta.dirname, '..');
const dist = join(root, 'dist');
const lock = join(root, '.build-lock');
/** Directories under src/ with a build of their own (the web console), not compiled here. */
const OWN_BUILD = new Set([join(root, 'src', 'ui')]);
/** Compiled (or copied) by tsc; every other file under src/ is an asset copied to dist/ as it is. */
const CODE = /\.(ts|mts|cts|tsx|mjs|cjs|js)$/;

function inputs(dir, out = []) {
  for (const name of readdirSync(dir).sort()) {
    const path = join(dir, name);
    if (OWN_BUILD.has(path)) continue;
    if (statSync(path).isDirectory()) inputs(path, out);
    else out.push(path);
  }
  return out;
}

function tscPath() {
  return createRequire(join(root, 'package.json')).resolve('typescript/bin/tsc');
}

/** The fingerprint of the current sources and compiler settings. */
export function fingerprint() {
  const hash = createHash('sha256');
  const tscVersion = JSON.parse(readFileSync(join(tscPath(), '..', '..', 'package.json'), 'utf8')).version;
  hash.update(`typescript ${tscVersion}\n`);
  for (const file of [join(root, 'tsconfig.json'), join(root, 'tsconfig.build.json'), ...inputs(join(root, 'src'))]) {
    hash.update(`${relative(root, file)}\n`);
    hash.update(readFileSync(file));
  }
  return hash.digest('hex');
}

function builtFingerprint() {
  try {
    return readFileSync(join(dist, '.fingerprint'), 'utf8');
  } catch {
    return null;
  }
}

const sleep = (ms) => Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);

function withLock(fn) {
  const deadline = Date.now() + 180_000;
  for (;;) {
    try {
      mkdirSync(lock);
      break;
    } catch (err) {
      if (err.code !== 'EEXIST') throw err;
      // A lock older than two minutes belongs to a build that died.
      if (Date.now() - statSync(lock, { throwIfNoEntry: false })?.mtimeMs > 120_000) rmSync(lock, { recursive: true, force: true });
      if (Date.now() > deadline) throw new Error(`build: ${lock} held for too long`);
      sleep(100);
    }
  }
  try {
    return fn();
  } finally {
    rmSync(lock, { recursive: true, force: true });
  }
}

/** Builds dist/ unless it is current (or always, with force). Returns true when it compiled. */
export function build({ force = false, quiet = false } = {}) {
  const want = fingerprint();
  if (!force && builtFingerprint() === want) return false;
  return withLock(() => {
    if (!force && builtFingerprint() === want) return false; // built by whoever held the lock
    const tmp = join(root, `.dist-${process.pid}`);
    const old = join(root, `.dist-old-${process.pid}`);
    rmSync(tmp, { recursive: true, force: true });
    if (!quiet) process.stderr.write('build: compiling src/ to dist/\n');
    execFileSync(process.execPath, [tscPath(), '-p', join(root, 'tsconfig.build.json'), '--noCheck', '--outDir', tmp], {
      stdio: ['ignore', 'inherit', 'inherit'],
    });
    // Files read at run time beside the modules (JSON, templates, ...) are copied, so dist/ works like src/.
    for (const file of inputs(join(root, 'src'))) {
      if (CODE.test(file) || file.endsWith('.d.ts')) continue;
      const target = join(tmp, relative(join(root, 'src'), file));
      mkdirSync(dirname(target), { recursive: true });
      copyFileSync(file, target);
    }
    writeFileSync(join(tmp, '.fingerprint'), want);
    if (existsSync(dist)) renameSync(dist, old);
    renameSync(tmp, dist);
    rmSync(old, { recursive: true, force: true });
    return true;
  });
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  build({ force: process.argv.includes('--force') });
}
