/**
 * Data out, as core offers it: export rules, the outbox rows that go with each write, and the delivery loop.
 */
import type { DeviceIdentity, ProvisionResult, RequestSource } from '../api.ts';
import type { CoreLogger } from '../core-types.ts';
import type { ExportSinkFactory } from '../ports/export-sink.ts';
import type { Store } from '../ports/store.ts';
import { ExportDelivery, type ExportObserver, type ExportSettings } from './delivery.ts';
import type { ExportKind, ExportRule } from './model.ts';
import { OutboxBuilder } from './outbox.ts';
import { ExportRules } from './rules.ts';

/** The device facts an event needs (a failed provisioning may have no device: then only its profile). */
type DeviceFacts = { deviceId: string | null; deviceName: string | null } & Pick<DeviceIdentity, 'tenantId' | 'profileId'>;

export class Exporter {
  readonly rules: ExportRules;
  readonly outbox: OutboxBuilder;
  readonly delivery: ExportDelivery;

  constructor(
    /** The store, for the admin routes that read the outbox and dead letters. */
    readonly store: Store,
    deps: { openSink: ExportSinkFactory; settings: ExportSettings; logger: CoreLogger; observer?: ExportObserver; rulesChanged: () => Promise<void> },
  ) {
    this.rules = new ExportRules(store, async (tenantId, id) => (await store.getProfile(tenantId, id)) !== undefined, deps.rulesChanged);
    this.delivery = new ExportDelivery(store, this.rules, deps.openSink, deps.settings, deps.logger, deps.observer);
    this.outbox = new OutboxBuilder(this.rules, this.delivery);
  }

  async start(): Promise<void> {
    await this.rules.reload();
    this.delivery.start();
  }

  /** Writes the outbox rows of one event about a device with `store` (the caller's transaction, when it has one). */
  async event(kind: ExportKind, device: DeviceFacts, data: Record<string, unknown>, store: Store = this.store): Promise<void> {
    if (!this.rules.wants(kind)) return;
    const rows = this.outbox.forDevice(kind, device, Date.now(), data);
    if (rows.length > 0) await store.exports.insertOutbox(rows);
  }

  /** A provisioning outcome (never the secret): written with the audit row, in the provisioning transaction. */
  provisioned(store: Store, device: DeviceFacts, result: Pick<ProvisionResult, 'status'> & { reason?: string | null }, source: RequestSource): Promise<void> {
    return this.event('provisioning', device, { status: result.status, reason: result.reason ?? null, transport: source.transport, address: source.address ?? null }, store);
  }

  rulesOf(tenantId: string): ExportRule[] {
    return this.rules.list(tenantId);
  }

  close(): Promise<void> {
    return this.delivery.close();
  }
}
