/**
 * How the `fleetgate` command fails: a CliError carries the message for stderr and the exit code.
 * Exit codes: 0 success; 1 the server refused or failed (API error, not found, login failed, unreachable);
 * 2 usage (unknown command or option, bad argument, unreadable or malformed input file);
 * 3 `device import` finished but rejected some rows.
 */
import { InvalidArgumentError } from 'commander';

export const EXIT = { OK: 0, API: 1, USAGE: 2, ROWS_REJECTED: 3 } as const;

/** A failure to report on stderr as `fleetgate: <message>` before exiting with `exitCode`. */
export class CliError extends Error {
  constructor(
    message: string,
    readonly exitCode: number = EXIT.API,
  ) {
    super(message);
    this.name = 'CliError';
  }
}

/** A usage error (exit code 2). */
export const usageError = (message: string) => new CliError(message, EXIT.USAGE);

/** commander argument parser for a whole number ≥ 1 (a bad value is a usage error). */
export function positiveInt(value: string): number {
  const n = Number(value);
  if (!/^\d+$/.test(value) || n < 1 || !Number.isSafeInteger(n)) {
    throw new InvalidArgumentError('a whole number of at least 1 is expected');
  }
  return n;
}
