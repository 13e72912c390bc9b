/** Runs `bin/fleetgate.js` as a child process (asynchronously, so an in-process test server keeps serving). */
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { ensureBuilt } from '../support/build.ts';

const BIN = join(import.meta.dirname, '..', '..', 'bin', 'fleetgate.js');

export interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs `fleetgate ...args` with a clean environment plus `env`; `input` is written to stdin. */
export function runCli(args: string[], env: Record<string, string> = {}, input?: string): Promise<CliResult> {
  ensureBuilt();
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [BIN, ...args], { env: { PATH: process.env.PATH, HOME: process.env.HOME, ...env }, stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
    child.stdin.end(input ?? '');
  });
}
