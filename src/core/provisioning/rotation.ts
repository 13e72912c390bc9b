/**
 * Credentials rotation (README "Rotation and reprovisioning"): a connected device asks for new credentials,
 * authenticated by its current ones, over MQTT (`v1/devices/me/credentials/rotate/request`), HTTP and CoAP
 * (`POST /api/v1/{token}/credentials/rotate`). The new credentials are committed before the answer; the old ones
 * keep working for a grace period (store `credentials_grace`), so a device whose answer was lost can still connect
 * and ask again — and asking again with the old credentials returns the same new ones instead of rotating twice.
 * Every node drops the cached old and new ids at once (bus `credentials-changed`), and a cached old id never
 * outlives its grace period (device-auth.ts).
 *
 * An administrator can require rotation for a profile: every device of it gets the shared attribute
 * `credentialsRotationRequired: true` (pushed to subscribed sessions); a device's rotation deletes it.
 */
import type { Actor, DeviceIdentity, RequestSource } from '../api.ts';
import type { AttributesApi } from '../api.ts';
import type { AuditRecorder } from '../audit.ts';
import type { CoreLogger } from '../core-types.ts';
import { randomAlphanumeric } from '../ids.ts';
import type { CredentialsType, DeviceCredentials } from '../model.ts';
import { sha3Hex } from '../credentials.ts';
import { CsrRejected, type CertificateAuthorityKeys } from './certificate-signing.ts';
import type { Store } from '../ports/store.ts';

/** Shared attribute telling a device to rotate its credentials. */
export const ROTATION_REQUIRED_KEY = 'credentialsRotationRequired';

export type RotationResult =
  | {
      status: 'SUCCESS';
      credentialsType: 'ACCESS_TOKEN' | 'X509_CERTIFICATE';
      /** The new access token, or the new certificate chain (PEM, leaf first) of an X.509 device. */
      credentialsValue: string;
      /** Until when (epoch ms) the credentials used for this request keep working. */
      previousCredentialsValidUntil: number;
    }
  | { status: 'FAILURE'; reason: 'UNSUPPORTED_CREDENTIALS_TYPE' | 'DEVICE_NOT_FOUND' | CsrRejected['reason']; errorMsg: string };

export interface CredentialsRotationApi {
  /**
   * Rotates the credentials of an authenticated device: a new access token, or for an X.509 device a certificate
   * signed from the CSR in `payload` (`{"csr":"<PEM>"}`) by its profile's certificateSigning CA. Never throws for
   * business outcomes.
   */
  rotate(device: DeviceIdentity, source: RequestSource, payload?: Buffer | string): Promise<RotationResult>;
  /** Sets `credentialsRotationRequired: true` on every device of the profile; returns how many. */
  requireRotation(tenantId: string, profileId: string, actor: Actor): Promise<{ devices: number }>;
}

const failed = (reason: Extract<RotationResult, { status: 'FAILURE' }>['reason'], errorMsg: string): RotationResult => ({ status: 'FAILURE', reason, errorMsg });

export class CredentialsRotation implements CredentialsRotationApi {
  constructor(
    private readonly store: Store,
    private readonly attributes: AttributesApi,
    private readonly audit: AuditRecorder,
    private readonly graceMs: number,
    private readonly logger: CoreLogger,
    /** Drops a credentials id from every node's cache (bus). */
    private readonly credentialsChanged: (credentialsId: string, deviceId: string) => Promise<void>,
    /** Signs the CSRs of X.509 devices (certificate-signing.ts). */
    private readonly caKeys?: CertificateAuthorityKeys,
  ) {}

  /** The next credentials: a token, or a certificate from the request's CSR; a FAILURE result when refused. */
  private async nextCredentials(device: DeviceIdentity, payload: Buffer | string | undefined): Promise<{ type: CredentialsType; id: string; value: string | null; answer: string } | RotationResult> {
    if (device.credentialsType === 'ACCESS_TOKEN') {
      const token = randomAlphanumeric(20);
      return { type: 'ACCESS_TOKEN', id: token, value: null, answer: token };
    }
    let csr: unknown;
    try {
      csr = (JSON.parse(typeof payload === 'string' ? payload : (payload ?? Buffer.alloc(0)).toString('utf8')) as { csr?: unknown }).csr;
    } catch {
      csr = undefined;
    }
    if (typeof csr !== 'string') return failed('INVALID_CSR', 'An X.509 device rotates with a new CSR: {"csr":"<PEM>"}');
    const profile = await this.store.getProfile(device.tenantId, device.profileId);
    if (!profile || !this.caKeys) return failed('CSR_NOT_SUPPORTED', 'The device profile does not sign certificates');
    try {
      const issued = await this.caKeys.signCsr(profile, csr, device.deviceName);
      return { type: 'X509_CERTIFICATE', id: sha3Hex(issued.certificateBody), value: issued.certificateBody, answer: issued.chainPem };
    } catch (err) {
      if (err instanceof CsrRejected) return failed(err.reason, err.detail);
      throw err;
    }
  }

  async rotate(device: DeviceIdentity, source: RequestSource, payload?: Buffer | string): Promise<RotationResult> {
    if ((device.credentialsType !== 'ACCESS_TOKEN' && device.credentialsType !== 'X509_CERTIFICATE') || !device.credentialsId) {
      return failed('UNSUPPORTED_CREDENTIALS_TYPE', `Only ACCESS_TOKEN and X509_CERTIFICATE credentials can be rotated by the device (these are ${device.credentialsType})`);
    }
    const presented = device.credentialsId;
    // A repeat with credentials in their grace period needs no new ones (see below): do not sign a CSR for nothing.
    const before = await this.store.getCredentialsOfDevice(device.deviceId);
    let next: Awaited<ReturnType<CredentialsRotation['nextCredentials']>> | undefined;
    if (before?.credentialsId === presented) {
      next = await this.nextCredentials(device, payload);
      if ('status' in next) return next;
    }
    const now = Date.now();
    const outcome = await this.store.transaction(async (tx) => {
      const current = await tx.getCredentialsOfDevice(device.deviceId);
      const stored = await tx.getDeviceById(device.deviceId);
      if (!current || !stored) return undefined;
      if (current.credentialsId !== presented) {
        // Authenticated by credentials in their grace period: the answer of the rotation that replaced them was
        // lost. Answer the current credentials again rather than rotating twice.
        const grace = await tx.findCredentialsGrace(presented, now);
        if (!grace || current.credentialsType !== device.credentialsType) return undefined;
        return { credentials: current, validUntil: grace.expiresTime, repeated: true, answer: await this.answerOf(current, device) };
      }
      if (!next || 'status' in next) return undefined; // the credentials changed since they were read: let the device retry
      await tx.deleteCredentialsGrace(now);
      const validUntil = now + this.graceMs;
      await tx.insertCredentialsGrace({ credentialsId: current.credentialsId, deviceId: device.deviceId, credentialsType: current.credentialsType, credentialsValue: current.credentialsValue, expiresTime: validUntil });
      const replacement: DeviceCredentials = { ...current, credentialsType: next.type, credentialsId: next.id, credentialsValue: next.value, createdTime: now, firstUsedTime: null };
      await tx.updateCredentials(replacement);
      await this.audit.record(
        {
          tenantId: stored.tenantId,
          entityType: 'DEVICE',
          entityId: stored.id,
          entityName: stored.name,
          userId: null,
          userName: null,
          actionType: 'CREDENTIALS_ROTATED',
          actionData: { credentialsType: replacement.credentialsType, previousCredentialsValidUntil: validUntil },
          actionStatus: 'SUCCESS',
          actionFailureDetails: null,
          source: source.address ? `${source.transport}:${source.address}` : source.transport,
        },
        tx,
      );
      return { credentials: replacement, validUntil, repeated: false, answer: next.answer };
    });
    if (!outcome) return failed('DEVICE_NOT_FOUND', 'The device or its credentials no longer exist');
    if (!outcome.repeated) {
      // Committed: now every node forgets both ids (the old one is then found in its grace row).
      await Promise.all([this.credentialsChanged(presented, device.deviceId), this.credentialsChanged(outcome.credentials.credentialsId, device.deviceId)]);
    }
    await this.clearRequirement(device.deviceId);
    this.logger.info({ event: 'credentials_rotated', deviceId: device.deviceId, transport: source.transport, address: source.address, repeated: outcome.repeated }, 'device credentials rotated');
    const credentialsType = outcome.credentials.credentialsType === 'X509_CERTIFICATE' ? 'X509_CERTIFICATE' : 'ACCESS_TOKEN';
    return { status: 'SUCCESS', credentialsType, credentialsValue: outcome.answer, previousCredentialsValidUntil: outcome.validUntil };
  }

  /** What a repeated request answers: the token, or the certificate as PEM followed by the profile's CA chain. */
  private async answerOf(current: DeviceCredentials, device: DeviceIdentity): Promise<string> {
    if (current.credentialsType !== 'X509_CERTIFICATE') return current.credentialsId;
    const body = (current.credentialsValue ?? '').replace(/(.{64})/g, '$1\n').trim();
    const profile = await this.store.getProfile(device.tenantId, device.profileId);
    const ca = (profile?.profileData?.provisionConfiguration?.certificateSigning as { caCertificate?: string } | undefined)?.caCertificate ?? '';
    return `-----BEGIN CERTIFICATE-----\n${body}\n-----END CERTIFICATE-----\n${ca.trim() ? `${ca.trim()}\n` : ''}`;
  }

  /** Deletes `credentialsRotationRequired` (pushing `{"deleted":[...]}` to the device's sessions) when it is set. */
  private async clearRequirement(deviceId: string): Promise<void> {
    try {
      const set = await this.store.getAttributes(deviceId, 'SHARED_SCOPE', [ROTATION_REQUIRED_KEY]);
      if (set.length === 0) return;
      const device = await this.store.getDeviceById(deviceId);
      if (device) await this.attributes.delete(device, 'SHARED_SCOPE', [ROTATION_REQUIRED_KEY]);
    } catch (err) {
      this.logger.warn({ err, deviceId }, 'could not clear credentialsRotationRequired');
    }
  }

  async requireRotation(tenantId: string, profileId: string, actor: Actor): Promise<{ devices: number }> {
    let devices = 0;
    for (let page = 0; ; page++) {
      const batch = await this.store.listDevices(tenantId, { pageSize: 1000, page, sortProperty: 'createdTime', sortOrder: 'ASC', profileId });
      for (const device of batch.data) {
        await this.attributes.save(device, 'SHARED_SCOPE', { [ROTATION_REQUIRED_KEY]: true });
        devices++;
      }
      if (!batch.hasNext) break;
    }
    await this.audit.action(actor, tenantId, { type: 'DEVICE_PROFILE', id: profileId, name: null }, 'CREDENTIALS_ROTATION_REQUIRED', { devices });
    return { devices };
  }
}

/** The JSON answer of a rotation on every transport. */
export function renderRotationJson(result: RotationResult): string {
  return JSON.stringify(result);
}
