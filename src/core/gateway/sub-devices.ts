/**
 * A gateway's sub-devices: found by name, created on first sight (gateway spec §3), and guarded by ownership. ThingsBoard
 * lets any gateway adopt any same-named device (spec §3.2, §7 note 5); fleetgate lets a gateway speak only for its own
 * sub-devices: those whose `additionalInfo.lastConnectedGateway` is the gateway's id (set when the gateway created
 * them, or by an administrator who hands a device over).
 */
import type { Actor, DeviceIdentity } from '../api.ts';
import type { AuditRecorder } from '../audit.ts';
import { buildCredentials } from '../credentials.ts';
import { FleetgateError } from '../errors.ts';
import { newId, randomAlphanumeric } from '../ids.ts';
import type { Device, DeviceCredentials } from '../model.ts';
import type { Profiles } from '../profiles.ts';
import { UniqueViolation, type Store } from '../ports/store.ts';

/** A device name with the profile name it is created with (`default` unless a connect message named one). */
export interface WantedDevice {
  name: string;
  type: string;
}

/** The identity a sub-device's data is stored and routed under. */
export function subDeviceIdentity(device: Device): DeviceIdentity {
  return { deviceId: device.id, tenantId: device.tenantId, deviceName: device.name, profileId: device.profileId, credentialsType: 'ACCESS_TOKEN' };
}

/** True when `device` is a sub-device of `gatewayId`. */
export function isSubDeviceOf(device: Device, gatewayId: string): boolean {
  return device.id !== gatewayId && device.additionalInfo?.lastConnectedGateway === gatewayId;
}

/** Finds, checks and creates a gateway's sub-devices by name (shared by every gateway session of the node). */
export class SubDeviceDirectory {
  constructor(
    private readonly store: Store,
    private readonly profiles: Profiles,
    private readonly audit: AuditRecorder,
    private readonly maxSubDevices: number,
  ) {}

  /**
   * The gateway's sub-devices named in `wanted`, creating the missing ones when `create` is set. Throws, having
   * created nothing, when a name belongs to a device that is not this gateway's (PERMISSION_DENIED), is unknown and
   * `create` is off (NOT_FOUND), or would take the gateway past its sub-device limit (QUOTA_EXCEEDED), or when
   * `beforeCreate` throws for the devices that exist already.
   */
  async resolve(gateway: DeviceIdentity, wanted: readonly WantedDevice[], create: boolean, beforeCreate?: (found: Iterable<Device>) => void): Promise<Map<string, Device>> {
    const found = new Map<string, Device>();
    for (const device of await this.store.findDevicesByNames(gateway.tenantId, wanted.map((w) => w.name))) found.set(device.name, device);
    for (const device of found.values()) this.checkOwner(device, gateway);
    beforeCreate?.(found.values()); // a refusal here (a rate limit) must not leave new devices behind
    const missing = wanted.filter((w) => !found.has(w.name));
    if (missing.length === 0) return found;
    if (!create) {
      throw new FleetgateError('NOT_FOUND', `Device "${missing[0].name}" is not a sub-device of this gateway: announce it on v1/gateway/connect first`);
    }
    const count = await this.store.countSubDevices(gateway.deviceId);
    if (count + missing.length > this.maxSubDevices) {
      throw new FleetgateError('QUOTA_EXCEEDED', `Gateway already has ${count} sub-devices; ${missing.length} more would pass the limit of ${this.maxSubDevices}`);
    }
    for (const device of await this.createAll(gateway, missing)) found.set(device.name, device);
    return found;
  }

  private checkOwner(device: Device, gateway: DeviceIdentity): void {
    if (!isSubDeviceOf(device, gateway.deviceId)) {
      throw new FleetgateError('PERMISSION_DENIED', `Device "${device.name}" exists and is not a sub-device of this gateway`);
    }
  }

  /**
   * spec §3.3: profile named by type (created if missing), ACCESS_TOKEN credentials of 20 random characters,
   * `additionalInfo` `{"lastConnectedGateway":"<gateway id>"}`; all in one transaction. A name created meanwhile by
   * another node is read back (the unique name index decides) and must then be this gateway's too.
   */
  private async createAll(gateway: DeviceIdentity, missing: readonly WantedDevice[]): Promise<Device[]> {
    const actor: Actor = { userId: null, userName: null, source: { transport: 'mqtt' } };
    const profiles = new Map<string, Awaited<ReturnType<Profiles['findOrCreateByName']>>>();
    for (const type of new Set(missing.map((w) => w.type))) profiles.set(type, await this.profiles.findOrCreateByName(gateway.tenantId, type, actor));
    const raced: string[] = [];
    const created = await this.store.transaction(async (tx) => {
      const out: Device[] = [];
      for (const wanted of missing) {
        const profile = profiles.get(wanted.type)!;
        const now = Date.now();
        const device: Device = {
          id: newId(now),
          tenantId: gateway.tenantId,
          profileId: profile.id,
          name: wanted.name,
          type: profile.name,
          label: null,
          additionalInfo: { lastConnectedGateway: gateway.deviceId },
          createdByProvisioning: false,
          createdTime: now,
        };
        const built = buildCredentials('ACCESS_TOKEN', { token: randomAlphanumeric(20) });
        const credentials: DeviceCredentials = { id: newId(now), deviceId: device.id, credentialsType: 'ACCESS_TOKEN', ...built, createdTime: now, firstUsedTime: null };
        try {
          await tx.savepoint((sp) => sp.insertDevice(device, credentials));
        } catch (err) {
          if (err instanceof UniqueViolation && err.constraint === 'device_name') {
            raced.push(wanted.name);
            continue;
          }
          throw err;
        }
        await this.audit.record(
          {
            tenantId: gateway.tenantId,
            entityType: 'DEVICE',
            entityId: device.id,
            entityName: device.name,
            userId: null,
            userName: null,
            actionType: 'ADDED',
            actionData: { gatewayId: gateway.deviceId, gatewayName: gateway.deviceName },
            actionStatus: 'SUCCESS',
            actionFailureDetails: null,
            source: 'mqtt:gateway',
          },
          tx,
        );
        out.push(device);
      }
      return out;
    });
    if (raced.length > 0) {
      for (const device of await this.store.findDevicesByNames(gateway.tenantId, raced)) {
        this.checkOwner(device, gateway);
        created.push(device);
      }
    }
    return created;
  }
}
