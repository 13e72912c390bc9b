/**
 * Live updates: committed telemetry and attribute changes of a device, delivered to whoever watches it on any node
 * (the WebSocket telemetry API, src/admin/ws/). Knows no socket.
 *
 * Changes are published on the bus (`live:<deviceId>`) only after their commit, and only for devices some node
 * watches ({@link LiveInterest}); a watcher subscribes that channel on its own node, so one path serves one node
 * and a cluster alike.
 */
import { channels, type Bus, type BusMessage, type LiveWireAttributes, type LiveWirePoints, type LiveWireValue } from './ports/bus.ts';
import type { CoreLogger } from './core-types.ts';
import type { LiveInterest } from './live-interest.ts';
import type { AttributeScope, KvEntry, KvValue } from './model.ts';
import type { WriteBatch } from './ports/store.ts';

/** Fields per point in {@link LiveChange.telemetry}: ts, key, type, value. */
export const LIVE_POINT_STRIDE = 4;

/** The type of a point that stands for a deleted latest value (ts 0, value ''). */
export const DELETED_TYPE = 'DELETED';
/** Prefix of the type of a latest value rewritten after a delete (`LATEST:DOUBLE`): it passes the LATEST filter. */
export const REWRITTEN_TYPE = 'LATEST:';

/** True for points a deletion produced ({@link LiveUpdates.telemetryDeleted}): they pass the LATEST_TELEMETRY filter. */
export function isDeletionPoint(type: string): boolean {
  return type === DELETED_TYPE || type.startsWith(REWRITTEN_TYPE);
}

/** The typed value of a point of {@link LiveChange.telemetry} at index `i` (a multiple of LIVE_POINT_STRIDE). */
export function livePointValue(points: LiveWirePoints, i: number): KvValue | null {
  const type = points[i + 2] as string;
  if (type === DELETED_TYPE) return null;
  return decodeValue([type.startsWith(REWRITTEN_TYPE) ? type.slice(REWRITTEN_TYPE.length) : type, points[i + 3]]);
}

/** One committed attribute write of one scope; a `null` value is a deleted key. */
export interface LiveAttributeChange {
  scope: AttributeScope;
  ts: number;
  entries: { key: string; value: KvValue | null }[];
}

/** What one commit changed for one device, in save order. */
export interface LiveChange {
  deviceId: string;
  /** When the change was committed (epoch ms, the committing node's clock). */
  committedAt: number;
  /**
   * Committed points, flat: `ts, key, type, value` repeated (LIVE_POINT_STRIDE), in save order; `type` is the
   * KvValue type and a LONG beyond 2^53 is decimal text. Read typed values with {@link livePointValue}.
   */
  telemetry: LiveWirePoints;
  attributes: LiveAttributeChange[];
}

export type LiveListener = (change: LiveChange) => void;

/** What the WebSocket API needs from core for live data. */
export interface LiveUpdatesApi {
  /**
   * Registers `listener` for the device's committed changes. Resolves, with the function that stops it, once changes
   * committed on any node from then on reach it (read a snapshot only after that, and nothing falls in between).
   */
  watch(deviceId: string, listener: LiveListener): Promise<() => void>;
  /** Devices this node watches (metrics). */
  watchedDevices(): number;
}

function encodeValue(value: KvValue): LiveWireValue {
  return [value.type, typeof value.value === 'bigint' ? value.value.toString() : value.value];
}

function decodeValue([type, value]: LiveWireValue): KvValue {
  if (type === 'LONG') return { type, value: typeof value === 'string' ? BigInt(value) : (value as number) };
  return { type, value } as KvValue;
}

type LiveMessage = Extract<BusMessage, { kind: 'live' }>;

/** The device's message in `messages`, added empty if it has none yet. */
function messageFor(messages: Map<string, LiveMessage>, deviceId: string): LiveMessage {
  let m = messages.get(deviceId);
  if (!m) messages.set(deviceId, (m = { kind: 'live', deviceId, committedAt: 0, telemetry: [], attributes: [] }));
  return m;
}

/** The attributes of a change that has none (shared, never written to). */
const NO_ATTRIBUTES: LiveAttributeChange[] = [];

/** The live-update hub of one node. Built by createCore; fed by the group commit and attribute writes. */
export class LiveUpdates implements LiveUpdatesApi {
  private readonly listeners = new Map<string, Set<LiveListener>>();
  private readonly busSubscriptions = new Map<string, Promise<() => Promise<void>>>();
  /** Called with the number of bus messages each commit published (metrics). */
  onPublished: ((messages: number) => void) | undefined;

  constructor(
    private readonly bus: Bus,
    private readonly interest: LiveInterest,
    private readonly logger: CoreLogger,
  ) {}

  async watch(deviceId: string, listener: LiveListener): Promise<() => void> {
    let set = this.listeners.get(deviceId);
    if (!set) {
      this.listeners.set(deviceId, (set = new Set()));
      this.busSubscriptions.set(deviceId, this.bus.subscribe(channels.live(deviceId), (m) => this.deliver(m)));
    }
    set.add(listener);
    const stop = () => this.unwatch(deviceId, listener);
    try {
      await this.busSubscriptions.get(deviceId);
      await this.interest.watch(deviceId);
    } catch (err) {
      stop();
      throw err;
    }
    return stop;
  }

  watchedDevices(): number {
    return this.listeners.size;
  }

  /** True when some node of the cluster (this one included) watches the device, as this node knows it. */
  watchedAnywhere(deviceId: string): boolean {
    return this.interest.has(deviceId);
  }

  private unwatch(deviceId: string, listener: LiveListener): void {
    const set = this.listeners.get(deviceId);
    if (!set?.delete(listener) || set.size > 0) return;
    this.listeners.delete(deviceId);
    const subscription = this.busSubscriptions.get(deviceId);
    this.busSubscriptions.delete(deviceId);
    const failed = (err: unknown) => this.logger.warn({ err, deviceId }, 'live unwatch failed');
    subscription?.then((unsubscribe) => unsubscribe()).catch(failed);
    this.interest.unwatch(deviceId).catch(failed);
  }

  /** Group-commit hook: publishes what the transaction committed, for watched devices only. */
  committed(batch: WriteBatch): void {
    if (this.interest.empty) return; // nobody watches anything: no per-point work at all
    let messages: Map<string, LiveMessage> | undefined;
    let device: string | undefined;
    /** The points of the current run's device, or undefined when nobody watches it. */
    let points: LiveWirePoints | undefined;
    for (const p of batch.telemetry) {
      if (p.deviceId !== device) {
        device = p.deviceId; // a message's points come together: one lookup for them all
        points = this.interest.has(device) ? messageFor((messages ??= new Map()), device).telemetry : undefined;
      }
      if (points === undefined) continue;
      const v = p.value.value;
      points.push(p.ts, p.key, p.value.type, typeof v === 'bigint' ? v.toString() : v);
    }
    for (const a of batch.attributes) {
      if (this.interest.has(a.deviceId)) messageFor((messages ??= new Map()), a.deviceId).attributes.push(this.wireAttributes(a.scope, a.ts, a.entries));
    }
    if (messages) this.publish([...messages.values()]);
  }

  /** Attributes written outside the group commit (admin API), after their commit. */
  attributesSaved(deviceId: string, scope: AttributeScope, entries: KvEntry[], ts: number): void {
    if (!this.interest.has(deviceId)) return;
    this.publish([{ kind: 'live', deviceId, committedAt: 0, telemetry: [], attributes: [this.wireAttributes(scope, ts, entries)] }]);
  }

  /** Attributes deleted (admin API), after the commit. */
  attributesDeleted(deviceId: string, scope: AttributeScope, keys: string[], ts: number): void {
    if (keys.length === 0 || !this.interest.has(deviceId)) return;
    const attributes: LiveWireAttributes = { scope, ts, entries: keys.map((k) => [k, null]) };
    this.publish([{ kind: 'live', deviceId, committedAt: 0, telemetry: [], attributes: [attributes] }]);
  }

  /**
   * Time series deleted (admin API), after the commit: each key whose latest value went is pushed as its new latest
   * value, or as deleted (`[0, ""]` on the socket) when none is left (spec §3.3). Such points pass the
   * LATEST_TELEMETRY filter.
   */
  telemetryDeleted(deviceId: string, latest: { key: string; now: { ts: number; value: KvValue } | null }[]): void {
    if (latest.length === 0 || !this.interest.has(deviceId)) return;
    const telemetry: LiveWirePoints = [];
    for (const { key, now } of latest) {
      if (now === null) telemetry.push(0, key, DELETED_TYPE, '');
      else telemetry.push(now.ts, key, REWRITTEN_TYPE + now.value.type, typeof now.value.value === 'bigint' ? now.value.value.toString() : now.value.value);
    }
    this.publish([{ kind: 'live', deviceId, committedAt: 0, telemetry, attributes: [] }]);
  }

  async close(): Promise<void> {
    const subscriptions = [...this.busSubscriptions.values()];
    this.listeners.clear();
    this.busSubscriptions.clear();
    await Promise.allSettled(subscriptions.map((s) => s.then((unsubscribe) => unsubscribe())));
    await this.interest.close();
  }

  private wireAttributes(scope: AttributeScope, ts: number, entries: KvEntry[]): LiveWireAttributes {
    return { scope, ts, entries: entries.map((e) => [e.key, encodeValue(e.value)]) };
  }

  private publish(messages: LiveMessage[]): void {
    const committedAt = Date.now();
    for (const m of messages) {
      m.committedAt = committedAt;
      this.bus.publish(this.channelOf(m.deviceId), m).catch(this.publishFailed);
    }
    this.onPublished?.(messages.length);
  }

  /** One handler for every failed publish (a bus failure, not a device's): no closure per message. */
  private readonly publishFailed = (err: unknown) => this.logger.warn({ err }, 'live update publish failed');

  /** `live:<deviceId>`, built once per device (a watched device publishes on every commit). */
  private readonly liveChannels = new Map<string, string>();
  private channelOf(deviceId: string): string {
    let channel = this.liveChannels.get(deviceId);
    if (channel === undefined) {
      if (this.liveChannels.size >= 100_000) this.liveChannels.clear(); // bounded: devices come and go
      this.liveChannels.set(deviceId, (channel = channels.live(deviceId)));
    }
    return channel;
  }

  private deliver(message: BusMessage): void {
    if (message.kind !== 'live') return;
    if (!Array.isArray(message.telemetry) || message.telemetry.length % LIVE_POINT_STRIDE !== 0) {
      this.logger.warn({ deviceId: message.deviceId }, 'malformed live update dropped');
      return;
    }
    const set = this.listeners.get(message.deviceId);
    if (!set || set.size === 0) return;
    let change: LiveChange;
    try {
      change = {
        deviceId: message.deviceId,
        committedAt: message.committedAt,
        telemetry: message.telemetry,
        attributes: message.attributes.length === 0 ? NO_ATTRIBUTES : message.attributes.map((a) => ({
          scope: a.scope as AttributeScope,
          ts: a.ts,
          entries: a.entries.map(([key, value]) => ({ key, value: value === null ? null : decodeValue(value) })),
        })),
      };
    } catch (err) {
      this.logger.warn({ err, deviceId: message.deviceId }, 'malformed live update dropped');
      return;
    }
    for (const listener of set.size === 1 ? set : [...set]) {
      try {
        listener(change);
      } catch (err) {
        this.logger.warn({ err, deviceId: message.deviceId }, 'live listener failed');
      }
    }
  }
}
