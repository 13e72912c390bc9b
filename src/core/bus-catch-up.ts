/**
 * After a bus outage (bus.onReconnect): the change notices published meanwhile on the credentials channel may never
 * have arrived here (Redis pub/sub is not durable), so this node assumes it missed some. Its caches of logins,
 * profiles and export rules are dropped (core does that), and its open sessions are brought up to date from the store:
 * the devices that have sessions here are read in batches, one batch at a time, and each one whose name, profile or
 * owning gateway differs from what its sessions hold goes through the same path as a `device-updated` notice; one
 * that is gone ends its sessions as `device-deleted` does, and sessions that authenticated with credentials the device
 * no longer has end as `credentials-revoked` ends them.
 */
import type { CoreLogger } from './core-types.ts';
import type { Device } from './model.ts';
import type { DeviceUpdated } from './ports/bus.ts';
import type { Store } from './ports/store.ts';
import type { DeviceSession, SessionRegistry } from './sessions.ts';

/** Devices read per query (a node with 20,000 sessions reads them in 40 queries, one after another). */
export const CATCH_UP_BATCH = 500;
/** How long before a catch-up that failed (the store was away too) is tried again, ms. */
const RETRY_MS = 5000;

function ownerOf(device: Device): string | null {
  const owner = device.additionalInfo?.lastConnectedGateway;
  return typeof owner === 'string' ? owner : null;
}

/** Whether a session holds something of `device` other than it is now (the gateway flag is read at login only). */
function differs(session: DeviceSession, device: Device, owner: string | null): boolean {
  const { identity, handlers } = session;
  if (identity.deviceName !== device.name || identity.profileId !== device.profileId) return true;
  return handlers.subDeviceOf !== undefined && handlers.subDeviceOf !== owner;
}

export class BusCatchUp {
  private running: Promise<void> | undefined;
  private again = false;
  private closed = false;
  private retry: NodeJS.Timeout | undefined;
  /** While a catch-up runs: per device, the number of the last notice heard of it (a newer one wins over a read). */
  private readonly heard = new Map<string, number>();
  private heardCount = 0;

  constructor(
    private readonly store: Store,
    private readonly sessions: SessionRegistry,
    /** The path of a `device-updated` notice (this node's login cache and sessions). */
    private readonly apply: (update: DeviceUpdated) => void,
    private readonly logger: CoreLogger,
    private readonly batchSize = CATCH_UP_BATCH,
  ) {}

  /** A `device-updated` notice arrived: a catch-up under way must not apply an older read of the device after it. */
  noticed(deviceId: string): void {
    if (this.running) this.heard.set(deviceId, ++this.heardCount);
  }

  /** The bus is back: catches up (once more after the current one, when one is under way). Resolves when done. */
  reconnected(): Promise<void> {
    clearTimeout(this.retry);
    if (this.running) {
      this.again = true;
      return this.running;
    }
    this.running = this.run().finally(() => {
      this.running = undefined;
      this.heard.clear();
    });
    return this.running;
  }

  private async run(): Promise<void> {
    do {
      this.again = false;
      try {
        await this.catchUp();
      } catch (err) {
        this.logger.warn({ event: 'bus-catch-up-failed', reason: err instanceof Error ? err.message : String(err) }, 'sessions not brought up to date after the bus outage; trying again');
        if (!this.closed) {
          this.retry = setTimeout(() => void this.reconnected(), RETRY_MS);
          this.retry.unref();
        }
        return;
      }
    } while (this.again && !this.closed);
  }

  private async catchUp(): Promise<void> {
    const byTenant = new Map<string, string[]>();
    for (const [deviceId, sessions] of this.sessions.devicesWithSessions()) {
      const tenantId = sessions[0]?.identity.tenantId;
      if (tenantId === undefined) continue;
      let ids = byTenant.get(tenantId);
      if (!ids) byTenant.set(tenantId, (ids = []));
      ids.push(deviceId);
    }
    let updated = 0;
    let deleted = 0;
    let revoked = 0;
    for (const [tenantId, ids] of byTenant) {
      for (let i = 0; i < ids.length && !this.closed; i += this.batchSize) {
        const batch = ids.slice(i, i + this.batchSize);
        const before = this.heardCount;
        const found = new Map((await this.store.getDevicesByIds(tenantId, batch)).map((d) => [d.id, d]));
        // Sessions opened after this read may hold credentials newer than it: only those open before it are checked.
        const opened = batch.map((deviceId) => this.sessions.sessionsOf(deviceId));
        const credentials = await this.store.currentCredentialsIds(batch);
        for (let j = 0; j < batch.length; j++) revoked += await this.endReplacedCredentials(batch[j], credentials.get(batch[j]), opened[j]);
        for (const deviceId of batch) {
          if ((this.heard.get(deviceId) ?? 0) > before) continue; // a notice newer than this read was applied
          const sessions = this.sessions.sessionsOf(deviceId);
          if (sessions.length === 0) continue;
          const device = found.get(deviceId);
          if (!device) {
            deleted++;
            this.sessions.deviceDeleted(deviceId);
            continue;
          }
          const owner = ownerOf(device);
          if (!sessions.some((s) => differs(s, device, owner))) continue;
          updated++;
          this.apply({ kind: 'device-updated', deviceId, deviceName: device.name, profileId: device.profileId, lastConnectedGateway: owner });
        }
      }
    }
    if (updated + deleted + revoked > 0) this.logger.info({ event: 'bus-catch-up', updated, deleted, revoked }, 'sessions brought up to date after the bus outage');
  }

  /**
   * Sessions that authenticated with credentials the device no longer has (replaced meanwhile, their
   * `credentials-revoked` lost) end as that notice ends them, unless the old ones are in a rotation's grace period.
   * A device without credentials is gone: left to the device check. Returns how many credentials ids were ended.
   */
  private async endReplacedCredentials(deviceId: string, current: string | undefined, sessions: readonly DeviceSession[]): Promise<number> {
    if (current === undefined) return 0;
    const used = new Set<string>();
    for (const s of sessions) {
      const id = s.identity.credentialsId;
      if (!s.closed && id !== undefined && id !== current) used.add(id);
    }
    let ended = 0;
    for (const id of used) {
      if (await this.store.findCredentialsGrace(id, Date.now())) continue;
      this.sessions.credentialsRevoked(deviceId, id);
      ended++;
    }
    return ended;
  }

  close(): void {
    this.closed = true;
    clearTimeout(this.retry);
  }
}
