/**
 * The server process's last-resort error policy (issue 18). Every database and bus connection has its own error
 * listener, so nothing below should ever run; if something slips through anyway:
 * - an unhandled promise rejection is logged loudly and counted, and the process keeps serving: nothing is left half
 *   done by a promise nobody waited for;
 * - an uncaught exception that is a connection error (PostgreSQL or Redis went away) is logged and counted, and the
 *   process keeps serving: the pool or ioredis replaces the connection;
 * - any other uncaught exception leaves the process in a state nobody knows: it is logged as fatal, counted, the
 *   server stops gracefully (committing what is queued) and exits 1, so a
 *   supervisor restarts it.
 */
import { isConnectionError } from '../store/unavailable.ts';
import { redisUnavailable } from '../bus/redis-unavailable.ts';

/** What the policy needs from the running server; undefined while it starts. */
export interface LastResortTarget {
  log(level: 'error' | 'fatal', obj: object, msg: string): void;
  count(kind: 'rejection' | 'exception' | 'fatal'): void;
  /** Stops gracefully and exits with `code`. */
  exit(code: number): void;
}

/** Installs the policy on `process`; `target()` is the running server, or undefined before it runs. */
export function installLastResort(target: () => LastResortTarget | undefined): void {
  const report = (level: 'error' | 'fatal', kind: 'rejection' | 'exception' | 'fatal', err: unknown, msg: string) => {
    const t = target();
    if (t) {
      t.count(kind);
      t.log(level, { event: 'unhandled', kind, err }, msg);
    } else {
      process.stderr.write(`fleetgate: ${msg}: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    }
  };
  process.on('unhandledRejection', (reason) => {
    report('error', 'rejection', reason, 'unhandled promise rejection (a bug: please report it); still serving');
  });
  process.on('uncaughtException', (err) => {
    if (isConnectionError(err) || redisUnavailable(err)) {
      report('error', 'exception', err, 'uncaught connection error (a bug: please report it); the connection is replaced, still serving');
      return;
    }
    report('fatal', 'fatal', err, 'uncaught exception: stopping the server to restart in a known state');
    const t = target();
    if (t) t.exit(1);
    else process.exit(1);
  });
}
