/**
 * ThingsBoard's validation of saved OTA package metadata (spec thingsboard-ota §1.2 R1), in its order, with its texts.
 */
import { FleetgateError } from '../errors.ts';
import type { OtaPackage } from './model.ts';

const bad = (message: string) => new FleetgateError('INVALID_ARGUMENT', message);

/** spec §1.1 bean constraints: "Validation error: <field> length must be equal or less than N", sorted, joined. */
export function checkLengths(fields: Record<string, string | null | undefined>, limits: Record<string, number> = {}): void {
  const violations: string[] = [];
  for (const [field, value] of Object.entries(fields)) {
    const limit = limits[field] ?? 255;
    if (typeof value === 'string' && value.length > limit) violations.push(`${field} length must be equal or less than ${limit}`);
  }
  if (violations.length > 0) throw bad(`Validation error: ${violations.sort().join(', ')}`);
}

/** R1 rules 3, 6, 7: title, type, version. */
export function checkRequired(pkg: Pick<OtaPackage, 'title' | 'version' | 'type'>): void {
  if (!pkg.title || pkg.title.trim() === '') throw bad('OtaPackage title should be specified!');
  if (pkg.title.includes('\u0000')) throw bad('OtaPackage title should not contain 0x00 symbol!');
  if (!pkg.type) throw bad('Type should be specified!');
  if (!pkg.version || pkg.version === '') throw bad('OtaPackage version should be specified!');
}

/** R1 rule 9: on update every field must equal the stored one; fields stored null may be filled in. */
export function checkUpdate(stored: OtaPackage, next: OtaPackage): void {
  if (next.type !== stored.type) throw bad('Updating type is prohibited!');
  if (next.title !== stored.title) throw bad('Updating otaPackage title is prohibited!');
  if (next.version !== stored.version) throw bad('Updating otaPackage version is prohibited!');
  if ((next.tag ?? null) !== (stored.tag ?? null)) throw bad('Updating otaPackage tag is prohibited!');
  if ((next.deviceProfileId ?? null) !== (stored.deviceProfileId ?? null)) throw bad('Updating otaPackage deviceProfile is prohibited!');
  if (stored.fileName !== null && next.fileName !== stored.fileName) throw bad('Updating otaPackage file name is prohibited!');
  // TB's texts for contentType, checksumAlgorithm and checksum are all "content type" (spec §7.3, sic).
  if (stored.contentType !== null && next.contentType !== stored.contentType) throw bad('Updating otaPackage content type is prohibited!');
  if (stored.checksumAlgorithm !== null && next.checksumAlgorithm !== stored.checksumAlgorithm) throw bad('Updating otaPackage content type is prohibited!');
  if (stored.checksum !== null && next.checksum !== stored.checksum) throw bad('Updating otaPackage content type is prohibited!');
  if (stored.dataSize !== null && next.dataSize !== stored.dataSize) throw bad('Updating otaPackage data size is prohibited!');
  if (stored.url !== null && next.url !== stored.url) throw bad('Updating otaPackage URL is prohibited!');
}
