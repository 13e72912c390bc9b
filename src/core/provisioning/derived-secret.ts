/**
 * Per-device provisioning secrets derived from the profile's secret, as Azure DPS derives keys of a symmetric-key
 * enrollment group: secret(device) = base64(HMAC-SHA256(key = profile secret, message = device name)). The device
 * sends it as `provisionDeviceSecret` (same field, spec §2.1), so a key read out of one device provisions that name
 * only; the profile secret itself stays in the factory.
 */
import { createHmac } from 'node:crypto';
import { FleetgateError } from '../errors.ts';
import type { DeviceProfile } from '../model.ts';
import { secretDigest, secretMatchesDigest, secretsEqual } from '../credentials.ts';
import { provisioningOptions } from './profile-options.ts';

/** base64(HMAC-SHA256(profileSecret, deviceName)), both as UTF-8. */
export function deriveDeviceSecret(profileSecret: string, deviceName: string): string {
  return createHmac('sha256', Buffer.from(profileSecret, 'utf8')).update(deviceName, 'utf8').digest('base64');
}

/** The digest of each cached profile object's secret: a provisioning request then hashes only the secret it presents. */
const profileSecretDigests = new WeakMap<DeviceProfile, { secret: string; digest: Buffer }>();

function profileSecretDigest(profile: DeviceProfile, secret: string): Buffer {
  let known = profileSecretDigests.get(profile);
  if (known?.secret !== secret) profileSecretDigests.set(profile, (known = { secret, digest: secretDigest(secret) }));
  return known.digest;
}

/**
 * Whether `presented` is the secret for `deviceName` under the profile: the profile secret itself, or under
 * `secretDerivation: HMAC_SHA256` the device's derived secret (never the profile secret then; no name, no match).
 * Compared in constant time (DESIGN 6).
 */
export function provisionSecretMatches(profile: DeviceProfile, profileSecret: string, deviceName: string, presented: string): boolean {
  if (provisioningOptions(profile.profileData?.provisionConfiguration).secretDerivation !== 'HMAC_SHA256') return secretMatchesDigest(profileSecretDigest(profile, profileSecret), presented);
  if (deviceName === '') return false;
  return secretsEqual(deriveDeviceSecret(profileSecret, deviceName), presented);
}

/** The derived secret of `deviceName` for a profile that uses them; INVALID_ARGUMENT otherwise (admin API, CLI). */
export function derivedSecretFor(profile: DeviceProfile, deviceName: string): string {
  const config = profile.profileData?.provisionConfiguration;
  if (provisioningOptions(config).secretDerivation !== 'HMAC_SHA256') {
    throw new FleetgateError('INVALID_ARGUMENT', `Device profile ${profile.name} does not use derived device secrets (provisionConfiguration.secretDerivation is not HMAC_SHA256)`);
  }
  const name = deviceName.trim();
  if (name === '') throw new FleetgateError('INVALID_ARGUMENT', 'Device name should be specified!');
  if (typeof config?.provisionDeviceSecret !== 'string' || config.provisionDeviceSecret === '') throw new FleetgateError('INVALID_ARGUMENT', `Device profile ${profile.name} has no provision secret`);
  return deriveDeviceSecret(config.provisionDeviceSecret, name);
}

/** The export's `provisionDeviceSecret` column: each device's derived secret, profiles read once per export. */
export class DerivedSecretColumn {
  private readonly profiles = new Map<string, DeviceProfile | undefined>();
  constructor(private readonly store: { getProfile(tenantId: string, id: string): Promise<DeviceProfile | undefined> }) {}

  /** The device's derived secret, or undefined when its profile does not derive them. */
  async of(device: { tenantId: string; profileId: string; name: string }): Promise<string | undefined> {
    if (!this.profiles.has(device.profileId)) this.profiles.set(device.profileId, await this.store.getProfile(device.tenantId, device.profileId));
    const profile = this.profiles.get(device.profileId);
    const config = profile?.profileData?.provisionConfiguration;
    if (!profile || typeof config?.provisionDeviceSecret !== 'string' || config.provisionDeviceSecret === '') return undefined;
    if (provisioningOptions(config).secretDerivation !== 'HMAC_SHA256') return undefined;
    return deriveDeviceSecret(config.provisionDeviceSecret, device.name);
  }
}
