/** The console's first load stays within its budget: at most 250 KB of compressed JS and CSS (issue 12 §7). */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { gzipSync } from 'node:zlib';
import { CONSOLE_DIR } from '../../src/admin/console-static.ts';
import { ensureConsoleBuilt } from './browser.ts';

const BUDGET_BYTES = 250 * 1024;

test('the JS and CSS that / loads weigh at most 250 KB gzip-compressed, and nothing comes from another origin', () => {
  ensureConsoleBuilt();
  const html = readFileSync(join(CONSOLE_DIR, 'index.html'), 'utf8');
  const files = [...html.matchAll(/(?:src|href)="\/(assets\/[^"]+\.(?:js|css))"/g)].map((m) => m[1]);
  assert.ok(files.length >= 2, html);
  let total = 0;
  for (const file of files) {
    const body = readFileSync(join(CONSOLE_DIR, file));
    total += gzipSync(body, { level: 9 }).length;
    // No CDN and nothing fetched at run time: the only absolute URLs in the bundle are XML namespace names.
    const urls = [...body.toString('utf8').matchAll(/https?:\/\/[^\s"'`)]+/g)].map((m) => m[0]).filter((u) => !u.startsWith('http://www.w3.org/'));
    assert.deepEqual(urls, [], `${file} refers to another origin`);
  }
  assert.doesNotMatch(html, /https?:\/\//);
  assert.ok(total <= BUDGET_BYTES, `first load ${total} bytes compressed > ${BUDGET_BYTES}`);
});
