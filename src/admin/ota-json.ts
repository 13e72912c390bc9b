/**
 * ThingsBoard's OtaPackageInfo / OtaPackage JSON (spec thingsboard-ota §1.1) and the rollout summary.
 */
import type { OtaAssignment, OtaPackage, RolloutSummary } from '../core/ota/model.ts';

const id = (entityType: string, value: string | null) => (value === null ? null : { entityType, id: value });

/**
 * OtaPackageInfo. `hasData` (spec §7.2): false on create; true for a package with bytes or a URL (R4/R6), forced true
 * on R7 rows by the caller.
 */
export function otaPackageInfoJson(pkg: OtaPackage, hasData = pkg.blobId !== null || pkg.url !== null): Record<string, unknown> {
  return {
    id: id('OTA_PACKAGE', pkg.id),
    createdTime: pkg.createdTime,
    additionalInfo: pkg.additionalInfo,
    tenantId: id('TENANT', pkg.tenantId),
    deviceProfileId: id('DEVICE_PROFILE', pkg.deviceProfileId),
    type: pkg.type,
    title: pkg.title,
    version: pkg.version,
    tag: pkg.tag,
    url: pkg.url,
    hasData,
    fileName: pkg.fileName,
    contentType: pkg.contentType,
    checksumAlgorithm: pkg.checksumAlgorithm,
    checksum: pkg.checksum,
    dataSize: pkg.dataSize,
    externalId: null,
    name: pkg.title,
  };
}

/** OtaPackage: the info plus `data`, the bytes in Base64 (null without bytes). */
export function otaPackageJson(pkg: OtaPackage, data: Buffer | null): Record<string, unknown> {
  return { ...otaPackageInfoJson(pkg, data !== null), data: data === null ? null : data.toString('base64') };
}

/** `firmwareId` / `softwareId` of a Device or DeviceProfile JSON. */
export function assignmentJson(a: OtaAssignment | undefined): { firmwareId: unknown; softwareId: unknown } {
  return { firmwareId: id('OTA_PACKAGE', a?.firmwareId ?? null), softwareId: id('OTA_PACKAGE', a?.softwareId ?? null) };
}

/** fleetgate's rollout summary (GET /api/otaPackage/{id}/rollout). */
export function rolloutSummaryJson(s: RolloutSummary): Record<string, unknown> {
  return {
    otaPackageId: id('OTA_PACKAGE', s.packageId),
    deviceProfileId: id('DEVICE_PROFILE', s.deviceProfileId || null),
    type: s.type,
    total: s.total,
    queued: s.queued,
    states: s.states,
    failed: s.failed.map((f) => ({ deviceId: id('DEVICE', f.deviceId), deviceName: f.deviceName, error: f.error, ts: f.ts })),
  };
}
