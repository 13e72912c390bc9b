/**
 * Issue 18, the last-resort policy of the server process (src/cli/last-resort.ts), in a child process: an unhandled
 * rejection and an uncaught connection error are logged, counted and survived; any other uncaught exception is logged
 * as fatal, counted, and ends the process with code 1 through the graceful stop.
 */
import { strict as assert } from 'node:assert';
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { describe, it } from 'node:test';

const CHILD = join(import.meta.dirname, 'fixtures', 'last-resort-child.ts');

function runChild(what: string): Promise<{ code: number | null; report: { lines: string[]; alive?: boolean; exiting?: number } }> {
  return new Promise((resolve, reject) => {
    const child = execFile(process.execPath, ['--import', 'tsx', CHILD, what], { timeout: 60_000 }, (err, stdout) => {
      const line = stdout.trim().split('\n').at(-1) ?? '';
      try {
        resolve({ code: child.exitCode, report: JSON.parse(line) });
      } catch {
        reject(err ?? new Error(`no report: ${stdout}`));
      }
    });
  });
}

describe('the last-resort error policy', () => {
  it('logs and counts an unhandled rejection, and keeps serving', async () => {
    const { code, report } = await runChild('rejection');
    assert.equal(code, 0);
    assert.equal(report.alive, true);
    assert.deepEqual(report.lines.slice(0, 2), ['count rejection', 'error rejection unhandled promise rejection (a bug: please report it); still serving']);
  });

  it('logs and counts an uncaught database connection error, and keeps serving', async () => {
    const { code, report } = await runChild('connection-error');
    assert.equal(code, 0);
    assert.equal(report.alive, true);
    assert.equal(report.lines[0], 'count exception');
    assert.match(report.lines[1], /uncaught connection error .* still serving/);
  });

  it('stops with code 1 on any other uncaught exception, logged as fatal and counted', async () => {
    const { code, report } = await runChild('bug');
    assert.equal(code, 1);
    assert.equal(report.exiting, 1);
    assert.deepEqual(report.lines, ['count fatal', 'fatal fatal uncaught exception: stopping the server to restart in a known state']);
  });
});
