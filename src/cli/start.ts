/** `fleetgate start`: runs the server; every config option is also a flag. Stops gracefully on SIGTERM/SIGINT. */
import { Option, type Command } from 'commander';
import { ConfigError, loadConfig, OPTIONS, type Config } from '../config.ts';
import type { RunningServer } from '../server.ts';
import { installLastResort } from './last-resort.ts';

/** Longest graceful stop before the process exits anyway (with code 1). */
export const SHUTDOWN_TIMEOUT_MS = 15_000;

function collectFlags(opts: Record<string, unknown>): Partial<Record<keyof Config, unknown>> {
  const flags: Partial<Record<keyof Config, unknown>> = {};
  for (const spec of OPTIONS) {
    const value = opts[spec.key];
    if (value !== undefined) flags[spec.key] = value;
  }
  return flags;
}

function configError(err: unknown): never {
  if (err instanceof ConfigError) {
    process.stderr.write(`fleetgate: invalid configuration: ${err.message}\n`);
    process.exit(2);
  }
  throw err;
}

/**
 * On SIGTERM/SIGINT: stop accepting, let in-flight requests finish, tell MQTT 5 clients (DISCONNECT 0x8B), commit the
 * last telemetry batch, close the store (all in server.close()), then exit 0; exit 1 if that takes too long or fails.
 */
function stopOnSignals(server: RunningServer): (code: number) => void {
  let stopping = false;
  const stopWith = (code: number) => {
    if (stopping) return;
    stopping = true;
    const force = setTimeout(() => {
      process.stderr.write('fleetgate: shutdown took too long, exiting\n');
      process.exit(1);
    }, SHUTDOWN_TIMEOUT_MS);
    force.unref();
    server.close().then(
      () => process.exit(code),
      (err) => {
        process.stderr.write(`fleetgate: error during shutdown: ${(err as Error).message}\n`);
        process.exit(1);
      },
    );
  };
  const stop = (signal: string) => {
    if (!stopping) server.logger.info({ event: 'signal', signal }, 'shutting down');
    stopWith(0);
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
  return stopWith;
}

/** Registers `start` on the program. */
export function registerStartCommand(program: Command): void {
  const start = program
    .command('start')
    .description('run the server (HTTP, MQTT) on the configured database')
    .option('--config <file>', 'JSON config file (keys as in the README)');
  for (const spec of OPTIONS) {
    // commander camel-cases the flag (--http-port -> httpPort), which is the Config key.
    start.addOption(new Option(`--${spec.flag} <value>`, `${spec.doc} [env ${spec.env}]`));
  }
  start.action(async (opts: Record<string, unknown>) => {
    let config: Config;
    try {
      config = loadConfig({ file: opts.config as string | undefined, env: process.env, flags: collectFlags(opts) });
    } catch (err) {
      configError(err);
    }
    let server: RunningServer | undefined;
    let exitWith: ((code: number) => void) | undefined;
    installLastResort(() =>
      server && exitWith
        ? {
            log: (level, obj, msg) => server!.logger[level](obj, msg),
            count: (kind) => server!.metrics?.unhandledError(kind),
            exit: exitWith,
          }
        : undefined,
    );
    try {
      // Loaded here, not at the top: the other commands (and --help) start without the server's modules.
      const { startServer } = await import('../server.ts');
      server = await startServer(config);
    } catch (err) {
      if (err instanceof ConfigError) configError(err);
      const e = err as NodeJS.ErrnoException;
      process.stderr.write(`fleetgate: failed to start: ${e.code === 'EADDRINUSE' ? `address in use (${e.message})` : e.message}\n`);
      process.exit(1);
    }
    exitWith = stopOnSignals(server);
  });
}
