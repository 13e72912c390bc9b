/**
 * Core's over-the-air update service (spec thingsboard-ota): packages, assignment, paced rollout, device downloads
 * and the rollout summary, behind one object the admin API and the transports call.
 */
import type { Actor, AttributesApi } from '../api.ts';
import type { AuditRecorder } from '../audit.ts';
import type { CoreLogger, CoreObserver } from '../core-types.ts';
import type { Device, DeviceProfile, Page, PageQuery } from '../model.ts';
import type { OtaPackageFilter } from '../ports/ota-store.ts';
import { OtaAssignments, type AssignmentInput } from './assignments.ts';
import { OtaDownloads, sliceOf, type OtaLookup } from './download.ts';
import { type OtaAssignment, type OtaPackage, type OtaType, type RolloutSummary } from './model.ts';
import { OtaPackages, type OtaPackageInput, type OtaUpload } from './packages.ts';
import { Rollout, type RolloutSettings } from './rollout.ts';
import type { Store } from '../ports/store.ts';

export type { OtaLookup } from './download.ts';
export type { AssignmentInput } from './assignments.ts';
export type { OtaPackageInput, OtaUpload } from './packages.ts';

export interface OtaSettings extends RolloutSettings {
  /** Largest package accepted on upload, bytes. */
  maxPackageBytes: number;
}

/** The OTA service. Devices and Profiles call the assignment hooks; transports call lookup/read. */
export class Ota {
  readonly packages: OtaPackages;
  readonly assignments: OtaAssignments;
  readonly downloads: OtaDownloads;
  readonly rollout: Rollout;
  private sweepTimer: NodeJS.Timeout | undefined;

  constructor(
    private readonly store: Store,
    attributes: AttributesApi,
    audit: AuditRecorder,
    settings: OtaSettings,
    private readonly logger: CoreLogger,
    private readonly observer?: CoreObserver,
  ) {
    this.packages = new OtaPackages(store, audit, async (tenantId, id) => !!(await store.getProfile(tenantId, id)), settings.maxPackageBytes);
    this.assignments = new OtaAssignments(store, attributes);
    this.downloads = new OtaDownloads(store, this.assignments);
    this.rollout = new Rollout(store, this.assignments, attributes, settings, logger);
  }

  /** Starts the rollout worker and the sweep of interrupted uploads. */
  start(): void {
    this.rollout.start();
    const sweep = () => this.packages.sweep().catch((err) => this.logger.warn({ err }, 'ota: sweeping interrupted uploads failed'));
    void sweep();
    this.sweepTimer = setInterval(sweep, 60 * 60 * 1000);
    this.sweepTimer.unref();
  }

  async stop(): Promise<void> {
    clearInterval(this.sweepTimer);
    await this.rollout.stop();
  }

  // ---- admin
  savePackage(tenantId: string, input: OtaPackageInput, actor: Actor): Promise<OtaPackage> {
    return this.packages.save(tenantId, input, actor);
  }
  uploadPackage(tenantId: string, id: string, upload: OtaUpload, actor: Actor): Promise<OtaPackage> {
    return this.packages.upload(tenantId, id, upload, actor);
  }
  getPackage(tenantId: string, id: string): Promise<OtaPackage> {
    return this.packages.getOwned(tenantId, id);
  }
  getPackageInfo(tenantId: string, id: string): Promise<OtaPackage> {
    return this.packages.getInfo(tenantId, id);
  }
  listPackages(tenantId: string, query: PageQuery, filter?: OtaPackageFilter): Promise<Page<OtaPackage>> {
    return this.packages.list(tenantId, query, filter);
  }
  deletePackage(tenantId: string, id: string, actor: Actor): Promise<void> {
    return this.packages.delete(tenantId, id, actor);
  }
  /** The whole package as pieces (admin download R5). */
  readPackage(pkg: OtaPackage): AsyncGenerator<Buffer> {
    return this.packages.read(pkg, 0, pkg.dataSize ?? 0);
  }
  /** What devices and profiles are assigned (for their JSON). */
  assignmentsOf(targetIds: string[]): Promise<Map<string, OtaAssignment>> {
    return this.assignments.of(targetIds);
  }
  /** R9: devices of the profile that follow its package of `type` (no own assignment). */
  countDevicesFollowingProfile(profileId: string, type: OtaType): Promise<number> {
    return this.store.ota.countDevicesFollowingProfile(profileId, type);
  }

  // ---- device and profile saves (called by Devices and Profiles)
  checkAssignment(tenantId: string, profileId: string, input: AssignmentInput): Promise<void> {
    return this.assignments.check(tenantId, profileId, input);
  }
  deviceSaved(device: Device, input: AssignmentInput, before: Device | undefined): Promise<void> {
    return this.assignments.deviceSaved(device, input, before);
  }
  /** A device created outside the admin API (provisioning): its profile's packages are queued. */
  deviceCreated(deviceId: string): Promise<void> {
    return this.assignments.deviceCreated(deviceId);
  }
  /** Many devices created by provisioning (`deviceCreated` for each, with one lookup when none has a package). */
  devicesCreated(devices: readonly { id: string; profileId: string }[]): Promise<void> {
    return this.assignments.devicesCreated(devices);
  }
  /** Devices were imported into a profile: those never queued get its packages queued. */
  profileDevicesAdded(profileId: string): Promise<void> {
    return this.assignments.profileDevicesAdded(profileId);
  }
  profileSaved(profile: DeviceProfile, input: AssignmentInput, created: boolean): Promise<void> {
    return this.assignments.profileSaved(profile, input, created);
  }

  // ---- devices
  /** §4.0 lookup of the package a device may download. */
  lookup(deviceId: string, type: OtaType): Promise<OtaLookup> {
    return this.downloads.lookup(deviceId, type);
  }
  /** §4.0 slice `[start, end)` for a chunk request. */
  slice(pkg: OtaPackage, size: number, chunk: number): [number, number] {
    return sliceOf(pkg.dataSize ?? 0, size, chunk);
  }
  /** Bytes `[start, end)` of a package as one buffer (one indexed read). */
  async readRange(pkg: OtaPackage, start: number, end: number): Promise<Buffer> {
    const data = await this.packages.readRange(pkg, start, end);
    this.observer?.otaServed?.(data.length);
    return data;
  }
  /** Bytes `[start, end)` as a stream of pieces (bounded memory). */
  async *readStream(pkg: OtaPackage, start: number, end: number): AsyncGenerator<Buffer> {
    let bytes = 0;
    try {
      for await (const part of this.packages.read(pkg, start, end)) {
        bytes += part.length;
        yield part;
      }
    } finally {
      this.observer?.otaServed?.(bytes);
    }
  }

  /** The rollout of a package in one profile: devices per reported state, the failed ones with their error (§5). */
  async rolloutSummary(tenantId: string, packageId: string, profileId?: string): Promise<RolloutSummary> {
    const pkg = await this.packages.getOwned(tenantId, packageId);
    const deviceProfileId = profileId ?? pkg.deviceProfileId ?? '';
    const rows = deviceProfileId ? await this.store.ota.rolloutDevices(deviceProfileId, pkg.type, pkg.id) : [];
    const states: Record<string, number> = {};
    const failed: RolloutSummary['failed'] = [];
    for (const r of rows) {
      const state = r.state ?? 'NONE';
      states[state] = (states[state] ?? 0) + 1;
      if (state === 'FAILED') failed.push({ deviceId: r.deviceId, deviceName: r.deviceName, error: r.error, ts: r.stateTs ?? 0 });
    }
    return { packageId: pkg.id, deviceProfileId, type: pkg.type, total: rows.length, states, failed, queued: await this.store.ota.countQueued(pkg.id) };
  }
}
