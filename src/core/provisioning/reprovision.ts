/**
 * The profile's `reprovisionPolicy` (as Azure DPS's reprovisioning policies): what a repeat provisioning request for
 * an existing device of the profile that has already connected gets. ThingsBoard (and `NEVER`, the default) answer
 * FAILURE (spec §4.1 "device exists" / "already provisioned"); `SAME_CREDENTIALS` answers the device's credentials
 * again; `NEW_CREDENTIALS` replaces them (the old ones stop working at once, grace rows of the device included).
 */
import type { Device, DeviceCredentials, DeviceProfile, CredentialsType } from '../model.ts';
import type { Store } from '../ports/store.ts';
import { provisioningOptions, type ReprovisionPolicy } from './profile-options.ts';

/** Credentials a new device would get from the request (provision.ts `requestedCredentials`). */
export interface RequestedCredentials {
  type: CredentialsType;
  id: string;
  value: string | null;
}

export interface Reprovisioned {
  credentials: DeviceCredentials;
  policy: ReprovisionPolicy;
  /** The credentials id that stopped working (NEW_CREDENTIALS): every node must drop it from its cache. */
  replaced?: string;
  /** Ids of the device's credentials that were in a rotation's grace period and stopped working too. */
  retiredGrace?: string[];
}

/**
 * Inside the provisioning transaction: the answer for `device` under the profile's policy, or undefined when the
 * policy is NEVER, the device is in another profile, or it has not connected yet (the caller's usual rules apply).
 */
export async function reprovisionExisting(tx: Store, device: Device, profile: DeviceProfile, requested: RequestedCredentials, now: number): Promise<Reprovisioned | undefined> {
  const policy = provisioningOptions(profile.profileData?.provisionConfiguration).reprovisionPolicy;
  if (policy === 'NEVER' || device.profileId !== profile.id) return undefined;
  const current = await tx.getCredentialsOfDevice(device.id);
  if (!current || current.firstUsedTime === null) return undefined;
  if (policy === 'SAME_CREDENTIALS') return { credentials: current, policy };
  const replacement: DeviceCredentials = {
    ...current,
    credentialsType: requested.type,
    credentialsId: requested.id,
    credentialsValue: requested.value,
    createdTime: now,
    firstUsedTime: null,
  };
  await tx.updateCredentials(replacement); // a requested id another device holds: UniqueViolation -> CREDENTIALS_IN_USE
  const retired = await tx.deleteCredentialsGrace(now, device.id);
  return { credentials: replacement, policy, replaced: current.credentialsId, retiredGrace: retired };
}
