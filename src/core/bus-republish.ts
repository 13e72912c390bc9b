/**
 * Publishes the cluster-wide change notices (credentials channel: device-updated, credentials-changed, profiles-changed,
 * export-rules-changed; device channel: credentials-revoked, device-deleted) after the change was saved. Redis pub/sub
 * is not durable, and the change is committed already, so a failed publish never fails the admin's request: it is
 * logged, counted, kept (the last one per device or credentials id) and published again when this node's bus is back,
 * and, until then, every few seconds. Other nodes also catch up from the store on their own reconnect
 * (src/core/bus-catch-up.ts): this covers the case where their subscriptions never broke but this node's publishing did.
 */
import type { CoreLogger } from './core-types.ts';
import type { Bus, BusMessage, DeviceUpdated } from './ports/bus.ts';
import { channels } from './ports/bus.ts';
import type { Store } from './ports/store.ts';

/** One notice waiting to be published again. */
interface Unpublished {
  channel: string;
  message: BusMessage;
  /** The device's tenant, for a device-updated notice (read again from the store before it is published again). */
  tenantId?: string;
}

/** Options of {@link BusRepublisher}; the defaults suit production. */
export interface RepublishOptions {
  /** At most this many notices wait; past it the oldest goes (a credentials one becomes one profiles-changed). */
  maxUnpublished?: number;
  /** How long a request waits for its publish before answering anyway (a frozen Redis never answers), ms. */
  waitMs?: number;
  /** How often waiting notices are tried again while the bus stays down, ms. */
  retryMs?: number;
}

/** The key that makes "last one wins": one waiting notice per device, credentials id, or kind. */
function keyOf(channel: string, message: BusMessage): string {
  switch (message.kind) {
    case 'device-updated':
      return `updated:${message.deviceId}`;
    case 'credentials-changed':
      return `credentials:${message.credentialsId}`;
    case 'credentials-revoked':
      return `revoked:${message.credentialsId}`;
    case 'device-deleted':
      return `deleted:${message.deviceId}`;
    default:
      return `${message.kind}:${channel}`;
  }
}

/** The device a notice is about, for the log (never a credentials id: an access token is a secret). */
function deviceOf(message: BusMessage): string | undefined {
  return 'deviceId' in message ? message.deviceId : undefined;
}

const PROFILES_CHANGED: Unpublished = { channel: channels.credentials, message: { kind: 'profiles-changed' } };

export class BusRepublisher {
  private readonly unpublished = new Map<string, Unpublished>();
  /** The latest publish attempt per key while it is unsettled: an older attempt that fails later is superseded. */
  private readonly attempts = new Map<string, object>();
  /** Keys published anew while a flush read devices: the flush must not send its older copy after them. */
  private touched: Set<string> | undefined;
  private retry: NodeJS.Timeout | undefined;
  private flushing = false;
  /** Retried notices that failed again in the current flush (logged once per flush, at debug level). */
  private retriesFailed = 0;
  private closed = false;
  private readonly maxUnpublished: number;
  private readonly waitMs: number;
  private readonly retryMs: number;

  constructor(
    private readonly bus: Bus,
    private readonly store: Store,
    private readonly logger: CoreLogger,
    /** Counts a failed publish (metric fleetgate_bus_publish_failures_total). */
    private readonly failed: (kind: BusMessage['kind']) => void = () => {},
    options: RepublishOptions = {},
  ) {
    this.maxUnpublished = options.maxUnpublished ?? 10_000;
    this.waitMs = options.waitMs ?? 2000;
    this.retryMs = options.retryMs ?? 2000;
    bus.onReconnect(() => this.flush());
  }

  /** Notices waiting to be published again (tests, diagnostics). */
  get waiting(): number {
    return this.unpublished.size;
  }

  /**
   * Publishes `message`; never rejects. Resolves once the bus took it, or failed (then it waits here), or after
   * waitMs (a frozen Redis: the publish goes on and is kept if it fails in the end).
   */
  publish(channel: string, message: BusMessage, tenantId?: string): Promise<void> {
    const key = keyOf(channel, message);
    this.unpublished.delete(key); // superseded: last one wins
    this.touched?.add(key);
    return this.send(key, { channel, message, tenantId }, true);
  }

  /**
   * Publishes one notice; a failure keeps it (unless a newer one of its key is on its way). The first failure of a
   * notice (`first`) is logged and counted; those of its retries are not (one summary line per flush instead).
   */
  private send(key: string, entry: Unpublished, first: boolean): Promise<void> {
    const attempt = {};
    this.attempts.set(key, attempt);
    const settled = this.bus.publish(entry.channel, entry.message).then(
      () => {
        if (this.attempts.get(key) === attempt) this.attempts.delete(key);
      },
      (err: unknown) => {
        if (this.attempts.get(key) !== attempt) return; // a newer one of the same key is on its way
        this.attempts.delete(key);
        if (first) this.reportFailure(entry, err);
        else this.retriesFailed++;
        this.keep(key, entry);
      },
    );
    if (!first) return settled;
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<void>((resolve) => (timer = setTimeout(resolve, this.waitMs)));
    return Promise.race([settled, timeout]).finally(() => clearTimeout(timer));
  }

  private reportFailure(entry: Unpublished, err: unknown): void {
    this.failed(entry.message.kind);
    const reason = err instanceof Error ? err.message : String(err);
    this.logger.warn({ event: 'bus-publish-failed', kind: entry.message.kind, deviceId: deviceOf(entry.message), reason }, 'bus publish failed: the change is saved; publishing it again when the bus is back');
  }

  private keep(key: string, entry: Unpublished): void {
    if (this.closed) return;
    this.unpublished.delete(key);
    this.unpublished.set(key, entry);
    while (this.unpublished.size > this.maxUnpublished) {
      const [oldestKey, oldest] = this.unpublished.entries().next().value!;
      this.unpublished.delete(oldestKey);
      // A dropped credentials notice must still empty every node's login cache: one profiles-changed does.
      if (oldest.message.kind === 'credentials-changed' && !this.unpublished.has('profiles-changed:credentials')) {
        this.unpublished.set('profiles-changed:credentials', PROFILES_CHANGED);
      }
      this.logger.warn({ event: 'bus-republish-dropped', kind: oldest.message.kind, deviceId: deviceOf(oldest.message) }, 'too many unpublished bus notices: the oldest is dropped');
    }
    this.scheduleRetry();
  }

  private scheduleRetry(): void {
    if (this.retry || this.closed) return;
    this.retry = setTimeout(() => {
      this.retry = undefined;
      this.flush();
    }, this.retryMs);
    this.retry.unref();
  }

  /**
   * Publishes every waiting notice again (on reconnect, and on the retry timer). One flush at a time: it ends when its
   * publishes settled, or after retryMs (a frozen Redis), and whatever failed waits for the next.
   */
  flush(): void {
    if (this.flushing || this.unpublished.size === 0 || this.closed) return;
    this.flushing = true;
    this.retriesFailed = 0;
    this.republish()
      .catch((err) => {
        this.logger.warn({ event: 'bus-republish-failed', reason: err instanceof Error ? err.message : String(err) }, 'bus notices not published again yet');
      })
      .finally(() => {
        this.flushing = false;
        if (this.retriesFailed > 0) this.logger.debug({ event: 'bus-republish-failed', failed: this.retriesFailed, waiting: this.unpublished.size }, 'bus notices not published again yet');
        if (this.unpublished.size > 0) this.scheduleRetry();
      });
  }

  private async republish(): Promise<void> {
    const batch = [...this.unpublished];
    this.unpublished.clear();
    const touched = (this.touched = new Set());
    try {
      const current = await this.currentDevices(batch);
      const sent: Promise<void>[] = [];
      // Sent in one synchronous loop: anything published after this starts goes out after it on the same connection.
      for (const [key, entry] of batch) {
        if (touched.has(key) || this.unpublished.has(key) || this.attempts.has(key)) continue; // a newer one exists
        if (entry.message.kind !== 'device-updated') sent.push(this.send(key, entry, false));
        else {
          const update = entry.tenantId === undefined ? entry.message : current.get(entry.message.deviceId);
          if (update) sent.push(this.send(key, { ...entry, message: update }, false)); // a deleted device: nothing to say
        }
      }
      this.touched = undefined;
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([Promise.all(sent), new Promise<void>((resolve) => (timer = setTimeout(resolve, this.retryMs)))]).finally(() => clearTimeout(timer));
    } catch (err) {
      // The store is away too: everything waits for the next try (unless published anew meanwhile).
      for (const [key, entry] of batch) if (!touched.has(key) && !this.unpublished.has(key)) this.unpublished.set(key, entry);
      throw err;
    } finally {
      this.touched = undefined;
    }
  }

  /**
   * The devices of waiting device-updated notices as they are now: another node may have changed one since this node's
   * notice failed, and an old name published late would undo that change on every node.
   */
  private async currentDevices(batch: [string, Unpublished][]): Promise<Map<string, DeviceUpdated>> {
    const byTenant = new Map<string, string[]>();
    for (const [, { message, tenantId }] of batch) {
      if (message.kind !== 'device-updated' || tenantId === undefined) continue;
      let ids = byTenant.get(tenantId);
      if (!ids) byTenant.set(tenantId, (ids = []));
      ids.push(message.deviceId);
    }
    const current = new Map<string, DeviceUpdated>();
    for (const [tenantId, ids] of byTenant) {
      for (let i = 0; i < ids.length; i += 500) {
        for (const d of await this.store.getDevicesByIds(tenantId, ids.slice(i, i + 500))) {
          const owner = d.additionalInfo?.lastConnectedGateway;
          current.set(d.id, { kind: 'device-updated', deviceId: d.id, deviceName: d.name, profileId: d.profileId, lastConnectedGateway: typeof owner === 'string' ? owner : null });
        }
      }
    }
    return current;
  }

  /** Stops retrying (waiting notices are dropped: the other nodes catch up from the store on their reconnect). */
  close(): void {
    this.closed = true;
    clearTimeout(this.retry);
    this.retry = undefined;
  }
}
