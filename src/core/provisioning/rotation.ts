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
import type { DeviceCredentials } from '../model.ts';
import type { Store } from '../../store/store.ts';

/** Shared attribute telling a device to rotate its credentials. */
export const ROTATION_REQUIRED_KEY = 'credentialsRotationRequired';

export type RotationResult =
  | {
      status: 'SUCCESS';
      credentialsType: 'ACCESS_TOKEN';
      credentialsValue: string;
      /** Until when (epoch ms) the credentials used for this request keep working. */
      previousCredentialsValidUntil: number;
    }
  | { status: 'FAILURE'; reason: 'UNSUPPORTED_CREDENTIALS_TYPE' | 'DEVICE_NOT_FOUND'; errorMsg: string };

export interface CredentialsRotationApi {
  /** Rotates the credentials of an authenticated device (ACCESS_TOKEN only). Never throws for business outcomes. */
  rotate(device: DeviceIdentity, source: RequestSource): Promise<RotationResult>;
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
  ) {}

  async rotate(device: DeviceIdentity, source: RequestSource): Promise<RotationResult> {
    if (device.credentialsType !== 'ACCESS_TOKEN' || !device.credentialsId) {
      return failed('UNSUPPORTED_CREDENTIALS_TYPE', `Only ACCESS_TOKEN credentials can be rotated by the device (these are ${device.credentialsType})`);
    }
    const presented = device.credentialsId;
    const now = Date.now();
    const outcome = await this.store.transaction(async (tx) => {
      const current = await tx.getCredentialsOfDevice(device.deviceId);
      const stored = await tx.getDeviceById(device.deviceId);
      if (!current || !stored) return undefined;
      if (current.credentialsId !== presented) {
        // Authenticated by credentials in their grace period: the answer of the rotation that replaced them was
        // lost. Answer the current credentials again rather than rotating twice.
        const grace = await tx.findCredentialsGrace(presented, now);
        if (!grace || current.credentialsType !== 'ACCESS_TOKEN') return undefined;
        return { credentials: current, validUntil: grace.expiresTime, repeated: true, name: stored.name, tenantId: stored.tenantId };
      }
      await tx.deleteCredentialsGrace(now);
      const validUntil = now + this.graceMs;
      await tx.insertCredentialsGrace({ credentialsId: current.credentialsId, deviceId: device.deviceId, credentialsType: current.credentialsType, credentialsValue: current.credentialsValue, expiresTime: validUntil });
      const next: DeviceCredentials = { ...current, credentialsId: randomAlphanumeric(20), credentialsValue: null, createdTime: now, firstUsedTime: null };
      await tx.updateCredentials(next);
      await this.audit.record(
        {
          tenantId: stored.tenantId,
          entityType: 'DEVICE',
          entityId: stored.id,
          entityName: stored.name,
          userId: null,
          userName: null,
          actionType: 'CREDENTIALS_ROTATED',
          actionData: { credentialsType: next.credentialsType, previousCredentialsValidUntil: validUntil },
          actionStatus: 'SUCCESS',
          actionFailureDetails: null,
          source: source.address ? `${source.transport}:${source.address}` : source.transport,
        },
        tx,
      );
      return { credentials: next, validUntil, repeated: false, name: stored.name, tenantId: stored.tenantId };
    });
    if (!outcome) return failed('DEVICE_NOT_FOUND', 'The device or its credentials no longer exist');
    if (!outcome.repeated) {
      // Committed: now every node forgets both ids (the old one is then found in its grace row).
      await Promise.all([this.credentialsChanged(presented, device.deviceId), this.credentialsChanged(outcome.credentials.credentialsId, device.deviceId)]);
    }
    await this.clearRequirement(device.deviceId);
    this.logger.info({ event: 'credentials_rotated', deviceId: device.deviceId, transport: source.transport, address: source.address, repeated: outcome.repeated }, 'device credentials rotated');
    return { status: 'SUCCESS', credentialsType: 'ACCESS_TOKEN', credentialsValue: outcome.credentials.credentialsId, previousCredentialsValidUntil: outcome.validUntil };
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
