/**
 * The `fleetgate` command. `fleetgate start` runs the server; the other commands manage a running server through its
 * admin REST API (`--url`, `--username`, `--password` or FLEETGATE_URL / FLEETGATE_ADMIN_USERNAME /
 * FLEETGATE_ADMIN_PASSWORD), except `admin password`, which opens the database. Exit codes: see src/cli/errors.ts.
 */
import { Command, CommanderError } from 'commander';
import { registerAdminCommands } from './admin-password.ts';
import { registerDeviceCommands } from './devices.ts';
import { CliError, EXIT } from './errors.ts';
import { registerExportCommands } from './export.ts';
import { registerImportExportCommands } from './import-export.ts';
import { registerProfileCommands } from './profiles.ts';
import { registerOtaCommands } from './ota.ts';
import { registerStartCommand } from './start.ts';

/** The whole command tree; usage errors throw CommanderError instead of exiting (see `run`). */
export function buildProgram(): Command {
  const program = new Command('fleetgate')
    .description('Device provisioning and connectivity server for IoT fleets')
    .showHelpAfterError()
    .exitOverride();
  registerStartCommand(program);
  registerProfileCommands(program);
  const device = program.command('device').description('devices, their credentials, bulk import and export');
  registerDeviceCommands(device);
  registerImportExportCommands(device);
  registerExportCommands(program);
  registerAdminCommands(program);
  registerOtaCommands(program);
  return program;
}

/** Runs the command line and sets the exit code: 1 API errors, 2 usage errors, 3 import with rejected rows. */
export async function run(argv: string[]): Promise<void> {
  try {
    await buildProgram().parseAsync(argv);
  } catch (err) {
    if (err instanceof CommanderError) {
      // commander has printed the message (or the help) already.
      process.exitCode = err.exitCode === 0 ? EXIT.OK : EXIT.USAGE;
      return;
    }
    if (err instanceof CliError) {
      process.stderr.write(`fleetgate: ${err.message}\n`);
      process.exitCode = err.exitCode;
      return;
    }
    process.stderr.write(`fleetgate: ${(err as Error)?.stack ?? String(err)}\n`);
    process.exitCode = EXIT.API;
  }
}

await run(process.argv);
