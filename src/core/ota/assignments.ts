/**
 * Assignment of packages to profiles and devices (spec thingsboard-ota §3): validation on save (§3.2), the device's
 * own package winning over its profile's (§3.1), and what a change of a device's effective package triggers (§3.3):
 * a queued, paced notification (§3.4) or an immediate removal (§3.6).
 */
import type { AttributesApi } from '../api.ts';
import { FleetgateError } from '../errors.ts';
import type { Device, DeviceProfile } from '../model.ts';
import { queuedTelemetry, removedKeys } from './attributes.ts';
import { OTA_TYPES, type OtaAssignment, type OtaPackage, type OtaType, type RolloutItem } from './model.ts';
import type { Store } from '../ports/store.ts';

const bad = (message: string) => new FleetgateError('INVALID_ARGUMENT', message);
const word = (type: OtaType) => (type === 'FIRMWARE' ? 'firmware' : 'software');
const field = (type: OtaType): keyof OtaAssignment => (type === 'FIRMWARE' ? 'firmwareId' : 'softwareId');
/** Devices handled per transaction when a profile's package changes (TB pages by 100). */
const PAGE = 1000;

/** Requested assignment on a save: a package id, null to clear, undefined to keep. */
export type AssignmentInput = Partial<Record<keyof OtaAssignment, string | null>>;

export class OtaAssignments {
  constructor(
    private readonly store: Store,
    private readonly attributes: AttributesApi,
  ) {}

  /** What each target is assigned (devices and profiles alike). */
  async of(targetIds: string[]): Promise<Map<string, OtaAssignment>> {
    const rows = await this.store.ota.getAssignments(targetIds);
    const out = new Map<string, OtaAssignment>();
    for (const id of targetIds) out.set(id, { firmwareId: rows.get(id)?.get('FIRMWARE') ?? null, softwareId: rows.get(id)?.get('SOFTWARE') ?? null });
    return out;
  }

  /** §3.1: the package a device gets, its own or else its profile's. */
  async effective(device: Pick<Device, 'id' | 'profileId'>, type: OtaType): Promise<string | null> {
    const rows = await this.store.ota.getAssignments([device.id, device.profileId]);
    return rows.get(device.id)?.get(type) ?? rows.get(device.profileId)?.get(type) ?? null;
  }

  /** §3.2: checks the packages a device of `profileId` (or the profile `profileId` itself) is to be assigned. */
  async check(tenantId: string, profileId: string, input: AssignmentInput): Promise<void> {
    for (const type of OTA_TYPES) {
      const id = input[field(type)];
      if (!id) continue;
      const t = word(type);
      const pkg = await this.store.ota.getPackage(id);
      if (!pkg) throw bad(`Can't assign non-existent ${t}!`);
      if (pkg.tenantId !== tenantId) throw bad(`Can't assign ${t} from different tenant!`);
      if (pkg.type !== type) throw bad(`Can't assign ${t} with type: ${pkg.type}`);
      if (pkg.blobId === null && pkg.url === null) throw bad(`Can't assign ${t} with empty data!`);
      // TB NPEs on a package without a profile (spec §3.2 step 5); fleetgate answers the mismatch instead.
      if (pkg.deviceProfileId !== profileId) throw bad(`Can't assign ${t} with different deviceProfile!`);
    }
  }

  /**
   * After a device save: stores its own assignment (`input`), and for each type whose effective package changed
   * queues the new one or removes the old one (§3.3). `before` is the device as it was (undefined when created).
   */
  async deviceSaved(device: Device, input: AssignmentInput, before: Device | undefined): Promise<void> {
    const prior = before ? await this.of([before.id, before.profileId]) : undefined;
    for (const type of OTA_TYPES) {
      const requested = input[field(type)];
      if (requested !== undefined) await this.store.ota.setAssignment(device.id, 'DEVICE', type, requested);
    }
    const now = await this.of([device.id, device.profileId]);
    for (const type of OTA_TYPES) {
      const f = field(type);
      const old = prior ? (prior.get(before!.id)![f] ?? prior.get(before!.profileId)![f]) : null;
      const next = now.get(device.id)![f] ?? now.get(device.profileId)![f];
      if (old === next) continue;
      if (next !== null) await this.queue([device.id], next);
      else await this.remove(device, type);
    }
  }

  /** §3.3 "device created": queues the device's effective packages. */
  async deviceCreated(deviceId: string): Promise<void> {
    const device = await this.store.getDeviceById(deviceId);
    if (!device) return;
    for (const type of OTA_TYPES) {
      const id = await this.effective(device, type);
      if (id) await this.queue([device.id], id);
    }
  }

  /**
   * §3.3 "device created" for many provisioned devices (of the given profiles): one lookup for all of them, and
   * `deviceCreated` only for those that it shows have a package — usually none, so provisioning pays one query per group.
   */
  async devicesCreated(devices: readonly { id: string; profileId: string }[]): Promise<void> {
    const assigned = await this.store.ota.getAssignments([...new Set(devices.flatMap((d) => [d.id, d.profileId]))]);
    if (assigned.size === 0) return;
    for (const d of devices) if (assigned.has(d.id) || assigned.has(d.profileId)) await this.deviceCreated(d.id);
  }

  /** After a bulk import into a profile: its devices never queued get the profile's packages queued (§3.3). */
  async profileDevicesAdded(profileId: string): Promise<void> {
    const assigned = (await this.of([profileId])).get(profileId)!;
    for (const type of OTA_TYPES) {
      const packageId = assigned[field(type)];
      if (!packageId) continue;
      for (let after = ''; ; ) {
        const ids = await this.store.ota.devicesNeverQueued(profileId, type, after, PAGE);
        if (ids.length === 0) break;
        after = ids[ids.length - 1];
        await this.queue(ids, packageId);
      }
    }
  }

  /** After a profile save: its own assignment, then every device following it is queued or cleared (§3.3). */
  async profileSaved(profile: DeviceProfile, input: AssignmentInput, created: boolean): Promise<void> {
    const prior = (await this.of([profile.id])).get(profile.id)!;
    for (const type of OTA_TYPES) {
      const f = field(type);
      const requested = input[f];
      if (requested === undefined || requested === prior[f]) continue;
      await this.store.ota.setAssignment(profile.id, 'DEVICE_PROFILE', type, requested);
      if (created) continue; // §3.3: a created profile has no devices
      for (let after = ''; ; ) {
        const ids = await this.store.ota.devicesFollowingProfile(profile.id, type, after, PAGE);
        if (ids.length === 0) break;
        after = ids[ids.length - 1];
        if (requested !== null) await this.queue(ids, requested);
        else for (const id of ids) await this.remove({ id } as Device, type);
      }
    }
  }

  /** §3.4: queue rows plus target_* / QUEUED time series, one shared ts, in one transaction per page. */
  async queue(deviceIds: string[], packageId: string): Promise<void> {
    const pkg: OtaPackage | undefined = await this.store.ota.getPackage(packageId);
    if (!pkg) return;
    const ts = Date.now();
    const items: RolloutItem[] = deviceIds.map((deviceId) => ({ deviceId, type: pkg.type, packageId, queuedTs: ts }));
    await this.store.transaction(async (tx) => {
      await tx.ota.enqueueRollout(items);
      await tx.writeBatch({ telemetry: deviceIds.flatMap((id) => queuedTelemetry(id, pkg, ts)), attributes: [] });
    });
  }

  /** §3.6: immediate, unpaced: the shared keys go, the device is told which (time series stay). */
  async remove(device: Device, type: OtaType): Promise<void> {
    await this.attributes.delete(device, 'SHARED_SCOPE', removedKeys(type));
  }
}
