/**
 * The MQTT side of a gateway connection: core's gateway session (src/core/gateway) plus the rendering of what core
 * sends to sub-devices: shared-attribute pushes and server RPCs on the gateway's topics (gateway spec §2.7, §2.8).
 */
import type { DeviceIdentity, GatewayAttributeResponse, GatewaySessionHandle, RpcDelivery } from '../../../core/api.ts';
import type { MqttConnection } from '../connection.ts';
import { GATEWAY_ATTRIBUTES_RESPONSE_TOPIC, GATEWAY_ATTRIBUTES_TOPIC, GATEWAY_RPC_TOPIC, type GatewaySubscription } from './topics.ts';

/** One authenticated gateway connection's sub-device traffic. */
export class MqttGatewaySession {
  /** Granted QoS per subscribed stream; spec §2.1: a stream never subscribed is sent at QoS 1. */
  private readonly qos = new Map<GatewaySubscription, 0 | 1>();
  readonly core: GatewaySessionHandle;

  constructor(
    private readonly conn: MqttConnection,
    identity: DeviceIdentity,
  ) {
    this.core = conn.ctx.core.gateway.open(identity, {
      attributes: (device, update) => this.send(GATEWAY_ATTRIBUTES_TOPIC, 'attributes', { device, data: update }).catch(() => {}),
      rpc: (device, rpc) => this.sendRpc(device, rpc),
    });
  }

  /** Records a subscription (its QoS is used for that stream). */
  subscribe(kind: GatewaySubscription, qos: 0 | 1): void {
    this.qos.set(kind, qos);
  }

  /**
   * The gateway showed it is running (its first `v1/gateway/*` PUBLISH, or a PINGREQ): now its sub-devices' pending
   * RPCs are delivered. Not at CONNACK or SUBACK: clients such as ThingsBoard's Python gateway client register their
   * message handlers only after their subscriptions are acknowledged, and an RPC arriving before would be acknowledged
   * by the MQTT library and lost to the application.
   */
  ready(): void {
    this.core.start();
  }

  unsubscribe(kind: GatewaySubscription): boolean {
    return this.qos.delete(kind);
  }

  private send(topic: string, kind: GatewaySubscription, body: unknown): Promise<void> {
    return this.conn.publish(topic, JSON.stringify(body), this.qos.get(kind) ?? 1);
  }

  /** spec §2.8: `{"device","data":{"id","method","params"}}`; at QoS 1 it resolves on the gateway's PUBACK. */
  private sendRpc(device: string, rpc: RpcDelivery): Promise<void> {
    return this.send(GATEWAY_RPC_TOPIC, 'rpc', { device, data: { id: rpc.requestId, method: rpc.method, params: rpc.params } });
  }

  /** spec §2.6: the answer to an attribute request. */
  sendAttributeResponse(response: GatewayAttributeResponse): void {
    this.send(GATEWAY_ATTRIBUTES_RESPONSE_TOPIC, 'attributes-response', response).catch(() => {});
  }

  close(): void {
    this.core.close();
  }
}
