import type { Actor, ProfileInput, ProfilesApi } from './api.ts';
import type { AuditRecorder } from './audit.ts';
import { sha3Hex, stripCertificate } from './credentials.ts';
import { FleetgateError, notFound } from './errors.ts';
import { newId } from './ids.ts';
import { PROVISION_TYPES, type DeviceProfile, type Page, type PageQuery, type ProfileData } from './model.ts';
import type { CertificateAuthorityKeys } from './provisioning/certificate-signing.ts';
import { provisioningOptions } from './provisioning/profile-options.ts';
import { UniqueViolation, type Store } from './ports/store.ts';
import type { Ota } from './ota/ota.ts';

/** How long a profile found by its provision key is reused without asking the store. */
const PROVISION_KEY_CACHE_MS = 5_000;

/** Device profiles, saved with ThingsBoard's rules (spec §3.2). */
export class Profiles implements ProfilesApi {
  private readonly byProvisionKey = new Map<string, { profile: DeviceProfile; expires: number }>();
  /** OTA assignment checks and triggers (spec thingsboard-ota §3), set by createCore. */
  ota: Ota | undefined;

  constructor(
    private readonly store: Store,
    private readonly audit: AuditRecorder,
    /** Called after a profile changed (cached device lookups carry its transport type). */
    private readonly changed: () => Promise<void> = async () => {},
    /** Checks and encrypts a profile's `certificateSigning` CA key (provisioning/certificate-signing.ts). */
    private readonly caKeys?: CertificateAuthorityKeys,
  ) {}

  /** `audited` false: the tenant's automatic default profile (ThingsBoard does not audit it either). */
  async save(tenantId: string, input: ProfileInput, actor: Actor, audited = true): Promise<DeviceProfile> {
    if (!input || typeof input.name !== 'string' || input.name.trim() === '') throw new FleetgateError('INVALID_ARGUMENT', 'Device profile name should be specified!');
    // spec §3.2: provisionType null on save -> DISABLED
    const provisionType = input.provisionType ?? 'DISABLED';
    if (!PROVISION_TYPES.includes(provisionType)) throw new FleetgateError('INVALID_ARGUMENT', `Unknown provisionType: ${String(provisionType)}`);
    const existing = input.id ? await this.store.getProfile(tenantId, input.id) : undefined;
    if (input.id && !existing) throw notFound(`Device profile with id [${input.id}] is not found`);
    const profileData: ProfileData = {
      configuration: { type: 'DEFAULT' },
      transportConfiguration: { type: 'DEFAULT' },
      ...(input.profileData ?? {}),
    };
    let provisionDeviceKey = input.provisionDeviceKey ?? null;
    const provision = profileData.provisionConfiguration;
    provisioningOptions(provision); // fleetgate's options (derived secrets, hook, reprovisioning): 400 when wrong
    if (this.caKeys) profileData.provisionConfiguration = await this.caKeys.seal(provision, existing?.profileData?.provisionConfiguration);
    if (provision && provision.type === 'X509_CERTIFICATE_CHAIN' && typeof provision.provisionDeviceSecret === 'string') {
      // spec §3.2: the key of an X.509 chain profile is the SHA3 of its (first) certificate.
      const first = provision.provisionDeviceSecret.split(/-----END CERTIFICATE-----/)[0];
      provisionDeviceKey = sha3Hex(stripCertificate(first));
    }
    const isFirst = !existing && !(await this.store.findDefaultProfile(tenantId));
    const profile: DeviceProfile = {
      id: existing?.id ?? newId(),
      tenantId,
      name: input.name.trim(),
      type: input.type ?? 'DEFAULT',
      transportType: input.transportType ?? 'DEFAULT',
      description: input.description ?? null,
      isDefault: input.default ?? existing?.isDefault ?? isFirst,
      provisionType,
      provisionDeviceKey,
      profileData,
      createdTime: existing?.createdTime ?? Date.now(),
    };
    // One default per tenant (unique index): a profile saved as default takes the flag over from the current one.
    const currentDefault = profile.isDefault ? await this.store.findDefaultProfile(tenantId) : undefined;
    const takesDefault = currentDefault !== undefined && currentDefault.id !== profile.id;
    const otaInput = { firmwareId: input.firmwareId, softwareId: input.softwareId };
    await this.ota?.checkAssignment(tenantId, profile.id, otaInput);
    try {
      const row = takesDefault ? { ...profile, isDefault: false } : profile;
      if (existing) await this.store.updateProfile(row);
      else await this.store.insertProfile(row);
      if (takesDefault) await this.store.setDefaultProfile(tenantId, profile.id);
    } catch (err) {
      if (err instanceof UniqueViolation && err.constraint === 'provision_key') {
        throw new FleetgateError(
          'ALREADY_EXISTS',
          provisionType === 'X509_CERTIFICATE_CHAIN' ? 'Device profile with such certificate already exists!' : 'Device profile with such provision device key already exists!',
        );
      }
      if (err instanceof UniqueViolation && err.constraint === 'profile_name') throw new FleetgateError('ALREADY_EXISTS', 'Device profile with such name already exists!');
      throw err;
    }
    if (existing) await this.profileChanged();
    await this.ota?.profileSaved(profile, otaInput, !existing);
    if (audited) await this.audit.action(actor, tenantId, { type: 'DEVICE_PROFILE', id: profile.id, name: profile.name }, existing ? 'UPDATED' : 'ADDED', {
      provisionType,
      provisionDeviceKey,
    });
    return profile;
  }

  async get(tenantId: string, id: string): Promise<DeviceProfile> {
    const profile = await this.store.getProfile(tenantId, id);
    if (!profile) throw notFound(`Device profile with id [${id}] is not found`);
    return profile;
  }

  list(tenantId: string, query: PageQuery & { transportType?: string }): Promise<Page<DeviceProfile>> {
    return this.store.listProfiles(tenantId, query);
  }

  /**
   * The profile whose provision key is `key`, cached briefly: provisioning storms read the store once per key.
   * Every change to a profile clears the cache on every node (bus `profiles-changed`).
   */
  async findByProvisionKey(key: string): Promise<DeviceProfile | undefined> {
    const now = Date.now();
    const hit = this.byProvisionKey.get(key);
    if (hit && hit.expires > now) return hit.profile;
    const profile = await this.store.findProfileByProvisionKey(key);
    if (profile) {
      if (this.byProvisionKey.size >= 10_000) this.byProvisionKey.clear();
      this.byProvisionKey.set(key, { profile, expires: now + PROVISION_KEY_CACHE_MS });
    } else this.byProvisionKey.delete(key);
    return profile;
  }

  /** Forgets cached profiles (a profile changed here or on another node). */
  clearCache(): void {
    this.byProvisionKey.clear();
  }

  private async profileChanged(): Promise<void> {
    this.clearCache();
    await this.changed();
  }

  async delete(tenantId: string, id: string, actor: Actor): Promise<void> {
    const profile = await this.get(tenantId, id);
    if (profile.isDefault) throw new FleetgateError('INVALID_ARGUMENT', 'Deletion of Default Device Profile is prohibited!');
    if ((await this.store.countDevicesOfProfile(id)) > 0) throw new FleetgateError('INVALID_ARGUMENT', 'The device profile referenced by the devices cannot be deleted!');
    await this.store.deleteProfile(tenantId, id);
    await this.profileChanged();
    await this.audit.action(actor, tenantId, { type: 'DEVICE_PROFILE', id, name: profile.name }, 'DELETED');
  }

  /**
   * The tenant's profile named `name`, created with default settings when there is none: what ThingsBoard does for a
   * device saved with a `type` and no `deviceProfileId` (findOrCreateDeviceProfile). A concurrent create of the same
   * name is decided by the unique name index; the loser reads the winner's profile.
   */
  async findOrCreateByName(tenantId: string, name: string, actor: Actor): Promise<DeviceProfile> {
    const found = await this.store.findProfileByName(tenantId, name);
    if (found) return found;
    await this.getDefault(tenantId); // a tenant's first profile becomes its default: that must not be this one
    try {
      return await this.save(tenantId, { name, default: false }, actor);
    } catch (err) {
      const raced = await this.store.findProfileByName(tenantId, name);
      if (raced) return raced;
      throw err;
    }
  }

  /** Makes the profile the tenant's only default one (TB: POST /api/deviceProfile/{id}/default); returns it. */
  async setDefault(tenantId: string, id: string, actor: Actor): Promise<DeviceProfile> {
    const profile = await this.get(tenantId, id);
    if (profile.isDefault) return profile;
    await this.store.setDefaultProfile(tenantId, id);
    await this.profileChanged();
    await this.audit.action(actor, tenantId, { type: 'DEVICE_PROFILE', id, name: profile.name }, 'UPDATED', { default: true });
    return { ...profile, isDefault: true };
  }

  async getDefault(tenantId: string): Promise<DeviceProfile> {
    const found = await this.store.findDefaultProfile(tenantId);
    if (found) return found;
    const system = { userId: null, userName: null, source: { transport: 'admin' as const } };
    try {
      const named = await this.store.findProfileByName(tenantId, 'default');
      if (named) return await this.setDefault(tenantId, named.id, system);
      // TB: a new tenant gets this profile (DeviceProfileServiceImpl.createDefaultDeviceProfile), provisioning DISABLED.
      return await this.save(tenantId, { name: 'default', description: 'Default device profile', default: true, provisionType: 'DISABLED' }, system, false);
    } catch (err) {
      const raced = await this.store.findDefaultProfile(tenantId);
      if (raced) return raced;
      throw err;
    }
  }
}

