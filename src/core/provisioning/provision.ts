/**
 * The provisioning algorithm (spec §4, outcome matrix §4.1), with fleetgate's improvements (DESIGN 1-4, 6, 7).
 * Everything a SUCCESS writes happens in one store transaction; races are decided by unique indexes.
 */
import type { ProvisionReason, ProvisionRequest, ProvisionResult, RequestSource } from '../api.ts';
import type { AuditRecorder } from '../audit.ts';
import { buildCredentials, CredentialsRejected, sha3Hex } from '../credentials.ts';
import { provisionSecretMatches } from './derived-secret.ts';
import { askProfileHook, writeHookGrant, type HookDecision, type PreProvisioningHook } from './pre-provisioning-hook.ts';
import { CsrRejected, type CertificateAuthorityKeys, type IssuedCertificate } from './certificate-signing.ts';
import { reprovisionExisting, type Reprovisioned } from './reprovision.ts';
import { newAccessToken, newId, randomAlphanumeric } from '../ids.ts';
import type { CoreLogger } from '../core-types.ts';
import type { TransactionBatcher } from '../transaction-batcher.ts';
import type { Profiles } from '../profiles.ts';
import type { CredentialsType, Device, DeviceCredentials, DeviceProfile } from '../model.ts';
import { UniqueViolation, type Store } from '../ports/store.ts';
import { failure, notFound } from './render.ts';
import { createDevice, NewDeviceWriter, PROVISION_STATE_KEY, PROVISIONED, successOf, type NewDevice } from './new-devices.ts';

export interface ProvisioningSettings {
  /**
   * DESIGN 3: a repeat request for a provisioned-but-never-connected device gets its credentials again only when the
   * device was created at least this long before the repeat arrived; earlier repeats are concurrent requests and FAIL.
   */
  retryAfterMs: number;
}

export { PROVISION_STATE_KEY, PROVISIONED } from './new-devices.ts';

class Outcome extends Error {
  constructor(readonly result: ProvisionResult, readonly device?: Device) {
    super(result.status);
  }
}

/**
 * spec §6: the credentials a new device gets from the request (or a random token when none are supplied; `generated`:
 * made here, so no device can have presented it before).
 */
function requestedCredentials(req: ProvisionRequest): { type: CredentialsType; id: string; value: string | null; generated?: true } {
  const supplied = [req.token, req.hash, req.username, req.password, req.clientId].some((v) => v !== undefined && v !== '');
  if (!supplied) return { type: 'ACCESS_TOKEN', id: newAccessToken(), value: null, generated: true };
  const type = req.credentialsType ?? 'ACCESS_TOKEN';
  const built = buildCredentials(type, {
    token: req.token,
    clientId: req.clientId,
    userName: req.username,
    password: req.password,
    certificate: req.hash,
  });
  return { type, id: built.credentialsId, value: built.credentialsValue };
}

export class Provisioning {
  constructor(
    private readonly store: Store,
    private readonly transactions: TransactionBatcher,
    private readonly profiles: Pick<Profiles, 'findByProvisionKey'>,
    private readonly audit: AuditRecorder,
    private readonly settings: ProvisioningSettings,
    private readonly logger: CoreLogger,
    /**
     * After commit: credentials `credentialsId` of `deviceId` (of `profileId`) were created or replaced. `unseen`: the id
     * was generated here a moment ago, so no node can hold a cached lookup of it (nothing to invalidate).
     */
    private readonly onCredentialsCreated: (credentialsId: string, deviceId: string, profileId: string, unseen?: boolean) => void,
    /** The pre-provisioning hook caller (profiles with `preProvisioningHook`); none = such profiles fail closed. */
    private readonly hook?: PreProvisioningHook,
    /** Signs CSRs of profiles with `certificateSigning` (certificate-signing.ts). */
    private readonly caKeys?: CertificateAuthorityKeys,
  ) {
    this.newDevices = new NewDeviceWriter(audit);
  }

  /** Writes the new devices of concurrent requests together (one writer per Provisioning: one per group). */
  private readonly newDevices: NewDeviceWriter;

  async provision(req: ProvisionRequest, source: RequestSource): Promise<ProvisionResult> {
    const arrived = Date.now();
    let name = req.deviceName ?? '';
    if (name !== '') {
      name = name.trim();
      if (name === '') return this.done(req, source, failure('EMPTY_NAME')); // spec §4 step 1: before the key check
    }
    if (!req.provisionDeviceKey || !req.provisionDeviceSecret) return this.done(req, source, notFound('BAD_KEY_OR_SECRET'));
    const profile = await this.profiles.findByProvisionKey(req.provisionDeviceKey);
    const configured = profile?.profileData?.provisionConfiguration;
    const secret = configured?.provisionDeviceSecret;
    if (!profile || !configured || typeof secret !== 'string') return this.done(req, source, notFound('BAD_KEY_OR_SECRET'));
    // DESIGN 4: ThingsBoard never answers here; fleetgate fails at once.
    if (profile.provisionType === 'X509_CERTIFICATE_CHAIN') return this.done(req, source, failure('UNSUPPORTED_STRATEGY'), profile);
    // The profile secret, or under secretDerivation HMAC_SHA256 the device's own secret (derived-secret.ts).
    if (!provisionSecretMatches(profile, secret, name, req.provisionDeviceSecret)) return this.done(req, source, notFound('BAD_KEY_OR_SECRET'), profile);
    switch (profile.provisionType) {
      case 'ALLOW_CREATE_NEW_DEVICES':
      case 'CHECK_PRE_PROVISIONED_DEVICES': {
        const hook = await this.askHook(profile, req, name, source);
        if (!hook.proceed) return this.done(req, source, failure(hook.reason), profile, undefined, hook.detail);
        if (profile.provisionType === 'ALLOW_CREATE_NEW_DEVICES') return this.createNew(req, source, profile, name, arrived, hook);
        return this.checkPreProvisioned(source, req, profile, name, hook);
      }
      default:
        return this.done(req, source, notFound('PROVISIONING_DISABLED'), profile); // spec §4 step 5: DISABLED -> NOT_FOUND
    }
  }

  /** The profile's pre-provisioning hook, asked before anything is written (pre-provisioning-hook.ts). */
  private askHook(profile: DeviceProfile, req: ProvisionRequest, name: string, source: RequestSource): Promise<HookDecision> | HookDecision {
    return askProfileHook(this.hook, profile, req, name, source);
  }

  private async createNew(req: ProvisionRequest, source: RequestSource, profile: DeviceProfile, requestedName: string, arrived: number, hook?: HookDecision): Promise<ProvisionResult> {
    const grant = hook?.proceed ? hook.grant : undefined;
    let credentials: ReturnType<typeof requestedCredentials>;
    let issued: IssuedCertificate | undefined;
    try {
      if (req.csr !== undefined) {
        issued = await this.signCsr(req, profile, requestedName);
        requestedName = issued.deviceName;
        credentials = { type: 'X509_CERTIFICATE', id: sha3Hex(issued.certificateBody), value: issued.certificateBody };
      } else credentials = requestedCredentials(req);
    } catch (err) {
      if (err instanceof CredentialsRejected) return this.done(req, source, failure('INVALID_CREDENTIALS'), profile, undefined, err.message);
      if (err instanceof CsrRejected) return this.done(req, source, failure(err.reason), profile, undefined, err.detail);
      throw err;
    }
    let reprovisioned: Reprovisioned | undefined;
    try {
      const device: Device = {
        id: newId(),
        tenantId: profile.tenantId,
        profileId: profile.id,
        name: requestedName || randomAlphanumeric(20),
        type: profile.name, // spec §6: type = profile name
        label: grant?.label ?? null,
        additionalInfo: req.gateway ? { gateway: true } : null,
        createdByProvisioning: true,
        createdTime: 0, // set when written
      };
      const creds: DeviceCredentials = {
        id: newId(),
        deviceId: device.id,
        credentialsType: credentials.type,
        credentialsId: credentials.id,
        credentialsValue: credentials.value,
        createdTime: 0,
        firstUsedTime: null,
      };
      const item: NewDevice = { device, credentials: creds, grant, audit: { req, source, profile, device, status: 'SUCCESS', reason: null, detail: hook?.detail } };
      // Written with the group's other new devices (new-devices.ts). Alone, or when the name is taken: a known name is
      // a repeat (DESIGN 3 retry, or the profile's reprovisionPolicy); a race is decided by the unique index (DESIGN 7).
      const alone = async (tx: Store): Promise<ProvisionResult> => {
        if (requestedName !== '') {
          const existing = await tx.findDeviceByName(profile.tenantId, requestedName);
          if (existing) {
            const retried = await this.retryOfLostResponse(tx, existing, profile, credentials, req, arrived);
            if (retried) {
              await this.audit.provisioning(tx, { req, source, profile, device: existing, status: 'SUCCESS', reason: null, detail: 'repeat of a request whose answer was lost' });
              return retried;
            }
            reprovisioned = await reprovisionExisting(tx, existing, profile, credentials, Date.now());
            if (reprovisioned) return this.reprovisionedResult(tx, req, source, profile, existing, reprovisioned);
            throw new Outcome(failure('DEVICE_EXISTS'), existing);
          }
        }
        return createDevice(tx, item, this.audit);
      };
      const result = await this.transactions.run(alone, { writer: this.newDevices, item });
      if (result.status === 'SUCCESS') this.onCredentialsCreated(credentials.id, result.deviceId, profile.id, credentials.generated);
      if (result.status === 'SUCCESS' && reprovisioned?.replaced) {
        for (const id of [reprovisioned.replaced, ...(reprovisioned.retiredGrace ?? [])]) this.onCredentialsCreated(id, result.deviceId, profile.id);
      }
      // A signed CSR is answered with the chain (leaf then CA), not the stored Base64 body.
      if (result.status === 'SUCCESS' && issued && result.credentialsValue === issued.certificateBody) return this.done(req, source, { ...result, credentialsValue: issued.chainPem }, profile, undefined, undefined, true);
      return this.done(req, source, result, profile, undefined, undefined, true);
    } catch (err) {
      if (err instanceof Outcome) return this.done(req, source, err.result, profile, err.device);
      if (err instanceof UniqueViolation) {
        // The unit's writes were undone. A taken name may be this device asking again (DESIGN 3); taken credentials
        // are CREDENTIALS_IN_USE. A name taken by a concurrent request fails DESIGN 3's age check: DEVICE_EXISTS.
        if (err.constraint === 'device_name' && requestedName !== '') return this.existingName(req, source, profile, requestedName, credentials, arrived);
        return this.done(req, source, failure(err.constraint === 'credentials_id' ? 'CREDENTIALS_IN_USE' : 'DEVICE_EXISTS'), profile);
      }
      throw err;
    }
  }

  /** The requested name is taken: the same credentials again for a lost answer (DESIGN 3), else DEVICE_EXISTS. */
  private async existingName(
    req: ProvisionRequest,
    source: RequestSource,
    profile: DeviceProfile,
    name: string,
    credentials: { type: CredentialsType; id: string; value: string | null },
    arrived: number,
  ): Promise<ProvisionResult> {
    try {
      const result = await this.transactions.run(async (tx) => {
        const existing = await tx.findDeviceByName(profile.tenantId, name);
        if (!existing) throw new Outcome(failure('DEVICE_EXISTS')); // deleted since: as if it had won the race
        const retried = await this.retryOfLostResponse(tx, existing, profile, credentials, req, arrived);
        if (!retried) throw new Outcome(failure('DEVICE_EXISTS'), existing);
        await this.audit.provisioning(tx, { req, source, profile, device: existing, status: 'SUCCESS', reason: null, detail: 'repeat of a request whose answer was lost' });
        return retried;
      });
      return this.done(req, source, result, profile, undefined, undefined, true);
    } catch (err) {
      if (err instanceof Outcome) return this.done(req, source, err.result, profile, err.device);
      throw err;
    }
  }

  /** DESIGN 3: the same device asks again after losing the reply; give the same credentials back while unused. */
  private async retryOfLostResponse(
    tx: Store,
    existing: Device,
    profile: DeviceProfile,
    requested: { type: CredentialsType; id: string; value: string | null },
    req: ProvisionRequest,
    arrived: number,
  ): Promise<ProvisionResult | undefined> {
    if (!existing.createdByProvisioning || existing.profileId !== profile.id) return undefined;
    if (existing.createdTime + this.settings.retryAfterMs > arrived) return undefined;
    const creds = await tx.getCredentialsOfDevice(existing.id);
    if (!creds || creds.firstUsedTime !== null) return undefined;
    const suppliedOwn = [req.token, req.hash, req.username, req.password, req.clientId].some((v) => v !== undefined && v !== '');
    if (suppliedOwn && (creds.credentialsType !== requested.type || creds.credentialsId !== requested.id || creds.credentialsValue !== requested.value)) return undefined;
    if (!!req.gateway !== (existing.additionalInfo?.gateway === true)) return undefined;
    return successOf(existing, creds);
  }

  /** Checks and signs the request's CSR (README "Certificates from a CSR"); throws CsrRejected or CredentialsRejected. */
  private signCsr(req: ProvisionRequest, profile: DeviceProfile, name: string): Promise<IssuedCertificate> {
    if (req.credentialsType !== 'X509_CERTIFICATE') throw new CredentialsRejected('A csr needs credentialsType X509_CERTIFICATE');
    if (req.hash !== undefined && req.hash !== '') throw new CredentialsRejected('Send either a certificate (hash) or a csr, not both');
    if (!this.caKeys) throw new CsrRejected('CSR_NOT_SUPPORTED', 'no CA keys configured');
    return this.caKeys.signCsr(profile, req.csr!, name);
  }

  /** Audits a repeat request answered by the profile's reprovisionPolicy (reprovision.ts). */
  private async reprovisionedResult(tx: Store, req: ProvisionRequest, source: RequestSource, profile: DeviceProfile, device: Device, again: Reprovisioned): Promise<ProvisionResult> {
    await this.audit.provisioning(tx, { req, source, profile, device, status: 'SUCCESS', reason: null, detail: `reprovisioned (reprovisionPolicy ${again.policy})` });
    return successOf(device, again.credentials);
  }

  private async checkPreProvisioned(source: RequestSource, req: ProvisionRequest, profile: DeviceProfile, name: string, hook?: HookDecision): Promise<ProvisionResult> {
    const grant = hook?.proceed ? hook.grant : undefined;
    if (name === '') return this.done(req, source, failure('EMPTY_NAME'), profile);
    if (req.csr !== undefined) return this.done(req, source, failure('CSR_NOT_SUPPORTED'), profile, undefined, 'CSRs are signed under ALLOW_CREATE_NEW_DEVICES only');
    let reprovisioned: Reprovisioned | undefined;
    try {
      const result = await this.transactions.run(async (tx) => {
        const device = await tx.findDeviceByName(profile.tenantId, name);
        // spec §4: device missing or in another profile -> FAILURE, no event.
        if (!device || device.profileId !== profile.id) throw new Outcome(failure('NOT_PRE_PROVISIONED'));
        const creds = await tx.getCredentialsOfDevice(device.id);
        if (!creds) throw new Outcome(failure('NOT_PRE_PROVISIONED'));
        const now = Date.now();
        const claimed = await tx.insertAttributeIfAbsent(device.id, 'SERVER_SCOPE', { key: PROVISION_STATE_KEY, value: { type: 'STRING', value: PROVISIONED } }, now);
        if (!claimed) {
          // Credentials in the request are ignored under this strategy (spec §4): a new one is always a token.
          reprovisioned = await reprovisionExisting(tx, device, profile, { type: 'ACCESS_TOKEN', id: newAccessToken(now), value: null }, now);
          if (reprovisioned) return this.reprovisionedResult(tx, req, source, profile, device, reprovisioned);
          throw new Outcome(failure('ALREADY_PROVISIONED'), device);
        }
        if (grant?.label !== undefined) await tx.updateDevice({ ...device, label: grant.label });
        await writeHookGrant(tx, device.id, grant, now);
        await this.audit.provisioning(tx, { req, source, profile, device, status: 'SUCCESS', reason: null, detail: hook?.detail });
        return successOf(device, creds);
      });
      if (result.status === 'SUCCESS' && reprovisioned?.replaced) {
        for (const id of [reprovisioned.replaced, reprovisioned.credentials.credentialsId, ...(reprovisioned.retiredGrace ?? [])]) this.onCredentialsCreated(id, result.deviceId, profile.id);
      }
      return this.done(req, source, result, profile, undefined, undefined, true);
    } catch (err) {
      if (err instanceof Outcome) return this.done(req, source, err.result, profile, err.device);
      throw err;
    }
  }

  /** Logs the outcome and writes the failure audit row (spec §6: only when a device is involved). */
  private async done(
    req: ProvisionRequest,
    source: RequestSource,
    result: ProvisionResult,
    profile?: DeviceProfile,
    device?: Device,
    detail?: string,
    audited = false,
  ): Promise<ProvisionResult> {
    const reason = result.status === 'SUCCESS' ? undefined : result.reason;
    this.logger.info(
      { event: 'provision', transport: source.transport, address: source.address, status: result.status, reason, profileId: profile?.id, deviceName: req.deviceName, detail },
      'provisioning request',
    );
    if (!audited && result.status === 'FAILURE' && profile) {
      await this.audit.provisioning(this.store, { req, source, profile, device, status: 'FAILURE', reason: result.reason, detail });
    }
    return result;
  }
}
