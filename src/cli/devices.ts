/** `fleetgate device create|list|show|delete|credentials` (import and export are in import-export.ts). */
import { readFileSync } from 'node:fs';
import type { Command } from 'commander';
import { AdminClient, withConnection, type ConnectionOptions } from './api-client.ts';
import { positiveInt, usageError } from './errors.ts';
import { fetchAll, findDevice, findProfile, type EntityJson } from './lookup.ts';
import { formatFields, formatTable, formatTime, print, printJson } from './output.ts';

type DeviceJson = EntityJson & { type: string; label: string | null; createdTime: number; additionalInfo?: Record<string, unknown> | null };
type CredentialsJson = { credentialsType: string; credentialsId: string; credentialsValue: string | null };

/** The credentials as `key value` fields (MQTT_BASIC's JSON value spread out). */
function credentialFields(c: CredentialsJson): [string, unknown][] {
  if (c.credentialsType === 'ACCESS_TOKEN') return [['credentials', 'ACCESS_TOKEN'], ['accessToken', c.credentialsId]];
  if (c.credentialsType === 'MQTT_BASIC') {
    const v = JSON.parse(c.credentialsValue ?? '{}') as Record<string, string | null>;
    return [['credentials', 'MQTT_BASIC'], ['clientId', v.clientId], ['username', v.userName], ['password', v.password]];
  }
  return [['credentials', c.credentialsType], ['credentialsId', c.credentialsId], ['certificate', c.credentialsValue]];
}

function deviceFields(d: DeviceJson): [string, unknown][] {
  const info = d.additionalInfo ?? {};
  const gateway: [string, unknown][] = info.gateway === true ? [['gateway', 'yes']] : typeof info.lastConnectedGateway === 'string' ? [['gateway', info.lastConnectedGateway]] : [];
  return [['name', d.name], ['id', d.id.id], ['profile', d.type], ['label', d.label], ['created', formatTime(d.createdTime)], ...gateway];
}

type CreateOptions = ConnectionOptions & { profile?: string; label?: string; token?: string; gateway?: boolean };

async function create(name: string, opts: CreateOptions): Promise<void> {
  const client = new AdminClient(opts);
  const profileId = opts.profile ? (await findProfile(client, opts.profile)).id.id : undefined;
  const device = await client.call<DeviceJson>('POST', '/api/device', {
    query: { accessToken: opts.token },
    body: { name, label: opts.label ?? null, ...(opts.gateway ? { additionalInfo: { gateway: true } } : {}), ...(profileId ? { deviceProfileId: { entityType: 'DEVICE_PROFILE', id: profileId } } : {}) },
  });
  const creds = await client.call<CredentialsJson>('GET', `/api/device/${device.id.id}/credentials`);
  if (opts.json) return printJson({ ...device, credentials: creds });
  print(formatFields([...deviceFields(device), ...credentialFields(creds)]));
}

type ListOptions = ConnectionOptions & { profile?: string; search?: string; limit: number };

async function list(opts: ListOptions): Promise<void> {
  const client = new AdminClient(opts);
  const query = { textSearch: opts.search, sortProperty: 'name', sortOrder: 'ASC', type: opts.profile ? (await findProfile(client, opts.profile)).name : undefined };
  const devices = await fetchAll<DeviceJson>(client, '/api/tenant/devices', query, opts.limit);
  if (opts.json) return printJson(devices);
  print(formatTable([
    { header: 'name', get: (d: DeviceJson) => d.name },
    { header: 'profile', get: (d) => d.type },
    { header: 'label', get: (d) => d.label },
    { header: 'created', get: (d) => formatTime(d.createdTime) },
    { header: 'id', get: (d) => d.id.id },
  ], devices));
}

type CredentialsOptions = ConnectionOptions & { token?: string; clientId?: string; mqttUsername?: string; mqttPassword?: string; certificate?: string };

/** The credentials to set, from the options; undefined when none were given (show only). */
function credentialsToSet(deviceId: string, opts: CredentialsOptions): Record<string, unknown> | undefined {
  const mqtt = opts.clientId !== undefined || opts.mqttUsername !== undefined || opts.mqttPassword !== undefined;
  const kinds = [opts.token !== undefined, mqtt, opts.certificate !== undefined].filter(Boolean).length;
  if (kinds === 0) return undefined;
  if (kinds > 1) throw usageError('give one kind of credentials: --token, or --client-id/--mqtt-username/--mqtt-password, or --certificate');
  const id = { entityType: 'DEVICE', id: deviceId };
  if (opts.token !== undefined) return { deviceId: id, credentialsType: 'ACCESS_TOKEN', credentialsId: opts.token };
  if (mqtt) {
    const value = { clientId: opts.clientId ?? null, userName: opts.mqttUsername ?? null, password: opts.mqttPassword ?? null };
    return { deviceId: id, credentialsType: 'MQTT_BASIC', credentialsValue: JSON.stringify(value) };
  }
  let pem: string;
  try {
    pem = readFileSync(opts.certificate!, 'utf8');
  } catch (err) {
    throw usageError(`cannot read --certificate ${opts.certificate}: ${(err as Error).message}`);
  }
  return { deviceId: id, credentialsType: 'X509_CERTIFICATE', credentialsValue: pem };
}

async function credentials(ref: string, opts: CredentialsOptions): Promise<void> {
  const client = new AdminClient(opts);
  const device = await findDevice(client, ref);
  const update = credentialsToSet(device.id.id, opts);
  const creds = update
    ? await client.call<CredentialsJson>('POST', '/api/device/credentials', { body: update })
    : await client.call<CredentialsJson>('GET', `/api/device/${device.id.id}/credentials`);
  if (opts.json) return printJson(creds);
  print(formatFields([['name', device.name], ...credentialFields(creds)]));
}

/** Registers `device create|list|show|delete|credentials` on the `device` command. */
export function registerDeviceCommands(device: Command): void {
  withConnection(
    device
      .command('create <name>')
      .description('create a device with access-token credentials (generated unless --token)')
      .option('--profile <profile>', 'device profile (name or id); the default profile if absent')
      .option('--label <label>', 'label')
      .option('--token <token>', 'access token')
      .option('--gateway', 'make it a gateway (additionalInfo.gateway true): it may speak for sub-devices on v1/gateway/*'),
  ).action(create);
  withConnection(
    device
      .command('list')
      .description('list devices, by name')
      .option('--profile <profile>', 'only devices of this profile (name or id)')
      .option('--search <text>', 'only names containing this text')
      .option('--limit <n>', 'most devices to list', positiveInt, 1000),
  ).action(list);
  withConnection(device.command('show <device>').description('show a device (name or id) and its credentials type')).action(async (ref: string, opts: ConnectionOptions) => {
    const client = new AdminClient(opts);
    const found = (await findDevice(client, ref)) as DeviceJson;
    const creds = await client.call<CredentialsJson>('GET', `/api/device/${found.id.id}/credentials`);
    if (opts.json) printJson({ ...found, credentialsType: creds.credentialsType });
    else print(formatFields([...deviceFields(found), ['credentials', creds.credentialsType]]));
  });
  withConnection(device.command('delete <device>').description('delete a device (name or id) with its credentials and data')).action(async (ref: string, opts: ConnectionOptions) => {
    const client = new AdminClient(opts);
    const found = await findDevice(client, ref);
    await client.call('DELETE', `/api/device/${found.id.id}`);
    if (opts.json) printJson({ deleted: found.id.id, name: found.name });
    else print(`deleted device ${found.name} (${found.id.id})\n`);
  });
  withConnection(
    device
      .command('credentials <device>')
      .description('show a device\'s credentials, or replace them with the options given')
      .option('--token <token>', 'set an access token')
      .option('--client-id <id>', 'set MQTT_BASIC client id')
      .option('--mqtt-username <name>', 'set MQTT_BASIC user name')
      .option('--mqtt-password <password>', 'set MQTT_BASIC password')
      .option('--certificate <file>', 'set an X.509 certificate (PEM file)'),
  ).action(credentials);
}
