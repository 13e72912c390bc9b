/**
 * The server and the CLI run the JavaScript compiled to dist/ (scripts/build.mjs): it is rebuilt whenever the sources
 * change, its stack traces name the TypeScript sources, and the tsx fallback still runs the sources directly.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { NODE_FLAGS } from '../../bin/node-flags.js';
import { build, fingerprint } from '../../scripts/build.mjs';
import { ensureBuilt } from '../support/build.ts';

const root = join(import.meta.dirname, '../..');

describe('the compiled JavaScript in dist/', () => {
  it('is built from exactly the current sources, and a second build is a no-op', () => {
    ensureBuilt();
    assert.equal(readFileSync(join(root, 'dist', '.fingerprint'), 'utf8'), fingerprint());
    assert.equal(build({ quiet: true }), false);
  });

  it('gives stack traces that point at the TypeScript sources', () => {
    ensureBuilt();
    const script = "import { loadConfig } from './dist/config.js';" +
      "try { loadConfig({ env: { FLEETGATE_HTTP_PORT: 'not a port' } }) } catch (e) { console.log(e.stack) }";
    const stack = execFileSync(process.execPath, [...NODE_FLAGS, '--input-type=module', '-e', script], { cwd: root, encoding: 'utf8' });
    assert.match(stack, /invalid|port/i);
    assert.match(stack, /src\/config\.ts:\d+:\d+/);
    assert.doesNotMatch(stack, /dist\/config\.js/);
  });

  it('is what bin/fleetgate.js runs; FLEETGATE_FROM_SOURCE=1 runs the TypeScript through tsx instead', () => {
    ensureBuilt();
    const help = (env: Record<string, string>) =>
      execFileSync(process.execPath, [join(root, 'bin', 'fleetgate.js'), '--help'], { encoding: 'utf8', env: { PATH: process.env.PATH, ...env } });
    const compiled = help({});
    assert.match(compiled, /Usage: fleetgate/);
    assert.equal(help({ FLEETGATE_FROM_SOURCE: '1' }), compiled);
  });
});
