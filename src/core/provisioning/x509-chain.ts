/**
 * X.509 certificate-chain provisioning (spec §7): a device presents its chain over MQTT TLS; if one of the
 * certificates is the trust anchor of an X509_CERTIFICATE_CHAIN profile, the leaf becomes a device's credentials (a new
 * device, or a new certificate for an existing one). Before either is written the profile's pre-provisioning hook, if it
 * names one, is asked as on the key/secret path (pre-provisioning-hook.ts). Writes happen in one transaction; races are
 * decided by the unique indexes on device name and credentials id (DESIGN 7).
 */
import type { ProvisionReason, ProvisionRequest, RequestSource, X509ChainProvisioningApi, X509ChainResult } from '../api.ts';
import type { AuditRecorder } from '../audit.ts';
import type { CoreLogger } from '../core-types.ts';
import { buildCredentials } from '../credentials.ts';
import type { DeviceAuth } from '../device-auth.ts';
import { newId } from '../ids.ts';
import type { Device, DeviceCredentials, DeviceProfile, ProvisionConfiguration } from '../model.ts';
import type { Profiles } from '../profiles.ts';
import { retryAfterSeconds, type Throttle } from '../throttle/throttle.ts';
import type { TransactionBatcher } from '../transaction-batcher.ts';
import { UniqueViolation, type Store } from '../ports/store.ts';
import { askProfileHook, writeHookGrant, type HookDecision, type PreProvisioningHook } from './pre-provisioning-hook.ts';
import { PROVISION_STATE_KEY, PROVISIONED } from './provision.ts';
import { commonName, deviceNameFromCn, InvalidChain, isCurrentlyValid, parseChain, verifyChain, type ChainCertificate } from './x509-certificates.ts';

type Failure = Extract<X509ChainResult, { status: 'FAILURE' }>;

/** A FAILURE decided inside the transaction (rolls its writes back). */
class Refused extends Error {
  constructor(
    readonly reason: ProvisionReason,
    readonly detail: string,
    readonly device?: Device,
  ) {
    super(detail);
  }
}

/** What one provisioning transaction did; `replaced` is the credentials id a rotation retired. */
type Decision = { result: X509ChainResult; replaced?: string };

/** What a chain would do to the store, as read before the hook and again inside the transaction. */
type Target = { kind: 'registered' } | { kind: 'rotate'; existing: Device; current: DeviceCredentials } | { kind: 'create' };

/** A hook decision that lets provisioning go on. */
type Proceed = Extract<HookDecision, { proceed: true }>;

/** spec §7 steps 3-4 over the store; core.ts wraps it in {@link throttledX509Provisioning}. */
export class X509ChainProvisioning implements X509ChainProvisioningApi {
  constructor(
    private readonly store: Store,
    private readonly transactions: TransactionBatcher,
    private readonly profiles: Pick<Profiles, 'findByProvisionKey'>,
    private readonly auth: Pick<DeviceAuth, 'isX509Registered' | 'invalidate'>,
    private readonly audit: AuditRecorder,
    private readonly logger: CoreLogger,
    /** Drops cached lookups of a credentials id here and on every node (core.ts `credentialsChanged`). */
    private readonly credentialsChanged: (credentialsId: string, deviceId: string) => void,
    /** The pre-provisioning hook caller (profiles with `preProvisioningHook`); none = such profiles fail closed. */
    private readonly hook?: PreProvisioningHook,
  ) {}

  async provisionByChain(entries: readonly string[], source: RequestSource): Promise<X509ChainResult> {
    let chain: ChainCertificate[];
    try {
      chain = parseChain(entries);
      verifyChain(chain); // spec §7 step 3
    } catch (err) {
      if (err instanceof InvalidChain) return this.logged(source, { status: 'INVALID_CHAIN', detail: err.message });
      throw err;
    }
    // spec §7 step 4: the first certificate that is registered, or is a chain profile's trust anchor, decides.
    for (const [index, cert] of chain.entries()) {
      if (await this.auth.isX509Registered(cert.hash)) return this.logged(source, { status: 'REGISTERED', index });
      const profile = await this.profiles.findByProvisionKey(cert.hash);
      if (!profile) continue;
      if (profile.provisionType !== 'X509_CERTIFICATE_CHAIN') {
        this.logger.warn({ event: 'x509_provision', profileId: profile.id, provisionType: profile.provisionType }, 'x509 chain: a presented certificate is the key of a profile of another provision type');
        continue;
      }
      return this.provision(profile, chain[0]!, source);
    }
    return this.logged(source, { status: 'NO_PROFILE' });
  }

  /** Provisions the leaf through `profile` (spec §7 step 4), deciding again once if a concurrent connection won a race. */
  private async provision(profile: DeviceProfile, leaf: ChainCertificate, source: RequestSource): Promise<X509ChainResult> {
    const config = profile.profileData?.provisionConfiguration;
    // [PROV] provisionDeviceViaX509Chain checks provisionConfiguration.type, not the top-level provisionType.
    if (!config || config.type !== 'X509_CERTIFICATE_CHAIN') return this.failed(source, profile, new Refused('UNSUPPORTED_STRATEGY', 'provisionConfiguration.type is not X509_CERTIFICATE_CHAIN'));
    // Not in ThingsBoard: an expired leaf would only be refused at CONNECT (spec §8.1), and rotating to it locks the device out.
    if (!isCurrentlyValid(leaf)) return this.failed(source, profile, new Refused('INVALID_CREDENTIALS', 'the leaf certificate is expired or not yet valid'));
    const named = deviceNameFromCn(commonName(leaf), config.certificateRegExPattern);
    if ('error' in named) return this.failed(source, profile, new Refused('CN_NOT_MATCHED', named.error));
    // The hook is asked only about a chain that would write (a new device or a new certificate), never about a refusal.
    let target: Target;
    try {
      target = await this.target(this.store, profile, config, leaf, named.name);
    } catch (err) {
      if (err instanceof Refused) return this.failed(source, profile, err, named.name);
      throw err;
    }
    if (target.kind === 'registered') return this.committed(source, { result: { status: 'REGISTERED', index: 0 } }, leaf, named.name);
    const hook = await askProfileHook(this.hook, profile, auditRequest(profile, named.name), named.name, source);
    if (!hook.proceed) return this.failed(source, profile, new Refused(hook.reason, hook.detail), named.name);
    for (let attempt = 1; ; attempt++) {
      try {
        const decision = await this.transactions.run((tx) => this.decide(tx, profile, config, leaf, named.name, source, hook));
        return this.committed(source, decision, leaf, named.name);
      } catch (err) {
        if (err instanceof Refused) return this.failed(source, profile, err, named.name);
        // DESIGN 7: another connection created the device or took the certificate meanwhile; its commit decides.
        if (err instanceof UniqueViolation && attempt === 1) continue;
        if (err instanceof UniqueViolation) {
          const reason = err.constraint === 'credentials_id' ? 'CREDENTIALS_IN_USE' : 'DEVICE_EXISTS';
          return this.failed(source, profile, new Refused(reason, `unique index ${err.constraint} refused the write`), named.name);
        }
        throw err;
      }
    }
  }

  /** What the chain would write, read from `st` (the store, or the transaction). Throws Refused for a FAILURE. */
  private async target(st: Store, profile: DeviceProfile, config: ProvisionConfiguration, leaf: ChainCertificate, name: string): Promise<Target> {
    const existing = await st.findDeviceByName(profile.tenantId, name);
    if (existing) {
      if (existing.profileId !== profile.id) throw new Refused('DEVICE_EXISTS', 'a device with this name belongs to another profile', existing);
      const current = await st.getCredentialsOfDevice(existing.id);
      // spec §7: only X509_CERTIFICATE credentials are rotated; others stay, and CONNECT then refuses the leaf.
      if (!current || current.credentialsType !== 'X509_CERTIFICATE') {
        throw new Refused('DEVICE_EXISTS', `the device has ${current?.credentialsType ?? 'no'} credentials, which a certificate chain does not replace`, existing);
      }
      if (current.credentialsId === buildCredentials('X509_CERTIFICATE', { certificate: leaf.base64 }).credentialsId) return { kind: 'registered' }; // a concurrent connection was first
      return { kind: 'rotate', existing, current };
    }
    if (config.allowCreateNewDevicesByX509Certificate !== true) throw new Refused('NOT_PRE_PROVISIONED', 'no device with this name, and the profile does not allow creating devices');
    return { kind: 'create' };
  }

  /** The writes of one provisioning, inside one transaction, with what the hook granted. Throws Refused for a FAILURE. */
  private async decide(tx: Store, profile: DeviceProfile, config: ProvisionConfiguration, leaf: ChainCertificate, name: string, source: RequestSource, hook: Proceed): Promise<Decision> {
    const { credentialsId, credentialsValue } = buildCredentials('X509_CERTIFICATE', { certificate: leaf.base64 });
    const target = await this.target(tx, profile, config, leaf, name);
    if (target.kind === 'registered') return { result: { status: 'REGISTERED', index: 0 } };
    const now = Date.now();
    if (target.kind === 'rotate') {
      const { existing, current } = target;
      // spec §7: certificate rotation, silent in ThingsBoard (no provisionState, no event); fleetgate audits it.
      await tx.updateCredentials({ ...current, credentialsId, credentialsValue, firstUsedTime: null });
      // The hook allowed the rotation: its label and attributes apply as to a pre-provisioned device it lets claim.
      if (hook.grant?.label !== undefined) await tx.updateDevice({ ...existing, label: hook.grant.label });
      await writeHookGrant(tx, existing.id, hook.grant, now);
      await this.audit.record(
        {
          tenantId: profile.tenantId,
          entityType: 'DEVICE',
          entityId: existing.id,
          entityName: existing.name,
          userId: null,
          userName: null,
          actionType: 'CREDENTIALS_UPDATED',
          actionData: { credentialsType: 'X509_CERTIFICATE', strategy: 'X509_CERTIFICATE_CHAIN', deviceProfileId: profile.id, ...(hook.detail ? { note: hook.detail } : {}) },
          actionStatus: 'SUCCESS',
          actionFailureDetails: null,
          source: source.address ? `${source.transport}:${source.address}` : source.transport,
        },
        tx,
      );
      return { result: { status: 'ROTATED', deviceId: existing.id, deviceName: existing.name }, replaced: current.credentialsId };
    }
    const device: Device = {
      id: newId(),
      tenantId: profile.tenantId,
      profileId: profile.id,
      name,
      type: profile.name, // spec §6: type = profile name
      label: hook.grant?.label ?? null,
      additionalInfo: null,
      createdByProvisioning: true,
      createdTime: now,
    };
    const creds: DeviceCredentials = { id: newId(), deviceId: device.id, credentialsType: 'X509_CERTIFICATE', credentialsId, credentialsValue, createdTime: now, firstUsedTime: null };
    await tx.insertDevice(device, creds);
    // spec §6 side effects of a created device: provisionState attribute and the PROVISION_SUCCESS audit row.
    await tx.insertAttributeIfAbsent(device.id, 'SERVER_SCOPE', { key: PROVISION_STATE_KEY, value: { type: 'STRING', value: PROVISIONED } }, now);
    await writeHookGrant(tx, device.id, hook.grant, now);
    const detail = hook.detail ? `X.509 certificate chain; ${hook.detail}` : 'X.509 certificate chain';
    await this.audit.provisioning(tx, { req: auditRequest(profile, name), source, profile, device, status: 'SUCCESS', reason: null, detail });
    return { result: { status: 'CREATED', deviceId: device.id, deviceName: name } };
  }

  /** After the commit: drop cached misses of the leaf (spec §7 step 6 authenticates by it next) and retired ids. */
  private committed(source: RequestSource, decision: Decision, leaf: ChainCertificate, name: string): X509ChainResult {
    const { result, replaced } = decision;
    if (result.status === 'CREATED' || result.status === 'ROTATED') {
      if (replaced) this.credentialsChanged(replaced, result.deviceId);
      this.credentialsChanged(leaf.hash, result.deviceId);
    } else {
      this.auth.invalidate(leaf.hash); // registered by another connection (maybe on another node) a moment ago
    }
    return this.logged(source, result, name);
  }

  private async failed(source: RequestSource, profile: DeviceProfile, refusal: Refused, name?: string): Promise<Failure> {
    const result: Failure = { status: 'FAILURE', reason: refusal.reason, detail: refusal.detail, profileId: profile.id };
    this.logged(source, result, name);
    await this.audit.provisioning(this.store, {
      req: auditRequest(profile, name),
      source,
      profile,
      device: refusal.device,
      status: 'FAILURE',
      reason: refusal.reason,
      detail: refusal.detail,
    });
    return result;
  }

  /**
   * One log line per decision: info when something was provisioned or refused, debug for lookups that changed nothing
   * and for INVALID_CHAIN (the transport logs that, as it closes the connection). Subjects only, never certificates.
   */
  private logged<R extends X509ChainResult>(source: RequestSource, result: R, deviceName?: string): R {
    const quiet = result.status === 'REGISTERED' || result.status === 'NO_PROFILE' || result.status === 'INVALID_CHAIN';
    const line = {
      event: 'x509_provision',
      transport: source.transport,
      address: source.address,
      status: result.status,
      reason: result.status === 'FAILURE' ? result.reason : undefined,
      profileId: result.status === 'FAILURE' ? result.profileId : undefined,
      deviceName,
      detail: 'detail' in result ? result.detail : undefined,
    };
    if (quiet) this.logger.debug(line, 'x509 chain provisioning');
    else this.logger.info(line, 'x509 chain provisioning');
    return result;
  }
}

/** The provisioning request an audit row records for chain provisioning (no secret exists on this path). */
function auditRequest(profile: DeviceProfile, deviceName: string | undefined): ProvisionRequest {
  return { provisionDeviceKey: profile.provisionDeviceKey ?? '', provisionDeviceSecret: '', deviceName, credentialsType: 'X509_CERTIFICATE' };
}

/**
 * Chain provisioning behind the throttle (DESIGN 6): a source blocked for failed logins or failed provisioning is not
 * looked at, and a chain that fails the signature check counts as a failed login, as a bad token would. Other
 * failures are counted when the CONNECT that follows is refused.
 */
export function throttledX509Provisioning(inner: X509ChainProvisioningApi, throttle: Throttle): X509ChainProvisioningApi {
  return {
    async provisionByChain(chain, source) {
      const address = throttle.sourceKey(source.address);
      const blocked = Math.max(throttle.authBySource.blockedMs(address), throttle.provisionBySource.blockedMs(address));
      if (blocked > 0) return { status: 'RATE_LIMITED', retryAfterSeconds: retryAfterSeconds(blocked) };
      const result = await inner.provisionByChain(chain, source);
      if (result.status === 'INVALID_CHAIN') await throttle.authBySource.failed(address);
      return result;
    },
  };
}
