/**
 * The storage core needs for over-the-air updates. Implemented by src/store/kysely/ota-queries.ts for SQLite and
 * PostgreSQL; reached through `Store.ota`, so it joins the caller's transaction.
 */
import type { Page, PageQuery } from '../model.ts';
import type { OtaPackage, OtaType, RolloutItem } from '../ota/model.ts';

/** Filters of a package list (spec §1.2 R6/R7). */
export interface OtaPackageFilter {
  deviceProfileId?: string;
  type?: OtaType;
  /** Only packages with bytes or a URL (R7). */
  assignable?: boolean;
}

export interface OtaStore {
  insertPackage(pkg: OtaPackage): Promise<void>;
  /** Rewrites the package's metadata (not its bytes: `blobId` is left as stored). */
  updatePackage(pkg: OtaPackage): Promise<void>;
  getPackage(id: string): Promise<OtaPackage | undefined>;
  findPackageByTitleVersion(tenantId: string, title: string, version: string): Promise<OtaPackage | undefined>;
  listPackages(tenantId: string, query: PageQuery, filter: OtaPackageFilter): Promise<Page<OtaPackage>>;
  /** Deletes the package and its bytes; false when it did not exist. */
  deletePackage(id: string): Promise<boolean>;

  /** Registers a blob being written (so a crash leaves something to sweep). */
  beginBlob(blobId: string, time: number): Promise<void>;
  /** Writes pieces `firstIdx`, `firstIdx + 1`, ... of a blob. */
  writePieces(blobId: string, firstIdx: number, pieces: Buffer[]): Promise<void>;
  /**
   * Attaches a fully written blob to a package that has no bytes yet, with the upload's fields; false when the package
   * is gone or got bytes meanwhile (then the caller drops the blob).
   */
  attachBlob(pkg: OtaPackage): Promise<boolean>;
  /** Deletes a blob and its pieces. */
  dropBlob(blobId: string): Promise<void>;
  /** Drops blobs started before `before` that no package references (uploads a crash cut short); returns how many. */
  sweepOrphanBlobs(before: number): Promise<number>;
  /** Pieces `fromIdx..toIdx` (inclusive) of a blob, in order: one indexed range read. */
  readPieces(blobId: string, fromIdx: number, toIdx: number): Promise<Buffer[]>;

  /** Assigned package ids of devices or profiles (`targetIds`), as `targetId -> type -> packageId`. */
  getAssignments(targetIds: string[]): Promise<Map<string, Map<OtaType, string>>>;
  /** Sets (packageId) or clears (null) what a device or profile is assigned. */
  setAssignment(targetId: string, kind: 'DEVICE' | 'DEVICE_PROFILE', type: OtaType, packageId: string | null): Promise<void>;
  /** How many devices and profiles are assigned the package (R8 refuses deletion while any is). */
  countAssignments(packageId: string): Promise<{ devices: number; profiles: number }>;
  /** Ids of devices of a profile without their own assignment of `type`, after `afterId`, by id (paging by keyset). */
  devicesFollowingProfile(profileId: string, type: OtaType, afterId: string, limit: number): Promise<string[]>;
  /** Like devicesFollowingProfile, but only devices never queued for `type` (no `target_fw_ts` / `target_sw_ts`). */
  devicesNeverQueued(profileId: string, type: OtaType, afterId: string, limit: number): Promise<string[]>;
  /** R9: devices of the profile without their own assignment of `type`. */
  countDevicesFollowingProfile(profileId: string, type: OtaType): Promise<number>;

  /** Puts devices in the rollout queue; a device already queued for the type gets the new package (superseded). */
  enqueueRollout(items: RolloutItem[]): Promise<void>;
  /**
   * Cluster-wide pacing: when the pacer allows (`next_at <= now`), leases up to `max` queued items whose lease has run
   * out (oldest first) until `now + leaseMs`, and moves the pacer to `now + spacingMs x leased`. Empty otherwise.
   */
  claimRollout(now: number, max: number, leaseMs: number, spacingMs: number): Promise<RolloutItem[]>;
  /** Removes a processed item (unless it was superseded by a newer package meanwhile). */
  completeRollout(item: RolloutItem): Promise<void>;
  /** Items queued for a package (the rollout summary). */
  countQueued(packageId: string): Promise<number>;
  /** Devices of a profile whose effective package of `type` is `packageId`, with their latest state and error. */
  rolloutDevices(profileId: string, type: OtaType, packageId: string): Promise<{ deviceId: string; deviceName: string; state: string | null; stateTs: number | null; error: string | null }[]>;
}
