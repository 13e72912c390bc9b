/**
 * Device activity, the ground of ThingsBoard's `active` flag (DeviceInfo, GET /api/tenant/deviceInfos).
 *
 * Definition (the same on every node): a device is active while `now < lastActivityTime + inactivityTimeout`.
 * `lastActivityTime` is persisted in `device_activity` by whichever node sees the device: when it authenticates (every
 * HTTP/CoAP request, every MQTT CONNECT), when a session opens or closes, and every `refreshMs` while a session stays
 * open on that node (ThingsBoard's transports report session activity periodically the same way). A node that dies
 * stops refreshing, so its devices fall inactive after the timeout: no node has to notice the death.
 * `lastConnectTime` / `lastDisconnectTime` record session opens and closes, for display.
 *
 * Reports are held in memory and written in one statement every `flushMs` (connects and disconnects at once), so the
 * cost is one upsert per device per flush, never one per message; a device whose activity this node wrote less than
 * `writeGapMs` ago is not written again for activity alone (a busy HTTP device costs one row every few seconds).
 */
import type { DeviceAuthApi, DeviceIdentity } from './api.ts';
import type { CoreLogger } from './core-types.ts';
import type { DeviceActivityWrite, Store } from './ports/store.ts';

/** Activity settings. */
export interface ActivitySettings {
  /** How long a device stays active after its last activity, ms (TB `state.defaultInactivityTimeoutInSec`: 600 s). */
  inactivityTimeoutMs: number;
  /** Longest delay before a report is written, ms. */
  flushMs?: number;
  /** How often devices with open sessions on this node are reported active, ms (default: a third of the timeout, at most 60 s). */
  refreshMs?: number;
  /** Activity alone is written at most this often per device, ms (default: a tenth of the timeout, at most 10 s). */
  writeGapMs?: number;
}

/** Records device activity and writes it to the store in batches. */
export class DeviceActivityTracker {
  private pending = new Map<string, DeviceActivityWrite>();
  /** The last activity time this node wrote per device. */
  private readonly written = new Map<string, number>();
  private readonly writeGapMs: number;
  private readonly flushTimer: NodeJS.Timeout;
  private readonly refreshTimer: NodeJS.Timeout;
  private flushing: Promise<void> = Promise.resolve();
  private urgent: NodeJS.Immediate | undefined;
  /** Devices with sessions open on this node (kept by the session registry). */
  openDevices: () => Iterable<string> = () => [];

  constructor(
    private readonly store: Store,
    readonly settings: ActivitySettings,
    private readonly logger: CoreLogger,
  ) {
    this.writeGapMs = settings.writeGapMs ?? Math.min(10_000, Math.floor(settings.inactivityTimeoutMs / 10));
    this.flushTimer = setInterval(() => void this.flush(), settings.flushMs ?? 1000);
    this.flushTimer.unref();
    const refresh = settings.refreshMs ?? Math.max(1000, Math.min(60_000, Math.floor(settings.inactivityTimeoutMs / 3)));
    this.refreshTimer = setInterval(() => {
      const now = Date.now();
      for (const deviceId of this.openDevices()) this.merge({ deviceId, lastActivityTime: now });
    }, refresh);
    this.refreshTimer.unref();
  }

  /** Devices whose last activity is at or after this time are active now. */
  activeSince(now = Date.now()): number {
    return now - this.settings.inactivityTimeoutMs;
  }

  /** Whether a device with this last activity time is active now. */
  isActive(lastActivityTime: number | null, now = Date.now()): boolean {
    return lastActivityTime !== null && lastActivityTime >= this.activeSince(now);
  }

  /** The device did something (authenticated, sent a message). Written within `flushMs`. */
  touched(deviceId: string): void {
    this.merge({ deviceId, lastActivityTime: Date.now() });
  }

  /** A session of the device opened on this node; written at once. */
  connected(deviceId: string): void {
    const now = Date.now();
    this.merge({ deviceId, lastConnectTime: now, lastActivityTime: now });
    this.flushSoon();
  }

  /** The device's last session on this node closed; written at once. */
  disconnected(deviceId: string): void {
    const now = Date.now();
    this.merge({ deviceId, lastDisconnectTime: now, lastActivityTime: now });
    this.flushSoon();
  }

  private merge(write: DeviceActivityWrite): void {
    const held = this.pending.get(write.deviceId);
    if (!held) {
      this.pending.set(write.deviceId, write);
      return;
    }
    for (const key of ['lastConnectTime', 'lastDisconnectTime', 'lastActivityTime'] as const) {
      const value = write[key];
      if (value !== undefined && value !== null && (held[key] ?? 0) < value) held[key] = value;
    }
  }

  private flushSoon(): void {
    if (this.urgent) return;
    this.urgent = setImmediate(() => {
      this.urgent = undefined;
      void this.flush();
    });
  }

  /** Writes what is held; resolves when written (errors are logged, the reports kept for the next try). */
  flush(): Promise<void> {
    this.flushing = this.flushing.then(async () => {
      if (this.pending.size === 0) return;
      const writes = [...this.pending.values()].filter((w) => {
        const onlyActivity = w.lastConnectTime == null && w.lastDisconnectTime == null;
        return !onlyActivity || (w.lastActivityTime ?? 0) - (this.written.get(w.deviceId) ?? 0) >= this.writeGapMs;
      });
      this.pending = new Map();
      try {
        for (let i = 0; i < writes.length; i += 500) await this.store.recordDeviceActivity(writes.slice(i, i + 500));
        if (this.written.size > 1_000_000) this.written.clear();
        for (const w of writes) if (w.lastActivityTime != null) this.written.set(w.deviceId, w.lastActivityTime);
      } catch (err) {
        this.logger.warn({ err }, 'device activity write failed; retrying with the next flush');
        for (const write of writes) this.merge(write);
      }
    });
    return this.flushing;
  }

  /** Stops the timers and writes what is held. */
  async close(): Promise<void> {
    clearInterval(this.flushTimer);
    clearInterval(this.refreshTimer);
    if (this.urgent) clearImmediate(this.urgent);
    this.urgent = undefined;
    await this.flush();
  }
}

/** Device authentication that reports each successful authentication as activity of the device. */
export function activityReportingAuth(inner: DeviceAuthApi, tracker: DeviceActivityTracker): DeviceAuthApi {
  const seen = <T extends DeviceIdentity | undefined>(identity: T): T => {
    if (identity) tracker.touched(identity.deviceId);
    return identity;
  };
  return {
    byAccessToken: async (token, transport, source) => seen(await inner.byAccessToken(token, transport, source)),
    byMqttCredentials: async (clientId, username, password, source) => seen(await inner.byMqttCredentials(clientId, username, password, source)),
    byX509Hash: async (hash, transport, source) => seen(await inner.byX509Hash(hash, transport, source)),
  };
}
