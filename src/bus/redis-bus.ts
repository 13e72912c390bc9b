/**
 * The Redis bus for a cluster: Redis pub/sub carries messages to every node subscribed to a channel (a node
 * subscribes `device:<id>` while it holds a session of that device, so a message addressed to a device reaches the
 * node it is connected to), and presence entries say which nodes hold which devices. A node's presence lives only
 * as long as its heartbeat key, which expires when the node dies, so a dead node's entries vanish.
 */
import { randomUUID } from 'node:crypto';
import { Redis } from 'ioredis';
import { channels, type Bus, type BusHandler, type BusMessage } from '../core/ports/bus.ts';
import { redisRetryDelay, redisUnavailable } from './redis-unavailable.ts';

/** Options of {@link openRedisBus}. */
export interface RedisBusOptions {
  /** Prefix of every channel and key, so several clusters can share one Redis (default `fleetgate:`). */
  prefix?: string;
  /** This node's id in presence entries (default: a random uuid per process). */
  nodeId?: string;
  /** How long a node counts as alive after its last heartbeat, ms (default 15000; refreshed every third of it). */
  presenceTtlMs?: number;
  /** Errors that have no caller to reject: a failing handler, a lost heartbeat, a bad message. */
  onError?: (err: unknown, context: string) => void;
}

const DEVICE_CHANNEL = channels.device('');

/** A {@link Bus} over Redis pub/sub, with device presence per node. Create it with {@link openRedisBus}. */
export class RedisBus implements Bus {
  /** This node's id in presence entries. */
  readonly nodeId: string;
  private readonly prefix: string;
  private readonly ttlMs: number;
  private readonly onError: (err: unknown, context: string) => void;
  private readonly handlers = new Map<string, Set<BusHandler>>();
  /** Channels this node is subscribed to at Redis. */
  private readonly active = new Set<string>();
  /** Per channel, the tail of its queued subscribe/unsubscribe work, so they reach Redis in order. */
  private readonly pending = new Map<string, Promise<void>>();
  private heartbeat: NodeJS.Timeout | undefined;
  private closed = false;

  constructor(
    private readonly pub: Redis,
    private readonly sub: Redis,
    options: RedisBusOptions = {},
  ) {
    this.prefix = options.prefix ?? 'fleetgate:';
    this.nodeId = options.nodeId ?? randomUUID();
    this.ttlMs = options.presenceTtlMs ?? 15_000;
    this.onError = options.onError ?? (() => {});
    sub.on('message', (channel: string, text: string) => this.dispatch(channel, text));
    // The subscriber is connected before the bus is built: every later 'ready' is a reconnection (ioredis
    // resubscribes on its own; messages published while it was away are gone).
    sub.on('close', () => (this.lostAt ??= Date.now()));
    sub.on('ready', () => {
      const lostAt = this.lostAt;
      this.lostAt = undefined;
      for (const listener of this.reconnectListeners) {
        try {
          listener(lostAt);
        } catch (err) {
          this.onError(err, 'reconnect listener');
        }
      }
    });
  }

  private readonly reconnectListeners: ((lostAt: number | undefined) => void)[] = [];
  /** Date.now() when the subscriber connection was lost, until it is ready again. */
  private lostAt: number | undefined;

  onReconnect(listener: (lostAt: number | undefined) => void): void {
    this.reconnectListeners.push(listener);
  }

  /** Both connections ready (a subscriber that is reconnecting would miss messages) and the server answering. */
  async ping(): Promise<void> {
    for (const [name, connection] of [['publisher', this.pub], ['subscriber', this.sub]] as const) {
      if (connection.status !== 'ready') throw new Error(`Redis ${name} connection is ${connection.status}`);
    }
    await this.pub.ping();
  }

  /** Rejects with a DependencyUnavailableError (part bus) when Redis is down. */
  async publish(channel: string, message: BusMessage): Promise<void> {
    try {
      await this.pub.publish(this.prefix + channel, JSON.stringify(message));
    } catch (err) {
      throw redisUnavailable(err) ?? err;
    }
  }

  async subscribe(channel: string, handler: BusHandler): Promise<() => Promise<void>> {
    if (this.closed) throw new Error('bus is closed');
    let set = this.handlers.get(channel);
    if (!set) this.handlers.set(channel, (set = new Set()));
    // A handler of its own identity, so subscribing one function twice gives two independent subscriptions.
    const entry: BusHandler = (m, c) => handler(m, c);
    set.add(entry);
    const remove = () => {
      const current = this.handlers.get(channel);
      if (!current?.delete(entry)) return false;
      if (current.size === 0) this.handlers.delete(channel);
      return true;
    };
    try {
      await this.reconcile(channel);
    } catch (err) {
      if (remove()) await this.reconcile(channel).catch(() => {});
      throw redisUnavailable(err) ?? err;
    }
    return async () => {
      if (remove()) await this.reconcile(channel);
    };
  }

  /** Ids of the live nodes holding a session of the device (empty when it is connected nowhere). */
  async holders(deviceId: string): Promise<string[]> {
    const key = this.presenceKey(deviceId);
    const nodes = await this.pub.smembers(key);
    if (nodes.length === 0) return [];
    const checks = this.pub.pipeline();
    for (const n of nodes) checks.exists(this.nodeKey(n));
    const alive = ((await checks.exec()) ?? []).map(([err, n]) => (err ? 1 : Number(n))); // in doubt, alive
    const dead = nodes.filter((_, i) => alive[i] === 0);
    if (dead.length > 0) await this.pub.srem(key, ...dead); // a dead node's entries vanish for good
    return nodes.filter((_, i) => alive[i] === 1).sort();
  }

  /** Starts the heartbeat that keeps this node's presence alive. */
  async start(): Promise<void> {
    await this.beat();
    this.heartbeat = setInterval(() => void this.beat().catch((err) => this.onError(err, 'presence heartbeat')), Math.max(50, Math.floor(this.ttlMs / 3)));
    this.heartbeat.unref();
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    clearInterval(this.heartbeat);
    await Promise.allSettled([...this.pending.values()]);
    const held = [...this.active].filter((c) => c.startsWith(DEVICE_CHANNEL));
    this.handlers.clear();
    try {
      const batch = this.pub.multi();
      for (const c of held) batch.srem(this.presenceKey(c.slice(DEVICE_CHANNEL.length)), this.nodeId);
      batch.del(this.nodeKey(this.nodeId));
      await batch.exec();
    } catch (err) {
      this.onError(err, 'presence cleanup'); // the heartbeat key expires on its own
    }
    this.active.clear();
    this.sub.disconnect();
    await this.pub.quit().catch(() => this.pub.disconnect());
  }

  /** Refreshes the heartbeat; when it had lapsed (others may have dropped our entries), announces every device again. */
  private async beat(): Promise<void> {
    const previous = await this.pub.set(this.nodeKey(this.nodeId), '1', 'PX', this.ttlMs, 'GET');
    if (previous !== null) return;
    const held = [...this.active].filter((c) => c.startsWith(DEVICE_CHANNEL));
    if (held.length === 0) return;
    const batch = this.pub.pipeline();
    for (const c of held) batch.sadd(this.presenceKey(c.slice(DEVICE_CHANNEL.length)), this.nodeId);
    await batch.exec();
  }

  /** Brings this node's Redis subscription of `channel` (and its presence) in line with its handlers, in call order. */
  private reconcile(channel: string): Promise<void> {
    const run = async () => {
      const wanted = (this.handlers.get(channel)?.size ?? 0) > 0 && !this.closed;
      const device = channel.startsWith(DEVICE_CHANNEL) ? channel.slice(DEVICE_CHANNEL.length) : undefined;
      if (wanted && !this.active.has(channel)) {
        await this.sub.subscribe(this.prefix + channel);
        this.active.add(channel);
        if (device !== undefined) await this.pub.sadd(this.presenceKey(device), this.nodeId);
      } else if (!wanted && this.active.has(channel)) {
        this.active.delete(channel);
        if (device !== undefined) await this.pub.srem(this.presenceKey(device), this.nodeId);
        await this.sub.unsubscribe(this.prefix + channel);
      }
    };
    const next = (this.pending.get(channel) ?? Promise.resolve()).catch(() => {}).then(run);
    this.pending.set(channel, next);
    const forget = () => {
      if (this.pending.get(channel) === next) this.pending.delete(channel);
    };
    next.then(forget, forget);
    return next;
  }

  private dispatch(prefixed: string, text: string): void {
    if (!prefixed.startsWith(this.prefix)) return;
    const channel = prefixed.slice(this.prefix.length);
    const set = this.handlers.get(channel);
    if (!set || set.size === 0) return;
    let message: BusMessage;
    try {
      message = JSON.parse(text) as BusMessage;
    } catch (err) {
      this.onError(err, `unparseable message on ${prefixed}`);
      return;
    }
    for (const handler of [...set]) {
      try {
        handler(message, channel);
      } catch (err) {
        this.onError(err, `handler of ${prefixed}`);
      }
    }
  }

  private presenceKey(deviceId: string): string {
    return `${this.prefix}presence:${deviceId}`;
  }

  private nodeKey(nodeId: string): string {
    return `${this.prefix}node:${nodeId}`;
  }
}

/**
 * Connects to Redis (`redis://[:password@]host:port[/db]`) with one publishing and one subscribing connection and
 * starts this node's presence heartbeat. Rejects when Redis cannot be reached.
 */
export async function openRedisBus(url: string, options: RedisBusOptions = {}): Promise<RedisBus> {
  const connect = async () => {
    const redis = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 3, connectionName: 'fleetgate', retryStrategy: redisRetryDelay });
    redis.on('error', (err) => options.onError?.(err, 'redis connection'));
    try {
      await redis.connect();
    } catch (err) {
      redis.disconnect();
      throw err;
    }
    return redis;
  };
  const pub = await connect();
  let sub: Redis;
  try {
    sub = await connect();
  } catch (err) {
    pub.disconnect();
    throw err;
  }
  const bus = new RedisBus(pub, sub, options);
  try {
    await bus.start();
  } catch (err) {
    await bus.close();
    throw err;
  }
  return bus;
}
