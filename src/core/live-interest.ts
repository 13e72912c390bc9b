/**
 * Which devices have live subscribers anywhere in the cluster, known in every node's memory, so ingestion publishes
 * committed changes only for those devices and pays one map lookup per point otherwise (nothing at all while nobody
 * watches anything).
 *
 * Each node announces on the bus when it starts or stops watching a device, re-announces its whole set every
 * `ttlMs / 3`, and forgets another node's entries not refreshed within `ttlMs` (a dead node's interest lapses).
 * A starting node asks the others to announce at once.
 */
import { randomUUID } from 'node:crypto';
import { channels, type Bus, type BusMessage } from './ports/bus.ts';
import type { CoreLogger } from './core-types.ts';

/** Options of {@link LiveInterest}. */
export interface LiveInterestOptions {
  /** How long another node's interest counts without being refreshed, ms (default 30000). */
  ttlMs?: number;
  /** This node's id (default: a random uuid). */
  nodeId?: string;
}

/** The cluster-wide set of watched devices, as this node knows it. */
export class LiveInterest {
  readonly nodeId: string;
  private readonly ttlMs: number;
  /** Devices this node watches. */
  private readonly local = new Set<string>();
  /** Devices any node watches: device -> node -> expiry (epoch ms; this node's own entries never expire). */
  private readonly watchers = new Map<string, Map<string, number>>();
  private timer: NodeJS.Timeout | undefined;
  private unsubscribe: (() => Promise<void>) | undefined;

  constructor(
    private readonly bus: Bus,
    private readonly logger: CoreLogger,
    options: LiveInterestOptions = {},
  ) {
    this.nodeId = options.nodeId ?? randomUUID();
    this.ttlMs = options.ttlMs ?? 30_000;
  }

  /** Listens to other nodes' announcements, asks them for their sets and starts re-announcing this node's. */
  async start(): Promise<void> {
    this.unsubscribe = await this.bus.subscribe(channels.liveInterest, (m) => this.receive(m));
    await this.bus.publish(channels.liveInterest, { kind: 'live-interest-sync', nodeId: this.nodeId });
    this.timer = setInterval(() => this.refresh(), Math.max(50, Math.floor(this.ttlMs / 3)));
    this.timer.unref();
    // Announcements made while the bus was away are lost: tell our set again and ask for everyone's.
    this.bus.onReconnect(() => {
      const failed = (err: unknown) => this.logger.warn({ err }, 'live interest announcement failed');
      this.bus.publish(channels.liveInterest, { kind: 'live-interest-sync', nodeId: this.nodeId }).catch(failed);
      if (this.local.size > 0) this.announce([...this.local], true, true).catch(failed);
    });
  }

  /** True when some node (this one included) has a live subscriber for the device. */
  has(deviceId: string): boolean {
    return this.watchers.has(deviceId); // one lookup per point: this node's devices are in it too
  }

  /** True when nothing is watched anywhere: ingestion skips the per-point lookups. */
  get empty(): boolean {
    return this.watchers.size === 0;
  }

  /** This node starts watching a device; resolves once the announcement is published. */
  async watch(deviceId: string): Promise<void> {
    if (this.local.has(deviceId)) return;
    this.local.add(deviceId);
    this.mark(deviceId, this.nodeId, Infinity);
    await this.announce([deviceId], true, false);
  }

  /** This node stops watching a device. */
  async unwatch(deviceId: string): Promise<void> {
    if (!this.local.delete(deviceId)) return;
    this.unmark(deviceId, this.nodeId);
    await this.announce([deviceId], false, false);
  }

  async close(): Promise<void> {
    clearInterval(this.timer);
    const watched = [...this.local];
    for (const deviceId of watched) this.unmark(deviceId, this.nodeId);
    this.local.clear();
    if (watched.length > 0) await this.announce(watched, false, false).catch(() => {});
    await this.unsubscribe?.().catch(() => {});
  }

  private mark(deviceId: string, node: string, expiry: number): void {
    let nodes = this.watchers.get(deviceId);
    if (!nodes) this.watchers.set(deviceId, (nodes = new Map()));
    nodes.set(node, expiry);
  }

  private unmark(deviceId: string, node: string): void {
    const nodes = this.watchers.get(deviceId);
    if (nodes?.delete(node) && nodes.size === 0) this.watchers.delete(deviceId);
  }

  private announce(deviceIds: string[], watching: boolean, full: boolean): Promise<void> {
    return this.bus.publish(channels.liveInterest, { kind: 'live-interest', nodeId: this.nodeId, deviceIds, watching, full });
  }

  private refresh(): void {
    const now = Date.now();
    for (const [deviceId, nodes] of this.watchers) {
      for (const [node, expiry] of nodes) if (expiry <= now) nodes.delete(node);
      if (nodes.size === 0) this.watchers.delete(deviceId);
    }
    if (this.local.size > 0) this.announce([...this.local], true, true).catch((err) => this.logger.warn({ err }, 'live interest announcement failed'));
  }

  private receive(message: BusMessage): void {
    if (message.kind === 'live-interest-sync') {
      if (message.nodeId !== this.nodeId && this.local.size > 0) {
        this.announce([...this.local], true, true).catch((err) => this.logger.warn({ err }, 'live interest announcement failed'));
      }
      return;
    }
    if (message.kind !== 'live-interest' || message.nodeId === this.nodeId) return;
    const expiry = Date.now() + this.ttlMs;
    if (message.full) {
      // A full set replaces what we knew of that node: devices it no longer lists are dropped.
      const listed = new Set(message.deviceIds);
      for (const [deviceId, nodes] of this.watchers) {
        if (!listed.has(deviceId) && nodes.delete(message.nodeId) && nodes.size === 0) this.watchers.delete(deviceId);
      }
    }
    for (const deviceId of message.deviceIds) {
      if (message.watching) this.mark(deviceId, message.nodeId, expiry);
      else this.unmark(deviceId, message.nodeId);
    }
  }
}
