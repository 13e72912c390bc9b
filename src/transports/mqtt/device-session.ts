/**
 * A device's MQTT session: its identity, its subscriptions, and the server -> device pushes that core
 * delivers through core.sessions (shared attribute updates, server RPC; spec §8.2).
 */
import type { DeviceIdentity, DeviceSessionHandle, RpcDelivery } from '../../core/api.ts';
import type { MqttConnection } from './connection.ts';
import { RC } from './reason-codes.ts';
import { outboundTopic, type SubscriptionKind, type TopicStyle } from './topics.ts';

interface Subscription {
  style: TopicStyle;
  qos: 0 | 1;
}

/** Subscriptions and pushes of one authenticated connection; a device may hold several. */
export class DeviceSession {
  private readonly subscriptions = new Map<SubscriptionKind, Subscription>();
  private readonly handle: DeviceSessionHandle;
  private readonly clientRpcTimers = new Set<NodeJS.Timeout>();

  constructor(
    private readonly conn: MqttConnection,
    readonly identity: DeviceIdentity,
  ) {
    this.handle = conn.ctx.core.sessions.open(identity, this.endHandlers());
  }

  /** Records a subscription; attribute and RPC subscriptions start the matching pushes. */
  subscribe(kind: SubscriptionKind, style: TopicStyle, qos: 0 | 1): void {
    this.subscriptions.set(kind, { style, qos });
    if (kind === 'attributes' || kind === 'rpc-request') this.updateHandlers();
  }

  /** Removes a subscription; false when there was none. */
  unsubscribe(kind: SubscriptionKind): boolean {
    const existed = this.subscriptions.delete(kind);
    if (existed && (kind === 'attributes' || kind === 'rpc-request')) this.updateHandlers();
    return existed;
  }

  /** QoS and topic style for server messages of `kind`: the subscription's, else QoS 1 (spec §8.2). */
  delivery(kind: SubscriptionKind, fallbackStyle: TopicStyle): Subscription {
    return this.subscriptions.get(kind) ?? { style: fallbackStyle, qos: 1 };
  }

  /** The connection ends when the device's credentials are replaced or the device is deleted. */
  private endHandlers() {
    return {
      onCredentialsRevoked: () => this.conn.fail(RC.NOT_AUTHORIZED, 'device credentials replaced'),
      onDeviceDeleted: () => this.conn.fail(RC.NOT_AUTHORIZED, 'device deleted'),
    };
  }

  private updateHandlers(): void {
    this.handle.update({
      ...this.endHandlers(),
      onAttributes: this.subscriptions.has('attributes') ? this.pushAttributes : undefined,
      onRpc: this.subscriptions.has('rpc-request') ? this.pushRpc : undefined,
    });
  }

  /** Shared attribute update or `{"deleted":[...]}` to subscribers of the attributes topic (spec §8.2). */
  private readonly pushAttributes = (update: Record<string, unknown>): void => {
    const { style, qos } = this.delivery('attributes', 'v1');
    this.conn.publish(outboundTopic('attributes', style), JSON.stringify(update), qos).catch(() => {});
  };

  /** Server RPC; at QoS 1 the promise resolves on the device's PUBACK (= DELIVERED, spec §8.2). */
  private readonly pushRpc = (rpc: RpcDelivery): Promise<void> => {
    const { style, qos } = this.delivery('rpc-request', 'v1');
    const body = JSON.stringify({ method: rpc.method, params: rpc.params });
    return this.conn.publish(outboundTopic('rpc-request', style, rpc.requestId), body, qos);
  };

  /** Sends the answer to a client-side RPC on the response topic of the request's style. */
  replyToClientRpc(requestId: number, style: TopicStyle, body: string): Promise<void> {
    const { qos } = this.delivery('rpc-response', style);
    return this.conn.publish(outboundTopic('rpc-response', style, requestId), body, qos);
  }

  /** Runs `fn` after `ms` unless the session closes first. */
  later(ms: number, fn: () => void): void {
    const timer = setTimeout(() => {
      this.clientRpcTimers.delete(timer);
      fn();
    }, ms);
    timer.unref?.();
    this.clientRpcTimers.add(timer);
  }

  /** Pending client-side RPC timers (bounded by the caller). */
  get pendingTimers(): number {
    return this.clientRpcTimers.size;
  }

  close(): void {
    for (const timer of this.clientRpcTimers) clearTimeout(timer);
    this.clientRpcTimers.clear();
    this.handle.close();
  }
}
