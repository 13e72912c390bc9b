import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { OPTIONS } from '../../src/config.ts';

const readme = readFileSync(join(import.meta.dirname, '..', '..', 'README.md'), 'utf8');

test('the README keeps the two Quick start commands', () => {
  assert.ok(readme.includes('npm ci && npm start'));
  assert.ok(readme.includes('npm ci && npm test'));
});

test('the README configuration table lists every option with its environment variable and flag', () => {
  const missing = OPTIONS.filter((o) => !readme.includes(`| ${o.key} | ${o.env} | --${o.flag} |`)).map((o) => o.key);
  assert.deepEqual(missing, []);
});
