/**
 * The provisioning algorithm (spec §4, outcome matrix §4.1), with fleetgate's improvements (DESIGN 1-4, 6, 7).
 * Everything a SUCCESS writes happens in one store transaction; races are decided by unique indexes.
 */
import type { ProvisionReason, ProvisionRequest, ProvisionResult, RequestSource } from '../api.ts';
import type { AuditRecorder } from '../audit.ts';
import { buildCredentials, CredentialsRejected, parseMqttBasicValue, secretsEqual } from '../credentials.ts';
import { newId, randomAlphanumeric } from '../ids.ts';
import type { CoreLogger } from '../core-types.ts';
import type { TransactionBatcher } from '../transaction-batcher.ts';
import type { Profiles } from '../profiles.ts';
import type { CredentialsType, Device, DeviceCredentials, DeviceProfile } from '../model.ts';
import { UniqueViolation, type Store } from '../../store/store.ts';
import { failure, notFound } from './render.ts';

export interface ProvisioningSettings {
  /**
   * DESIGN 3: a repeat request for a provisioned-but-never-connected device gets its credentials again only when the
   * device was created at least this long before the repeat arrived; earlier repeats are concurrent requests and FAIL.
   */
  retryAfterMs: number;
}

/** Value the spec writes to the SERVER_SCOPE `provisionState` attribute (spec §6). */
export const PROVISION_STATE_KEY = 'provisionState';
export const PROVISIONED = 'provisioned';

class Outcome extends Error {
  constructor(readonly result: ProvisionResult, readonly device?: Device) {
    super(result.status);
  }
}

function successOf(device: Device, creds: DeviceCredentials): ProvisionResult {
  const base = { status: 'SUCCESS' as const, credentialsType: creds.credentialsType, deviceId: device.id, deviceName: device.name };
  switch (creds.credentialsType) {
    case 'ACCESS_TOKEN':
      return { ...base, credentialsValue: creds.credentialsId }; // [TAPI]: ACCESS_TOKEN -> credentialsId
    case 'MQTT_BASIC':
      return { ...base, credentialsValue: parseMqttBasicValue(creds.credentialsValue) };
    case 'X509_CERTIFICATE':
      return { ...base, credentialsValue: creds.credentialsValue ?? '' };
    case 'LWM2M_CREDENTIALS':
      return base; // spec §5.1: no credentialsValue
  }
}

/** spec §6: the credentials a new device gets from the request (or a random token when none are supplied). */
function requestedCredentials(req: ProvisionRequest): { type: CredentialsType; id: string; value: string | null } {
  const supplied = [req.token, req.hash, req.username, req.password, req.clientId].some((v) => v !== undefined && v !== '');
  if (!supplied) return { type: 'ACCESS_TOKEN', id: randomAlphanumeric(20), value: null };
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
    private readonly onCredentialsCreated: (credentialsId: string, deviceId: string) => void,
  ) {}

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
    if (!secretsEqual(secret, req.provisionDeviceSecret)) return this.done(req, source, notFound('BAD_KEY_OR_SECRET'), profile);
    switch (profile.provisionType) {
      case 'ALLOW_CREATE_NEW_DEVICES':
        return this.createNew(req, source, profile, name, arrived);
      case 'CHECK_PRE_PROVISIONED_DEVICES':
        return this.checkPreProvisioned(source, req, profile, name);
      default:
        return this.done(req, source, notFound('PROVISIONING_DISABLED'), profile); // spec §4 step 5: DISABLED -> NOT_FOUND
    }
  }

  private async createNew(req: ProvisionRequest, source: RequestSource, profile: DeviceProfile, requestedName: string, arrived: number): Promise<ProvisionResult> {
    let credentials: ReturnType<typeof requestedCredentials>;
    try {
      credentials = requestedCredentials(req);
    } catch (err) {
      if (err instanceof CredentialsRejected) return this.done(req, source, failure('INVALID_CREDENTIALS'), profile, undefined, err.message);
      throw err;
    }
    try {
      // Insert first (DESIGN 7): the unique index says whether the name is taken, so a new device costs no lookup.
      const result = await this.transactions.run(async (tx) => {
        const now = Date.now();
        const device: Device = {
          id: newId(),
          tenantId: profile.tenantId,
          profileId: profile.id,
          name: requestedName || randomAlphanumeric(20),
          type: profile.name, // spec §6: type = profile name
          label: null,
          additionalInfo: req.gateway ? { gateway: true } : null,
          createdByProvisioning: true,
          createdTime: now,
        };
        const creds: DeviceCredentials = {
          id: newId(),
          deviceId: device.id,
          credentialsType: credentials.type,
          credentialsId: credentials.id,
          credentialsValue: credentials.value,
          createdTime: now,
          firstUsedTime: null,
        };
        await tx.insertDevice(device, creds);
        await tx.insertAttributeIfAbsent(device.id, 'SERVER_SCOPE', { key: PROVISION_STATE_KEY, value: { type: 'STRING', value: PROVISIONED } }, now);
        await this.audit.provisioning(tx, { req, source, profile, device, status: 'SUCCESS', reason: null });
        return successOf(device, creds);
      });
      if (result.status === 'SUCCESS') this.onCredentialsCreated(credentials.id, result.deviceId);
      return this.done(req, source, result, profile, undefined, undefined, true);
    } catch (err) {
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

  private async checkPreProvisioned(source: RequestSource, req: ProvisionRequest, profile: DeviceProfile, name: string): Promise<ProvisionResult> {
    if (name === '') return this.done(req, source, failure('EMPTY_NAME'), profile);
    try {
      const result = await this.transactions.run(async (tx) => {
        const device = await tx.findDeviceByName(profile.tenantId, name);
        // spec §4: device missing or in another profile -> FAILURE, no event.
        if (!device || device.profileId !== profile.id) throw new Outcome(failure('NOT_PRE_PROVISIONED'));
        const creds = await tx.getCredentialsOfDevice(device.id);
        if (!creds) throw new Outcome(failure('NOT_PRE_PROVISIONED'));
        const now = Date.now();
        const claimed = await tx.insertAttributeIfAbsent(device.id, 'SERVER_SCOPE', { key: PROVISION_STATE_KEY, value: { type: 'STRING', value: PROVISIONED } }, now);
        if (!claimed) throw new Outcome(failure('ALREADY_PROVISIONED'), device);
        await this.audit.provisioning(tx, { req, source, profile, device, status: 'SUCCESS', reason: null });
        return successOf(device, creds);
      });
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
