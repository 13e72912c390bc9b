/**
 * The default log destination (src/log.ts): lines of one event-loop turn go to pino's asynchronous writer as one
 * write, and none is lost when the process ends — by `process.exit` in the middle of a turn, by running out of work,
 * or right after a burst — in order, one JSON object per line.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';

const logModule = join(import.meta.dirname, '..', '..', 'src', 'log.ts');

/** Runs `body` in a fresh node (tsx) with `logger` from createLogger('info') on its default destination; returns stdout. */
function run(body: string): string {
  const script = `import { createLogger } from ${JSON.stringify(logModule)};\nconst logger = createLogger('info');\n${body}`;
  const child = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { encoding: 'utf8', timeout: 120_000, maxBuffer: 64 * 1024 * 1024 });
  assert.equal(child.status, 0, child.stderr);
  return child.stdout;
}

function sequence(stdout: string): number[] {
  return stdout
    .split('\n')
    .filter((line) => line !== '')
    .map((line) => (JSON.parse(line) as { n: number }).n);
}

test('process.exit in the same turn as the lines: every line is written, in order', () => {
  const out = run(`for (let n = 0; n < 500; n++) logger.info({ n }, 'line');\nprocess.exit(0);`);
  assert.deepEqual(sequence(out), Array.from({ length: 500 }, (_, n) => n));
});

test('the process runs out of work after bursts over several turns: every line is written, in order', () => {
  const out = run(`let n = 0;\nfunction burst(left) { for (let i = 0; i < 300; i++) logger.info({ n: n++ }, 'x'.repeat(200)); if (left > 0) setImmediate(() => burst(left - 1)); }\nburst(20);`);
  assert.deepEqual(sequence(out), Array.from({ length: 300 * 21 }, (_, n) => n));
});

test('a secret field is still redacted on the default destination', () => {
  const out = run(`logger.info({ n: 0, provisionDeviceSecret: 'never-in-a-log' }, 'line');`);
  assert.ok(!out.includes('never-in-a-log'));
  assert.deepEqual(sequence(out), [0]);
});

test('process.exit after a turn of several megabytes of lines: every line is written, in order', () => {
  // The turn's lines reach the writer at exit; an asynchronous write started then would never finish (the pipe takes
  // 64 KB at a time), so everything past the first pipeful was lost.
  const out = run(`for (let n = 0; n < 20000; n++) logger.info({ n }, 'x'.repeat(200));\nprocess.exit(0);`);
  assert.deepEqual(sequence(out), Array.from({ length: 20000 }, (_, n) => n));
});

test('an uncaught exception after a large turn of lines: every line is written before the process dies', () => {
  const script = `import { createLogger } from ${JSON.stringify(logModule)};\nconst logger = createLogger('info');\nsetTimeout(() => { for (let n = 0; n < 5000; n++) logger.info({ n }, 'x'.repeat(200)); throw new Error('boom'); }, 1);`;
  const child = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { encoding: 'utf8', timeout: 120_000, maxBuffer: 64 * 1024 * 1024 });
  assert.notEqual(child.status, 0);
  assert.match(child.stderr, /boom/);
  assert.deepEqual(sequence(child.stdout), Array.from({ length: 5000 }, (_, n) => n));
});
