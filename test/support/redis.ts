/**
 * Starts a throwaway redis-server for tests: 127.0.0.1, a random port, no persistence, a temp working dir.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from './postgres.ts';
import { skipSuiteForMissingTool } from './tools.ts';

/** Where Debian installs the server. */
export const REDIS_SERVER = process.env.FLEETGATE_REDIS_SERVER ?? '/usr/bin/redis-server';

/** A running test Redis. */
export interface TestRedis {
  port: number;
  url: string;
  /** Stops the server and deletes its directory. Idempotent. */
  stop(): Promise<void>;
  /** Freezes the server process (SIGSTOP): its sockets stay open, nothing is answered, until resume. */
  pause(): void;
  /** Lets a paused server run again (SIGCONT). */
  resume(): void;
}

/**
 * The `skip` option for a suite that needs Redis: a message when it is missing, false otherwise.
 * With FLEETGATE_TEST_REQUIRE_ALL=1 a missing server is an error instead of a skip.
 */
export function skipUnlessRedis(): string | false {
  return skipSuiteForMissingTool(existsSync(REDIS_SERVER) ? undefined : `redis-server not found at ${REDIS_SERVER}`);
}

/** Resolves once the server prints that it accepts connections; rejects when it exits first. */
function ready(child: ChildProcess): Promise<void> {
  return new Promise((resolve, reject) => {
    let output = '';
    const onData = (chunk: Buffer) => {
      output += chunk.toString();
      if (output.includes('Ready to accept connections')) {
        child.stdout!.off('data', onData);
        child.off('exit', onExit);
        child.stdout!.resume(); // keep draining so the server never blocks on a full pipe
        resolve();
      }
    };
    const onExit = (code: number | null) => reject(new Error(`redis-server exited with ${code}:\n${output}`));
    child.stdout!.on('data', onData);
    child.once('exit', onExit);
  });
}

/** Starts a fresh redis-server, on `port` if given (e.g. to bring back one that was stopped). */
export async function startRedis(options: { port?: number } = {}): Promise<TestRedis> {
  const dir = mkdtempSync(join(tmpdir(), 'fleetgate-redis-'));
  for (let attempt = 0; ; attempt++) {
    const port = options.port ?? (await freePort());
    const args = ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir, '--protected-mode', 'yes', '--loglevel', 'notice'];
    const child = spawn(REDIS_SERVER, args, { stdio: ['ignore', 'pipe', 'inherit'] });
    try {
      await ready(child);
    } catch (err) {
      if (attempt < 4 && options.port === undefined) continue; // most likely the port was taken in between
      rmSync(dir, { recursive: true, force: true });
      throw err;
    }
    const killNow = () => child.kill('SIGKILL');
    process.once('exit', killNow); // a crashed test run must not leave a server behind
    let stopped: Promise<void> | undefined;
    return {
      port,
      url: `redis://127.0.0.1:${port}`,
      pause: () => void child.kill('SIGSTOP'),
      resume: () => void child.kill('SIGCONT'),
      stop() {
        return (stopped ??= (async () => {
          process.removeListener('exit', killNow);
          if (child.exitCode === null && child.signalCode === null) {
            child.kill('SIGCONT'); // a paused server would never see the SIGTERM
            const exited = new Promise((resolve) => child.once('exit', resolve));
            child.kill('SIGTERM');
            await exited;
          }
          rmSync(dir, { recursive: true, force: true });
        })());
      },
    };
  }
}
