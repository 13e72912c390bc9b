/**
 * OTA packages as core models them (spec thingsboard-ota §1.1 OtaPackageInfo). Plain data.
 */
import type { ChecksumAlgorithm } from './checksum.ts';

/** TB OtaPackageType. */
export type OtaType = 'FIRMWARE' | 'SOFTWARE';
export const OTA_TYPES: readonly OtaType[] = ['FIRMWARE', 'SOFTWARE'];

/** Size of the stored pieces of a package, bytes (one row of ota_package_chunk). */
export const OTA_PIECE_SIZE = 64 * 1024;

export interface OtaPackage {
  id: string;
  tenantId: string;
  deviceProfileId: string | null;
  type: OtaType;
  title: string;
  version: string;
  tag: string | null;
  url: string | null;
  fileName: string | null;
  contentType: string | null;
  checksumAlgorithm: ChecksumAlgorithm | null;
  checksum: string | null;
  dataSize: number | null;
  /** Where the bytes are (ota_package_chunk); null when the package has none. */
  blobId: string | null;
  additionalInfo: Record<string, unknown> | null;
  createdTime: number;
}

/** Prefix of the attribute and telemetry keys of a type: `fw` or `sw` (TB OtaPackageUtil). */
export const otaPrefix = (type: OtaType): 'fw' | 'sw' => (type === 'FIRMWARE' ? 'fw' : 'sw');

/** What a device or profile is assigned, per type (null = nothing). */
export interface OtaAssignment {
  firmwareId: string | null;
  softwareId: string | null;
}

/** One pending notification of the paced rollout. */
export interface RolloutItem {
  deviceId: string;
  type: OtaType;
  packageId: string;
  queuedTs: number;
}

/** Devices of one profile whose effective package is one package, by their reported state (§5). */
export interface RolloutSummary {
  packageId: string;
  deviceProfileId: string;
  type: OtaType;
  /** Devices whose effective package it is. */
  total: number;
  /** Devices per latest `fw_state` (`sw_state`); devices that reported nothing count as `NONE`. */
  states: Record<string, number>;
  /** Devices whose latest state is FAILED, with their latest `fw_error`. */
  failed: { deviceId: string; deviceName: string; error: string | null; ts: number }[];
  /** Devices still waiting in the rollout queue. */
  queued: number;
}
