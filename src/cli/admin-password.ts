/**
 * `fleetgate admin password`: resets an administrator's password. It opens the database directly (the same
 * `--database` / FLEETGATE_DATABASE / config file as `start`), not the admin API, because it is what you run when
 * nobody can log in. It is safe while the server runs (SQLite WAL, or PostgreSQL). The new password is given with
 * `--new-password`, read from stdin with `--password-stdin`, or generated and printed once. The reset is written to
 * the audit log (without the password).
 */
import { existsSync } from 'node:fs';
import { hostname, userInfo } from 'node:os';
import type { Command } from 'commander';
import { ConfigError, loadConfig } from '../config.ts';
import { randomAlphanumeric } from '../core/ids.ts';
import { CliError, EXIT, usageError } from './errors.ts';
import { print, printJson } from './output.ts';

interface PasswordOptions {
  config?: string;
  database?: string;
  username?: string;
  newPassword?: string;
  passwordStdin?: boolean;
  json?: boolean;
}

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8').replace(/\r?\n$/, '');
}

function whoRuns(): string {
  try {
    return userInfo().username;
  } catch {
    return 'unknown';
  }
}

async function resetPassword(opts: PasswordOptions): Promise<void> {
  if (opts.newPassword !== undefined && opts.passwordStdin) throw usageError('give --new-password or --password-stdin, not both');
  let config;
  try {
    config = loadConfig({ file: opts.config, env: process.env, flags: { database: opts.database, adminUsername: opts.username } });
  } catch (err) {
    if (err instanceof ConfigError) throw usageError(`invalid configuration: ${err.message}`);
    throw err;
  }
  // Loaded here, not at the top: the other commands (and --help) start without the store's modules.
  const [{ AuditRecorder }, { FleetgateError }, { Users }, { isPostgresUrl, openStore }] = await Promise.all([
    import('../core/audit.ts'),
    import('../core/errors.ts'),
    import('../core/users.ts'),
    import('../store/open-store.ts'),
  ]);
  if (!isPostgresUrl(config.database) && !existsSync(config.database)) {
    throw new CliError(`no database at ${config.database} (set --database or FLEETGATE_DATABASE)`, EXIT.API);
  }
  const password = opts.passwordStdin ? await readStdin() : (opts.newPassword ?? randomAlphanumeric(20));
  const store = await openStore(config);
  try {
    const users = new Users(store);
    try {
      await users.setPassword(config.adminUsername, password);
    } catch (err) {
      if (err instanceof FleetgateError) throw new CliError(err.message, err.code === 'INVALID_ARGUMENT' ? EXIT.USAGE : EXIT.API);
      throw err;
    }
    const user = (await store.findUserByEmail(config.adminUsername))!;
    const actor = { userId: null, userName: `cli:${whoRuns()}`, source: { transport: 'cli' as const, address: hostname() } };
    await new AuditRecorder(store).action(actor, user.tenantId, { type: 'USER', id: user.id, name: user.email }, 'PASSWORD_RESET');
  } finally {
    await store.close();
  }
  const generated = opts.newPassword === undefined && !opts.passwordStdin;
  if (opts.json) return printJson({ username: config.adminUsername, ...(generated ? { password } : {}) });
  print(generated ? `new password of ${config.adminUsername}: ${password}\n` : `password of ${config.adminUsername} changed\n`);
}

/** Registers `admin password`. */
export function registerAdminCommands(program: Command): void {
  const admin = program.command('admin').description('administrator accounts');
  admin
    .command('password')
    .description('reset an administrator password directly in the database (works when nobody can log in)')
    .option('--config <file>', 'JSON config file, as for start')
    .option('--database <path>', 'SQLite file or postgres:// URL [env FLEETGATE_DATABASE]')
    .option('--username <email>', 'administrator [env FLEETGATE_ADMIN_USERNAME, default admin@fleetgate.local]')
    .option('--new-password <password>', 'the new password (at least 6 characters); generated and printed once if absent')
    .option('--password-stdin', 'read the new password from standard input')
    .option('--json', 'print JSON')
    .action(resetPassword);
}
