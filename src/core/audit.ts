/** The audit log: who did what, when, from where. Never holds a secret (DESIGN 6; ThingsBoard logs them, spec §11.15). */
import type { Actor, AuditApi, ProvisionReason, ProvisionRequest, RequestSource } from './api.ts';
import { newId } from './ids.ts';
import type { AuditEntry, AuditQuery, Device, DeviceProfile, Page, PageQuery } from './model.ts';
import type { Store } from './ports/store.ts';

function sourceText(source: RequestSource): string {
  return source.address ? `${source.transport}:${source.address}` : source.transport;
}

/** What a provisioning audit row records, passed on to the export outbox (issue 16). */
export interface ProvisioningAuditEvent {
  req: ProvisionRequest;
  source: RequestSource;
  profile: DeviceProfile;
  device?: Device;
  status: 'SUCCESS' | 'FAILURE';
  reason: ProvisionReason | null;
  detail?: string;
}

/** spec §6: the audit row of a provisioning outcome; the request is recorded without its secret (DESIGN 6). */
function provisioningEntry(e: ProvisioningAuditEvent): AuditEntry {
  return {
    id: newId(),
    createdTime: Date.now(),
    tenantId: e.profile.tenantId,
    entityType: 'DEVICE',
    entityId: e.device?.id ?? null,
    entityName: e.device?.name ?? e.req.deviceName ?? null,
    userId: null,
    userName: null,
    actionType: e.status === 'SUCCESS' ? 'PROVISION_SUCCESS' : 'PROVISION_FAILURE',
    actionData: {
      provisionRequest: {
        deviceName: e.req.deviceName ?? null,
        credentialsType: e.req.credentialsType ?? 'ACCESS_TOKEN',
        provisionDeviceKey: e.req.provisionDeviceKey,
        gateway: e.req.gateway ?? false,
      },
      deviceProfileId: e.profile.id,
      strategy: e.profile.provisionType,
      reason: e.reason,
      ...(e.status === 'SUCCESS' && e.detail ? { note: e.detail } : {}),
    },
    actionStatus: e.status,
    actionFailureDetails: e.status === 'FAILURE' ? (e.detail ?? e.reason) : null,
    source: sourceText(e.source),
  };
}

export class AuditRecorder implements AuditApi {
  /** Set by the exporter: writes the outcome's outbox rows with the same store (the provisioning transaction). */
  onProvisioning: ((store: Store, event: ProvisioningAuditEvent) => Promise<void>) | undefined;

  constructor(private readonly store: Store) {}

  async record(entry: Omit<AuditEntry, 'id' | 'createdTime'>, store: Store = this.store): Promise<void> {
    await store.insertAudit({ ...entry, id: newId(), createdTime: Date.now() });
  }

  list(tenantId: string, query: PageQuery): Promise<Page<AuditEntry>> {
    return this.store.listAudit(tenantId, query);
  }

  search(tenantId: string, query: AuditQuery): Promise<Page<AuditEntry>> {
    return this.store.listAuditFiltered(tenantId, query);
  }

  /** An admin action on an entity. */
  action(actor: Actor, tenantId: string, entity: { type: string; id: string | null; name: string | null }, actionType: string, actionData: Record<string, unknown> = {}): Promise<void> {
    return this.record({
      tenantId,
      entityType: entity.type,
      entityId: entity.id,
      entityName: entity.name,
      userId: actor.userId,
      userName: actor.userName,
      actionType,
      actionData,
      actionStatus: 'SUCCESS',
      actionFailureDetails: null,
      source: sourceText(actor.source),
    });
  }

  /** spec §6 PROVISION_SUCCESS / PROVISION_FAILURE, with the request minus every secret. */
  async provisioning(store: Store, e: ProvisioningAuditEvent): Promise<void> {
    if (this.onProvisioning) await this.onProvisioning(store, e);
    await store.insertAudit(provisioningEntry(e));
  }

  /** The rows of many provisioning outcomes (a provisioning group), in one multi-row insert. */
  async provisioningMany(store: Store, events: readonly ProvisioningAuditEvent[]): Promise<void> {
    if (events.length === 0) return;
    if (this.onProvisioning) for (const e of events) await this.onProvisioning(store, e);
    await store.insertAudits(events.map(provisioningEntry));
  }
}
