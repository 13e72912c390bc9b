import type { Actor, CredentialsInput, NameConflictPolicy, DeviceExportRow, DeviceImportResult, DeviceImportRow, DeviceInput, DevicesApi, ImportOptions } from './api.ts';
import type { AuditRecorder } from './audit.ts';
import { exportDevices, importDevices } from './device-import.ts';
import { buildCredentials, CredentialsRejected, parseMqttBasicValue } from './credentials.ts';
import { FleetgateError, notFound } from './errors.ts';
import { newId, randomAlphanumeric } from './ids.ts';
import { CREDENTIALS_TYPES, type Device, type DeviceCredentials, type DeviceProfile, type Page, type PageQuery } from './model.ts';
import type { Profiles } from './profiles.ts';
import { UniqueViolation, type Store } from './ports/store.ts';
import { channels, type Bus, type DeviceUpdated } from './ports/bus.ts';
import type { Ota } from './ota/ota.ts';
import type { SubDeviceChange } from './gateway/notices.ts';

const DUPLICATE_CREDENTIALS = 'Device credentials are already assigned to another device!';

/** TB @Length(max = 255) on Device name, type and label: `Validation error: <field> length must be ...`, sorted. */
function checkLengths(input: DeviceInput): void {
  const long = (['label', 'name', 'type'] as const).filter((field) => typeof input[field] === 'string' && (input[field] as string).length > 255);
  if (long.length > 0) throw new FleetgateError('INVALID_ARGUMENT', `Validation error: ${long.map((field) => `${field} length must be equal or less than 255`).join(', ')}`);
}

/** Devices and their credentials, as the admin API manages them. */
export class Devices implements DevicesApi {
  /** OTA assignment checks and triggers (spec thingsboard-ota §3), set by createCore. */
  ota: Ota | undefined;

  constructor(
    private readonly store: Store,
    private readonly profiles: Profiles,
    private readonly audit: AuditRecorder,
    private readonly credentialsChanged: (credentialsId: string, deviceId: string) => Promise<void>,
    /** Publishes the notices of saved changes; never fails the change (core's BusRepublisher). */
    private readonly bus: Pick<Bus, 'publish'>,
    /** Told after a device was renamed or deleted (its gateway is notified, gateway spec §4.9). */
    private readonly changed: (device: Device, change: SubDeviceChange) => Promise<void> = async () => {},
    /** Told after an update changed what sessions hold of the device (see identityChanged); every node hears it. */
    private readonly updated: (update: DeviceUpdated, tenantId: string) => Promise<void> = async () => {},
  ) {}

  /**
   * After an update: when a field that sessions, logins, gateway sub-device lookups, export or rules read changed
   * (name, profile and so type, gateway flag, owning gateway), every node drops its cached logins of the device and
   * its open sessions of it (MQTT, CoAP observations, HTTP long polls, gateway sub-devices) take the new identity.
   * TB: an open session's device info follows a device update (DeviceAwareSessionContext.onDeviceUpdate).
   */
  private async identityChanged(existing: Device, device: Device): Promise<void> {
    const owner = (d: Device) => (typeof d.additionalInfo?.lastConnectedGateway === 'string' ? d.additionalInfo.lastConnectedGateway : null);
    const gateway = (d: Device) => d.additionalInfo?.gateway === true;
    if (existing.name === device.name && existing.profileId === device.profileId && gateway(existing) === gateway(device) && owner(existing) === owner(device)) return;
    await this.updated({ kind: 'device-updated', deviceId: device.id, deviceName: device.name, profileId: device.profileId, lastConnectedGateway: owner(device) }, device.tenantId);
  }

  /**
   * The profile of a saved device: `deviceProfileId` if given; else, as ThingsBoard does, the profile named by `type`
   * (created if missing) when `type` is given; else the device's current profile, or the tenant's default one.
   */
  private async profileFor(tenantId: string, input: DeviceInput, existing: Device | undefined, actor: Actor): Promise<DeviceProfile> {
    if (input.deviceProfileId) return this.profiles.get(tenantId, input.deviceProfileId);
    const type = typeof input.type === 'string' ? input.type.trim() : '';
    if (type !== '' && type !== existing?.type) return this.profiles.findOrCreateByName(tenantId, type, actor);
    return existing ? this.profiles.get(tenantId, existing.profileId) : this.profiles.getDefault(tenantId);
  }

  async save(tenantId: string, input: DeviceInput, actor: Actor, accessToken?: string): Promise<Device> {
    if (!input || typeof input.name !== 'string' || input.name.trim() === '') throw new FleetgateError('INVALID_ARGUMENT', 'Device name should be specified!');
    checkLengths(input);
    const existing = input.id ? await this.get(tenantId, input.id) : undefined;
    const profile = await this.profileFor(tenantId, input, existing, actor);
    const device: Device = {
      id: existing?.id ?? newId(),
      tenantId,
      profileId: profile.id,
      name: input.name.trim(),
      type: profile.name,
      label: input.label ?? null,
      additionalInfo: input.additionalInfo ?? null,
      createdByProvisioning: existing?.createdByProvisioning ?? false,
      createdTime: existing?.createdTime ?? Date.now(),
    };
    const otaInput = { firmwareId: input.firmwareId, softwareId: input.softwareId };
    await this.ota?.checkAssignment(tenantId, profile.id, otaInput);
    try {
      if (existing) {
        await this.store.updateDevice(device);
        // Also the gateway flag, which travels with cached authentications: a flipped one must count at the next CONNECT.
        await this.identityChanged(existing, device);
      } else {
        const token = accessToken ?? randomAlphanumeric(20);
        const built = this.build({ deviceId: device.id, credentialsType: 'ACCESS_TOKEN', credentialsId: token });
        const creds: DeviceCredentials = { id: newId(), deviceId: device.id, credentialsType: 'ACCESS_TOKEN', ...built, createdTime: device.createdTime, firstUsedTime: null };
        await this.store.insertDevice(device, creds);
        await this.credentialsChanged(creds.credentialsId, device.id);
      }
    } catch (err) {
      throw this.uniqueError(err);
    }
    await this.ota?.deviceSaved(device, otaInput, existing);
    await this.audit.action(actor, tenantId, { type: 'DEVICE', id: device.id, name: device.name }, existing ? 'UPDATED' : 'ADDED');
    if (existing && existing.name !== device.name) await this.changed(device, { kind: 'renamed', from: existing.name });
    return device;
  }

  private uniqueError(err: unknown): unknown {
    if (err instanceof UniqueViolation) {
      if (err.constraint === 'device_name') return new FleetgateError('ALREADY_EXISTS', 'Device with such name already exists!');
      if (err.constraint === 'credentials_id') return new FleetgateError('ALREADY_EXISTS', DUPLICATE_CREDENTIALS);
    }
    return err;
  }

  private build(input: CredentialsInput): { credentialsId: string; credentialsValue: string | null } {
    if (!CREDENTIALS_TYPES.includes(input.credentialsType)) throw new FleetgateError('INVALID_ARGUMENT', `Unknown credentialsType: ${String(input.credentialsType)}`);
    try {
      if (input.credentialsType === 'MQTT_BASIC') {
        const v = parseMqttBasicValue(input.credentialsValue ?? null);
        return buildCredentials('MQTT_BASIC', { clientId: v.clientId ?? undefined, userName: v.userName ?? undefined, password: v.password ?? undefined });
      }
      if (input.credentialsType === 'X509_CERTIFICATE') return buildCredentials('X509_CERTIFICATE', { certificate: input.credentialsValue ?? undefined });
      return buildCredentials(input.credentialsType, { token: input.credentialsId ?? undefined });
    } catch (err) {
      if (err instanceof CredentialsRejected) throw new FleetgateError('INVALID_ARGUMENT', err.message);
      throw err;
    }
  }

  async get(tenantId: string, id: string): Promise<Device> {
    const device = await this.store.getDevice(tenantId, id);
    if (!device) throw notFound(`Device with id [${id}] is not found`);
    return device;
  }

  async findByName(tenantId: string, name: string): Promise<Device> {
    const device = await this.store.findDeviceByName(tenantId, name);
    if (!device) throw notFound(`Device with name [${name}] is not found`);
    return device;
  }

  list(tenantId: string, query: PageQuery & { profileId?: string }): Promise<Page<Device>> {
    return this.store.listDevices(tenantId, query);
  }

  async delete(tenantId: string, id: string, actor: Actor): Promise<void> {
    const device = await this.get(tenantId, id);
    const creds = await this.store.getCredentialsOfDevice(id);
    await this.store.deleteDevice(tenantId, id);
    if (creds) await this.credentialsChanged(creds.credentialsId, id);
    await this.bus.publish(channels.device(id), { kind: 'device-deleted', deviceId: id });
    await this.audit.action(actor, tenantId, { type: 'DEVICE', id, name: device.name }, 'DELETED');
    await this.changed(device, { kind: 'deleted' });
  }

  async getCredentials(tenantId: string, deviceId: string): Promise<DeviceCredentials> {
    await this.get(tenantId, deviceId);
    const creds = await this.store.getCredentialsOfDevice(deviceId);
    if (!creds) throw notFound(`Device credentials for device [${deviceId}] are not found`);
    return creds;
  }

  async saveCredentials(tenantId: string, input: CredentialsInput, actor: Actor): Promise<DeviceCredentials> {
    if (!input || typeof input.deviceId !== 'string') throw new FleetgateError('INVALID_ARGUMENT', 'Device id should be specified!');
    const current = await this.getCredentials(tenantId, input.deviceId);
    // fleetgate accepts a body without `id` (the device's row is meant); TB answers `Credentials for this device are already specified!`.
    if (input.id !== undefined && input.id !== current.id) throw new FleetgateError('INVALID_ARGUMENT', 'Unable to update non-existent device credentials!');
    const built = this.build(input);
    const updated: DeviceCredentials = { ...current, credentialsType: input.credentialsType, ...built, firstUsedTime: null };
    try {
      await this.store.updateCredentials(updated);
    } catch (err) {
      throw this.uniqueError(err);
    }
    await this.credentialsChanged(current.credentialsId, input.deviceId);
    await this.credentialsChanged(updated.credentialsId, input.deviceId);
    // Every node ends the sessions that authenticated with the old credentials (MQTT, CoAP observations, HTTP long polls).
    await this.bus.publish(channels.device(input.deviceId), { kind: 'credentials-revoked', credentialsId: current.credentialsId, deviceId: input.deviceId });
    // Replaced by an administrator (e.g. after a theft): credentials still in a rotation's grace period die too.
    for (const retired of await this.store.deleteCredentialsGrace(Date.now(), input.deviceId)) await this.credentialsChanged(retired, input.deviceId);
    const device = await this.get(tenantId, input.deviceId);
    await this.audit.action(actor, tenantId, { type: 'DEVICE', id: device.id, name: device.name }, 'CREDENTIALS_UPDATED', { credentialsType: updated.credentialsType });
    return updated;
  }

  getByIds(tenantId: string, ids: string[]): Promise<Device[]> {
    return this.store.getDevicesByIds(tenantId, ids);
  }

  /** TB's uniquify: the first free `<name><sep><suffix>`. */
  private async freeName(tenantId: string, name: string, naming: NameConflictPolicy): Promise<string> {
    for (let i = 1; i <= 1000; i++) {
      const candidate = `${name}${naming.separator}${naming.strategy === 'INCREMENTAL' ? i : randomAlphanumeric(6)}`;
      if (!(await this.store.findDeviceByName(tenantId, candidate))) return candidate;
    }
    throw new FleetgateError('ALREADY_EXISTS', 'Device with such name already exists!');
  }

  async saveWithCredentials(tenantId: string, input: DeviceInput, credentials: Omit<CredentialsInput, 'deviceId'>, actor: Actor, naming?: NameConflictPolicy): Promise<Device> {
    if (!input || typeof input.name !== 'string' || input.name.trim() === '') throw new FleetgateError('INVALID_ARGUMENT', 'Device name should be specified!');
    checkLengths(input);
    const existing = input.id ? await this.get(tenantId, input.id) : undefined;
    let name = input.name.trim();
    if (naming?.policy === 'UNIQUIFY') {
      const clash = await this.store.findDeviceByName(tenantId, name);
      if (clash && clash.id !== existing?.id) name = await this.freeName(tenantId, name, naming);
    }
    const profile = await this.profileFor(tenantId, input, existing, actor);
    const device: Device = {
      id: existing?.id ?? newId(),
      tenantId,
      profileId: profile.id,
      name,
      type: profile.name,
      label: input.label ?? null,
      additionalInfo: input.additionalInfo ?? null,
      createdByProvisioning: existing?.createdByProvisioning ?? false,
      createdTime: existing?.createdTime ?? Date.now(),
    };
    const built = this.build({ ...credentials, deviceId: device.id });
    const previous = existing ? await this.store.getCredentialsOfDevice(device.id) : undefined;
    const creds: DeviceCredentials = {
      id: previous?.id ?? newId(),
      deviceId: device.id,
      credentialsType: credentials.credentialsType,
      ...built,
      createdTime: previous?.createdTime ?? device.createdTime,
      firstUsedTime: null,
    };
    try {
      if (existing) {
        await this.store.transaction(async (tx) => {
          await tx.updateDevice(device);
          await tx.updateCredentials(creds);
        });
      } else {
        await this.store.insertDevice(device, creds);
      }
    } catch (err) {
      throw this.uniqueError(err);
    }
    if (existing) await this.identityChanged(existing, device);
    if (previous) {
      await this.credentialsChanged(previous.credentialsId, device.id);
      await this.bus.publish(channels.device(device.id), { kind: 'credentials-revoked', credentialsId: previous.credentialsId, deviceId: device.id });
    }
    await this.credentialsChanged(creds.credentialsId, device.id);
    await this.audit.action(actor, tenantId, { type: 'DEVICE', id: device.id, name: device.name }, existing ? 'UPDATED' : 'ADDED', { credentialsType: creds.credentialsType });
    return device;
  }

  async importDevices(tenantId: string, profileId: string, rows: DeviceImportRow[], actor: Actor, options?: ImportOptions): Promise<DeviceImportResult> {
    // New credentials need no cache invalidation: DeviceAuth caches a miss for 2 s at most.
    const result = await importDevices(this.store, this.audit, await this.profiles.get(tenantId, profileId), rows, actor, options);
    if (result.created > 0) await this.ota?.profileDevicesAdded(profileId); // spec thingsboard-ota §3.3 "device created"
    return result;
  }

  async exportDevices(tenantId: string, profileId: string | undefined, actor: Actor): Promise<DeviceExportRow[]> {
    const profile = profileId ? await this.profiles.get(tenantId, profileId) : undefined;
    return exportDevices(this.store, this.audit, tenantId, profile, actor);
  }
}
