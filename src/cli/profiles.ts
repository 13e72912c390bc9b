/**
 * `fleetgate profile create|list|show|delete`. A created profile's generated key and secret are printed once, on
 * creation; `profile show` masks the secret unless `--show-secret`.
 */
import type { Command } from 'commander';
import { randomAlphanumeric } from '../core/ids.ts';
import { AdminClient, withConnection, type ConnectionOptions } from './api-client.ts';
import { positiveInt, usageError } from './errors.ts';
import { fetchAll, findProfile, type EntityJson } from './lookup.ts';
import { formatFields, formatTable, formatTime, print, printJson } from './output.ts';

/** Strategy names the CLI accepts, with ThingsBoard's own as aliases. */
const STRATEGIES: Record<string, string> = {
  'allow-create': 'ALLOW_CREATE_NEW_DEVICES',
  'check-pre-provisioned': 'CHECK_PRE_PROVISIONED_DEVICES',
  disabled: 'DISABLED',
  ALLOW_CREATE_NEW_DEVICES: 'ALLOW_CREATE_NEW_DEVICES',
  CHECK_PRE_PROVISIONED_DEVICES: 'CHECK_PRE_PROVISIONED_DEVICES',
  DISABLED: 'DISABLED',
};

type ProfileJson = EntityJson & {
  provisionType: string;
  provisionDeviceKey: string | null;
  default: boolean;
  createdTime: number;
  description: string | null;
  profileData: { provisionConfiguration?: { provisionDeviceSecret?: string | null } | null };
};

const secretOf = (p: ProfileJson) => p.profileData?.provisionConfiguration?.provisionDeviceSecret ?? null;

/** The profile with its secret replaced by `********` (unless there is none). */
function masked(p: ProfileJson): ProfileJson {
  const config = p.profileData?.provisionConfiguration;
  if (!config?.provisionDeviceSecret) return p;
  return { ...p, profileData: { ...p.profileData, provisionConfiguration: { ...config, provisionDeviceSecret: '********' } } };
}

function details(p: ProfileJson): string {
  return formatFields([
    ['name', p.name],
    ['id', p.id.id],
    ['strategy', p.provisionType],
    ['key', p.provisionDeviceKey],
    ['secret', secretOf(p)],
    ['default', p.default],
    ['description', p.description],
    ['created', formatTime(p.createdTime)],
  ]);
}

type CreateOptions = ConnectionOptions & { strategy: string; key?: string; secret?: string; default?: boolean; description?: string; derivedSecrets?: boolean };

async function create(name: string, opts: CreateOptions): Promise<void> {
  const provisionType = STRATEGIES[opts.strategy];
  if (!provisionType) throw usageError(`unknown --strategy "${opts.strategy}" (allow-create, check-pre-provisioned, disabled)`);
  const provisions = provisionType !== 'DISABLED';
  if (!provisions && (opts.key || opts.secret || opts.derivedSecrets)) throw usageError('--key, --secret and --derived-secrets need a provisioning strategy');
  const key = provisions ? (opts.key ?? randomAlphanumeric(20).toLowerCase()) : null;
  const secret = provisions ? (opts.secret ?? randomAlphanumeric(20).toLowerCase()) : null;
  const client = new AdminClient(opts);
  const saved = await client.call<ProfileJson>('POST', '/api/deviceProfile', {
    body: {
      name,
      provisionType,
      provisionDeviceKey: key,
      description: opts.description ?? null,
      ...(opts.default ? { default: true } : {}),
      profileData: provisions
        ? { provisionConfiguration: { type: provisionType, provisionDeviceSecret: secret, ...(opts.derivedSecrets ? { secretDerivation: 'HMAC_SHA256' } : {}) } }
        : {},
    },
  });
  if (opts.json) return printJson(saved);
  print(details(saved));
  if (provisions && (!opts.key || !opts.secret)) process.stderr.write('fleetgate: the generated key and secret are shown only now; flash them into the devices.\n');
}

async function list(opts: ConnectionOptions & { limit: number }): Promise<void> {
  const profiles = await fetchAll<ProfileJson>(new AdminClient(opts), '/api/deviceProfiles', { sortProperty: 'name', sortOrder: 'ASC' }, opts.limit);
  if (opts.json) return printJson(profiles.map(masked));
  print(formatTable([
    { header: 'name', get: (p: ProfileJson) => p.name },
    { header: 'strategy', get: (p) => p.provisionType },
    { header: 'key', get: (p) => p.provisionDeviceKey },
    { header: 'default', get: (p) => (p.default ? 'yes' : '') },
    { header: 'id', get: (p) => p.id.id },
  ], profiles));
}

/** Registers `profile ...` on the program. */
export function registerProfileCommands(program: Command): void {
  const profile = program.command('profile').description('device profiles: provisioning strategy, key and secret');
  withConnection(
    profile
      .command('create <name>')
      .description('create a profile; key and secret are generated when not given and printed once')
      .requiredOption('--strategy <strategy>', 'allow-create | check-pre-provisioned | disabled')
      .option('--key <key>', 'provision device key (globally unique)')
      .option('--secret <secret>', 'provision device secret')
      .option('--default', 'make it the default profile')
      .option('--derived-secrets', 'devices send their own secret, derived from the profile secret and their name (fleetgate profile derive-key)')
      .option('--description <text>', 'description'),
  ).action(create);
  withConnection(profile.command('list').description('list profiles').option('--limit <n>', 'most profiles to list', positiveInt, 1000)).action(list);
  withConnection(profile.command('show <profile>').description('show a profile (name or id)').option('--show-secret', 'print the provision secret')).action(
    async (ref: string, opts: ConnectionOptions & { showSecret?: boolean }) => {
      const found = (await findProfile(new AdminClient(opts), ref)) as ProfileJson;
      const shown = opts.showSecret ? found : masked(found);
      if (opts.json) printJson(shown);
      else print(details(shown));
    },
  );
  withConnection(
    profile
      .command('derive-key <profile> <device>')
      .description("print a device's own provisioning secret (profiles with secretDerivation HMAC_SHA256), for the factory"),
  ).action(async (ref: string, deviceName: string, opts: ConnectionOptions) => {
    const client = new AdminClient(opts);
    const found = await findProfile(client, ref);
    const answer = await client.call<{ deviceName: string; provisionDeviceSecret: string }>('GET', `/api/deviceProfile/${found.id.id}/derivedSecret`, { query: { deviceName } });
    if (opts.json) printJson(answer);
    else print(`${answer.provisionDeviceSecret}\n`);
  });
  withConnection(
    profile
      .command('require-rotation <profile>')
      .description('ask every device of the profile to rotate its credentials (shared attribute credentialsRotationRequired)'),
  ).action(async (ref: string, opts: ConnectionOptions) => {
    const client = new AdminClient(opts);
    const found = await findProfile(client, ref);
    const answer = await client.call<{ devices: number }>('POST', `/api/deviceProfile/${found.id.id}/requireCredentialsRotation`);
    if (opts.json) printJson(answer);
    else print(`asked ${answer.devices} devices of ${found.name} to rotate their credentials\n`);
  });
  withConnection(profile.command('delete <profile>').description('delete a profile (name or id); it must have no devices')).action(async (ref: string, opts: ConnectionOptions) => {
    const client = new AdminClient(opts);
    const found = await findProfile(client, ref);
    await client.call('DELETE', `/api/deviceProfile/${found.id.id}`);
    if (opts.json) printJson({ deleted: found.id.id, name: found.name });
    else print(`deleted profile ${found.name} (${found.id.id})\n`);
  });
}
