/**
 * The `fleetgate` command. `fleetgate start` runs the server; every config option is also a flag.
 */
import { Command, Option } from 'commander';
import { ConfigError, loadConfig, OPTIONS, type Config } from '../config.ts';
import { startServer } from '../server.ts';

function collectFlags(opts: Record<string, unknown>): Partial<Record<keyof Config, unknown>> {
  const flags: Partial<Record<keyof Config, unknown>> = {};
  for (const spec of OPTIONS) {
    const value = opts[spec.key];
    if (value !== undefined) flags[spec.key] = value;
  }
  return flags;
}

export function buildProgram(): Command {
  const program = new Command('fleetgate').description('Device provisioning and connectivity server for IoT fleets').showHelpAfterError();
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
      if (err instanceof ConfigError) {
        process.stderr.write(`fleetgate: invalid configuration: ${err.message}\n`);
        process.exit(2);
      }
      throw err;
    }
    let server: Awaited<ReturnType<typeof startServer>>;
    try {
      server = await startServer(config);
    } catch (err) {
      if (err instanceof ConfigError) {
        process.stderr.write(`fleetgate: invalid configuration: ${err.message}\n`);
        process.exit(2);
      }
      const e = err as NodeJS.ErrnoException;
      process.stderr.write(`fleetgate: failed to start: ${e.code === 'EADDRINUSE' ? `address in use (${e.message})` : e.message}\n`);
      process.exit(1);
    }
    let stopping = false;
    const stop = (signal: string) => {
      if (stopping) return;
      stopping = true;
      server.logger.info({ event: 'signal', signal }, 'shutting down');
      const force = setTimeout(() => {
        process.stderr.write('fleetgate: shutdown took too long, exiting\n');
        process.exit(1);
      }, 15_000);
      force.unref();
      server.close().then(
        () => process.exit(0),
        (err) => {
          process.stderr.write(`fleetgate: error during shutdown: ${(err as Error).message}\n`);
          process.exit(1);
        },
      );
    };
    process.on('SIGTERM', () => stop('SIGTERM'));
    process.on('SIGINT', () => stop('SIGINT'));
  });
  return program;
}

await buildProgram().parseAsync(process.argv);
