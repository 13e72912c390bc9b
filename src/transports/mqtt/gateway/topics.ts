/**
 * Topics of ThingsBoard's MQTT gateway API (gateway spec §2.0, [MQT]): exact-string routes under `v1/gateway`.
 */

/** spec §1.6: a PUBLISH whose topic starts with this is gateway traffic (so `v1/gatewayX` too). */
export const GATEWAY_TOPIC_PREFIX = 'v1/gateway';
export const GATEWAY_ATTRIBUTES_TOPIC = 'v1/gateway/attributes';
export const GATEWAY_ATTRIBUTES_RESPONSE_TOPIC = 'v1/gateway/attributes/response';
export const GATEWAY_RPC_TOPIC = 'v1/gateway/rpc';

/** What a gateway PUBLISH asks for. */
export type GatewayRoute = 'connect' | 'disconnect' | 'telemetry' | 'attributes' | 'attributes-request' | 'rpc' | 'claim' | 'unknown';

const ROUTES: ReadonlyMap<string, GatewayRoute> = new Map([
  ['v1/gateway/connect', 'connect'],
  ['v1/gateway/disconnect', 'disconnect'],
  ['v1/gateway/telemetry', 'telemetry'],
  [GATEWAY_ATTRIBUTES_TOPIC, 'attributes'],
  ['v1/gateway/attributes/request', 'attributes-request'],
  [GATEWAY_RPC_TOPIC, 'rpc'],
  ['v1/gateway/claim', 'claim'],
] as const);

/** The route of a gateway topic; anything else (`v1/gateway/rpc/response`, `v1/gateway/metrics`, ...) is unknown. */
export function gatewayRouteOf(topic: string): GatewayRoute {
  return ROUTES.get(topic) ?? 'unknown';
}

/** A server -> gateway stream a gateway may subscribe to (subscribing is optional: unsubscribed streams use QoS 1). */
export type GatewaySubscription = 'attributes' | 'attributes-response' | 'rpc';

const FILTERS: ReadonlyMap<string, GatewaySubscription> = new Map([
  [GATEWAY_ATTRIBUTES_TOPIC, 'attributes'],
  [GATEWAY_ATTRIBUTES_RESPONSE_TOPIC, 'attributes-response'],
  [GATEWAY_RPC_TOPIC, 'rpc'],
] as const);

/** spec §1.6, §2.0: the three filters anyone may subscribe to; `v1/gateway/#` and the rest are refused. */
export function gatewaySubscriptionOf(filter: string): GatewaySubscription | undefined {
  return FILTERS.get(filter);
}
