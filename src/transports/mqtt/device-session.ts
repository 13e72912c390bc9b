/**
 * A device's MQTT session: its identity, its subscriptions, and the server -> device pushes that core
 * delivers through core.sessions (shared attribute updates, server RPC; spec §8.2).
 */
import type { DeviceIdentity, DeviceSessionHandle, RpcDelivery, SessionHandlers } from '../../core/api.ts';
import type { MqttConnection } from './connection.ts';
import { RC } from './reason-codes.ts';
import { MqttGatewaySession } from './gateway/gateway-session.ts';
import { outboundTopic, type SubscriptionKind, type TopicStyle } from './topics.ts';

interface Subscription {
  style: TopicStyle;
  qos: 0 | 1;
}

/**
 * Subscriptions and pushes of one authenticated connection; a device may hold several. The session is its own
 * SessionHandlers for core (methods on the prototype, no closures per session): `onAttributes` and `onRpc` are set
 * while the device is subscribed to them.
 */
export class DeviceSession implements SessionHandlers {
  /** SessionHandlers: set while the device is subscribed to shared attribute updates. */
  onAttributes: ((update: Record<string, unknown>) => void) | undefined = undefined;
  /** SessionHandlers: set while the device is subscribed to server RPC. */
  onRpc: ((rpc: RpcDelivery) => Promise<void>) | undefined = undefined;
  /** Set when the device is a gateway: its sub-devices' traffic on `v1/gateway/*`. */
  readonly gateway: MqttGatewaySession | undefined;
  private subscriptions: Map<SubscriptionKind, Subscription> | undefined = undefined;
  private clientRpcTimers: Set<NodeJS.Timeout> | undefined = undefined;
  private readonly handle: DeviceSessionHandle;

  constructor(
    private readonly conn: MqttConnection,
    /** Replaced when the device is renamed or moves profile while connected (onDeviceUpdated). */
    public identity: DeviceIdentity,
  ) {
    this.handle = conn.ctx.core.sessions.open(identity, this);
    // gateway spec §1.2: decided once per connection, at CONNECT.
    this.gateway = identity.gateway ? new MqttGatewaySession(conn, identity) : undefined;
  }

  /** Records a subscription; attribute and RPC subscriptions start the matching pushes. */
  subscribe(kind: SubscriptionKind, style: TopicStyle, qos: 0 | 1): void {
    (this.subscriptions ??= new Map()).set(kind, { style, qos });
    if (kind === 'attributes' || kind === 'rpc-request') this.updateHandlers();
  }

  /** Removes a subscription; false when there was none. */
  unsubscribe(kind: SubscriptionKind): boolean {
    const existed = this.subscriptions?.delete(kind) ?? false;
    if (existed && (kind === 'attributes' || kind === 'rpc-request')) this.updateHandlers();
    return existed;
  }

  /** QoS and topic style for server messages of `kind`: the subscription's, else QoS 1 (spec §8.2). */
  delivery(kind: SubscriptionKind, fallbackStyle: TopicStyle): Subscription {
    return this.subscriptions?.get(kind) ?? { style: fallbackStyle, qos: 1 };
  }

  /** SessionHandlers: the connection ends when the device's credentials are replaced. */
  onCredentialsRevoked(): void {
    this.conn.fail(RC.NOT_AUTHORIZED, 'device credentials replaced');
  }

  /** SessionHandlers, gateway spec §4.4: a deleted device's connection ends (MQTT 5: DISCONNECT 0x98 administrative action). */
  onDeviceDeleted(): void {
    this.conn.fail(RC.ADMINISTRATIVE_ACTION, 'device deleted');
  }

  /**
   * SessionHandlers: the device was renamed or moved to another profile; what it sends from now on is stored, exported
   * and matched under the new identity (TB: MqttTransportHandler.onDeviceUpdate). A gateway's own identity too.
   */
  onDeviceUpdated(identity: DeviceIdentity): void {
    this.identity = identity;
    this.gateway?.core.gatewayUpdated(identity);
  }

  private updateHandlers(): void {
    this.onAttributes = this.subscriptions?.has('attributes') ? this.pushAttributes : undefined;
    this.onRpc = this.subscriptions?.has('rpc-request') ? this.pushRpc : undefined;
    this.handle.update(this);
  }

  /** Shared attribute update or `{"deleted":[...]}` to subscribers of the attributes topic (spec §8.2). */
  private pushAttributes(update: Record<string, unknown>): void {
    const { style, qos } = this.delivery('attributes', 'v1');
    this.conn.publishAndForget(outboundTopic('attributes', style), JSON.stringify(update), qos);
  }

  /** Server RPC; at QoS 1 the promise resolves on the device's PUBACK (= DELIVERED, spec §8.2). */
  private pushRpc(rpc: RpcDelivery): Promise<void> {
    const { style, qos } = this.delivery('rpc-request', 'v1');
    const body = JSON.stringify({ method: rpc.method, params: rpc.params });
    return this.conn.publish(outboundTopic('rpc-request', style, rpc.requestId), body, qos);
  }

  /** Sends the answer to a client-side RPC on the response topic of the request's style. */
  replyToClientRpc(requestId: number, style: TopicStyle, body: string): Promise<void> {
    const { qos } = this.delivery('rpc-response', style);
    return this.conn.publish(outboundTopic('rpc-response', style, requestId), body, qos);
  }

  /** Runs `fn` after `ms` unless the session closes first. */
  later(ms: number, fn: () => void): void {
    const timers = (this.clientRpcTimers ??= new Set());
    const timer = setTimeout(() => {
      timers.delete(timer);
      fn();
    }, ms);
    timer.unref?.();
    timers.add(timer);
  }

  /** Pending client-side RPC timers (bounded by the caller). */
  get pendingTimers(): number {
    return this.clientRpcTimers?.size ?? 0;
  }

  close(): void {
    if (this.clientRpcTimers) for (const timer of this.clientRpcTimers) clearTimeout(timer);
    this.clientRpcTimers = undefined;
    this.handle.close();
    this.gateway?.close();
  }
}
