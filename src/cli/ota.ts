/**
 * `fleetgate ota upload|list|assign|status`: firmware and software packages through the admin API (spec
 * thingsboard-ota §1, §3). Uploads stream the file from disk with its SHA256 computed here, so the server verifies
 * what it stored.
 */
import { createHash } from 'node:crypto';
import { createReadStream, openAsBlob } from 'node:fs';
import { basename } from 'node:path';
import { Option, type Command } from 'commander';
import { AdminClient, withConnection, type ConnectionOptions } from './api-client.ts';
import { CliError, positiveInt, usageError } from './errors.ts';
import { fetchAll, findDevice, findProfile, type EntityJson } from './lookup.ts';
import { formatFields, formatTable, print, printJson } from './output.ts';

type PackageJson = EntityJson & {
  title: string;
  version: string;
  type: string;
  tag: string | null;
  url: string | null;
  hasData: boolean;
  fileName: string | null;
  dataSize: number | null;
  checksumAlgorithm: string | null;
  checksum: string | null;
  deviceProfileId: { id: string } | null;
};

const TYPES = ['FIRMWARE', 'SOFTWARE'];

function packageType(text: string | undefined): 'FIRMWARE' | 'SOFTWARE' {
  const type = (text ?? 'FIRMWARE').toUpperCase();
  if (!TYPES.includes(type)) throw usageError(`--type must be FIRMWARE or SOFTWARE, got "${text}"`);
  return type as 'FIRMWARE' | 'SOFTWARE';
}

function packageFields(p: PackageJson): [string, unknown][] {
  return [['title', p.title], ['version', p.version], ['type', p.type], ['id', p.id.id], ['file', p.fileName], ['size', p.dataSize], ['checksum', p.checksumAlgorithm ? `${p.checksumAlgorithm} ${p.checksum}` : null], ['url', p.url]];
}

async function sha256Of(path: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(path)) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

type UploadOptions = ConnectionOptions & { title: string; version: string; profile: string; type?: string; tag?: string; contentType: string };

async function upload(file: string, opts: UploadOptions): Promise<void> {
  const client = new AdminClient(opts);
  const profile = await findProfile(client, opts.profile);
  const blob = await openAsBlob(file, { type: opts.contentType }).catch((err: Error) => {
    throw new CliError(`cannot read ${file}: ${err.message}`);
  });
  const created = await client.call<PackageJson>('POST', '/api/otaPackage', {
    body: { title: opts.title, version: opts.version, type: packageType(opts.type), tag: opts.tag ?? `${opts.title} ${opts.version}`, deviceProfileId: { entityType: 'DEVICE_PROFILE', id: profile.id.id } },
  });
  const form = new FormData();
  form.append('file', blob, basename(file));
  let saved: PackageJson;
  try {
    saved = await client.call<PackageJson>('POST', `/api/otaPackage/${created.id.id}`, { query: { checksumAlgorithm: 'SHA256', checksum: await sha256Of(file) }, form });
  } catch (err) {
    // As ThingsBoard's UI does: a failed upload deletes the package it created.
    await client.call('DELETE', `/api/otaPackage/${created.id.id}`).catch(() => {});
    throw err;
  }
  if (opts.json) return printJson(saved);
  print(formatFields(packageFields(saved)));
}

type ListOptions = ConnectionOptions & { profile?: string; type?: string; search?: string; limit: number };

async function list(opts: ListOptions): Promise<void> {
  const client = new AdminClient(opts);
  const path = opts.profile ? `/api/otaPackages/${(await findProfile(client, opts.profile)).id.id}/${packageType(opts.type)}` : '/api/otaPackages';
  let packages = await fetchAll<PackageJson>(client, path, { textSearch: opts.search, sortProperty: 'createdTime', sortOrder: 'ASC' }, opts.limit);
  if (!opts.profile && opts.type) packages = packages.filter((p) => p.type === packageType(opts.type));
  if (opts.json) return printJson(packages);
  print(formatTable([
    { header: 'title', get: (p: PackageJson) => p.title },
    { header: 'version', get: (p) => p.version },
    { header: 'type', get: (p) => p.type },
    { header: 'size', get: (p) => p.dataSize ?? (p.url ? 'url' : '') },
    { header: 'checksum', get: (p) => (p.checksumAlgorithm ? `${p.checksumAlgorithm}:${(p.checksum ?? '').slice(0, 16)}` : '') },
    { header: 'id', get: (p) => p.id.id },
  ], packages));
}

/** A package by id or `title@version`. */
async function findPackage(client: AdminClient, ref: string): Promise<PackageJson> {
  if (/^[0-9a-f-]{36}$/i.test(ref)) return client.call<PackageJson>('GET', `/api/otaPackage/info/${ref}`);
  const at = ref.lastIndexOf('@');
  if (at <= 0) throw usageError(`a package is its id or TITLE@VERSION, got "${ref}"`);
  const [title, version] = [ref.slice(0, at), ref.slice(at + 1)];
  const found = (await fetchAll<PackageJson>(client, '/api/otaPackages', { textSearch: title }, 100_000)).find((p) => p.title === title && p.version === version);
  if (!found) throw new CliError(`no package ${title} version ${version}`);
  return found;
}

type AssignOptions = ConnectionOptions & { profile?: string; device?: string; type?: string };

async function assign(ref: string, opts: AssignOptions): Promise<void> {
  if (!opts.profile === !opts.device) throw usageError('give exactly one of --profile and --device');
  const client = new AdminClient(opts);
  const pkg = ref === 'none' ? undefined : await findPackage(client, ref);
  const type = pkg ? pkg.type : packageType(opts.type);
  const field = type === 'FIRMWARE' ? 'firmwareId' : 'softwareId';
  const value = pkg ? { entityType: 'OTA_PACKAGE', id: pkg.id.id } : null;
  const target = opts.profile ? await findProfile(client, opts.profile) : await findDevice(client, opts.device!);
  const saved = await client.call<EntityJson>('POST', opts.profile ? '/api/deviceProfile' : '/api/device', { body: { ...target, [field]: value } });
  if (opts.json) return printJson(saved);
  print(`${opts.profile ? 'profile' : 'device'} ${saved.name}: ${type.toLowerCase()} ${pkg ? `${pkg.title} ${pkg.version}` : 'none'}\n`);
}

async function status(ref: string, opts: ConnectionOptions & { profile?: string }): Promise<void> {
  const client = new AdminClient(opts);
  const pkg = await findPackage(client, ref);
  const profileId = opts.profile ? (await findProfile(client, opts.profile)).id.id : undefined;
  const summary = await client.call<{ total: number; queued: number; states: Record<string, number>; failed: { deviceName: string; error: string | null }[] }>('GET', `/api/otaPackage/${pkg.id.id}/rollout`, { query: { deviceProfileId: profileId } });
  if (opts.json) return printJson(summary);
  print(formatFields([['package', `${pkg.title} ${pkg.version}`], ['devices', summary.total], ['queued', summary.queued], ...Object.entries(summary.states).sort()]));
  if (summary.failed.length > 0) print(formatTable([{ header: 'failed device', get: (f: { deviceName: string }) => f.deviceName }, { header: 'error', get: (f) => f.error }], summary.failed));
}

/** Registers `fleetgate ota ...`. */
export function registerOtaCommands(program: Command): void {
  const ota = program.command('ota').description('over-the-air firmware and software packages');
  withConnection(ota.command('upload <file>').description('create a package and upload its file (SHA256 checked by the server)'))
    .requiredOption('--title <title>', 'package title (fw_title on the device)')
    .requiredOption('--version <version>', 'package version (fw_version)')
    .requiredOption('--profile <profile>', 'device profile (name or id) the package is for')
    .addOption(new Option('--type <type>', 'FIRMWARE or SOFTWARE').default('FIRMWARE'))
    .option('--tag <tag>', 'tag (default: "TITLE VERSION")')
    .option('--content-type <type>', 'content type of the file', 'application/octet-stream')
    .action((file: string, opts: UploadOptions) => upload(file, opts));
  withConnection(ota.command('list').description('list packages'))
    .option('--profile <profile>', 'only assignable packages of this profile (with --type)')
    .option('--type <type>', 'FIRMWARE or SOFTWARE')
    .option('--search <text>', 'title contains')
    .option('--limit <n>', 'at most this many', positiveInt, 10_000)
    .action((opts: ListOptions) => list(opts));
  withConnection(ota.command('assign <package>').description('assign a package (id or TITLE@VERSION, or "none" with --type) to a profile or one device'))
    .option('--profile <profile>', 'every device of this profile without its own package')
    .option('--device <device>', 'one device (its own package wins over the profile\'s)')
    .option('--type <type>', 'with "none": FIRMWARE or SOFTWARE')
    .action((ref: string, opts: AssignOptions) => assign(ref, opts));
  withConnection(ota.command('status <package>').description('rollout summary: devices per fw_state, failed ones with fw_error'))
    .option('--profile <profile>', 'profile (default: the package\'s)')
    .action((ref: string, opts: ConnectionOptions & { profile?: string }) => status(ref, opts));
}
