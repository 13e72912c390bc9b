/**
 * The paced rollout (spec thingsboard-ota §3.5): queued devices are notified in groups of at most `groupSize` per
 * `intervalMs` (ThingsBoard: 100 a minute), cluster-wide. The queue and the pacer live in the database: a node claims
 * a group under a lease (rows come back if it dies before finishing) and moves the shared pacer forward by
 * `intervalMs / groupSize` per claimed device, so pacing survives restarts and holds across nodes.
 */
import type { AttributesApi } from '../api.ts';
import type { CoreLogger } from '../core-types.ts';
import { assignmentAttributes, initiatedTelemetry } from './attributes.ts';
import type { OtaAssignments } from './assignments.ts';
import type { RolloutItem } from './model.ts';
import type { Store } from '../ports/store.ts';

export interface RolloutSettings {
  /** Devices per group (TB pack-size, 100). */
  groupSize: number;
  /** Time per group, ms (TB pack-interval-ms, 60000). */
  intervalMs: number;
  /** How long a claimed group is reserved for the node that claimed it, ms. */
  leaseMs?: number;
}

export class Rollout {
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  private stopped = false;

  constructor(
    private readonly store: Store,
    private readonly assignments: OtaAssignments,
    private readonly attributes: AttributesApi,
    private readonly settings: RolloutSettings,
    private readonly logger: CoreLogger,
  ) {}

  /** Polls the queue every `pollMs` (default: a device's share of the interval, between 50 ms and 1 s). */
  start(pollMs = Math.min(1000, Math.max(50, this.settings.intervalMs / Math.max(1, this.settings.groupSize)))): void {
    this.timer = setInterval(() => {
      if (this.running || this.stopped) return;
      this.running = this.tick()
        .then(() => undefined)
        .catch((err) => this.logger.warn({ err }, 'ota rollout: tick failed'))
        .finally(() => (this.running = undefined));
    }, pollMs);
    this.timer.unref();
  }

  /** Claims one group if the pacer allows and notifies its devices; returns how many were claimed. */
  async tick(now = Date.now()): Promise<number> {
    const { groupSize, intervalMs } = this.settings;
    const leaseMs = this.settings.leaseMs ?? Math.max(30_000, intervalMs);
    const items = await this.store.transaction((tx) => tx.ota.claimRollout(now, groupSize, leaseMs, intervalMs / Math.max(1, groupSize)));
    for (const item of items) {
      if (this.stopped) break; // the lease runs out and another node (or the next start) takes it
      try {
        await this.notify(item);
        await this.store.ota.completeRollout(item);
      } catch (err) {
        this.logger.warn({ err, deviceId: item.deviceId }, 'ota rollout: notification failed; retried after the lease');
      }
    }
    return items.length;
  }

  /** §3.5 steps 1-4 for one device. */
  private async notify(item: RolloutItem): Promise<void> {
    const device = await this.store.getDeviceById(item.deviceId);
    if (!device) return;
    if ((await this.assignments.effective(device, item.type)) !== item.packageId) return; // superseded: dropped, as TB does
    const pkg = await this.store.ota.getPackage(item.packageId);
    if (!pkg) return;
    await this.store.writeBatch({ telemetry: initiatedTelemetry(device.id, item.type, Date.now()), attributes: [] });
    const { values, deleted } = assignmentAttributes(pkg);
    if (deleted.length > 0) await this.attributes.delete(device, 'SHARED_SCOPE', deleted);
    await this.attributes.save(device, 'SHARED_SCOPE', values);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearInterval(this.timer);
    await this.running;
  }
}
