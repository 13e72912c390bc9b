/**
 * Topics of ThingsBoard's device MQTT API (spec §8.2, [MQT]) and the subscription filters a device may use.
 * v1 topics are the reference; the compact v2 forms (`v2/t`, `v2/a`, ...) are accepted where cheap.
 */

/** spec §5.2 */
export const PROVISION_REQUEST_TOPIC = '/provision/request';
/** spec §5.2 */
export const PROVISION_RESPONSE_TOPIC = '/provision/response';
/** spec §5.2: username or client id that opens a provision-only session. */
export const PROVISION_USERNAME = 'provision';

/** Which API shape a device used, so server messages come back in the same shape. */
export type TopicStyle = 'v1' | 'v2';

/** What a device-session PUBLISH asks for. */
export type DeviceRoute =
  | { kind: 'telemetry' }
  | { kind: 'attributes' }
  | { kind: 'attributes-request'; requestId: number; style: TopicStyle }
  | { kind: 'rpc-reply'; requestId: number }
  | { kind: 'rpc-request'; requestId: number; style: TopicStyle }
  | { kind: 'claim' }
  /** spec thingsboard-ota §4.1: `v2/fw/request/{requestId}/chunk/{chunk}` (`v2/sw/...`). */
  | { kind: 'ota-chunk'; type: 'FIRMWARE' | 'SOFTWARE'; requestId: number; chunk: number }
  /** fleetgate's credentials rotation (README "Rotation and reprovisioning"). */
  | { kind: 'credentials-rotate' }
  | { kind: 'unknown' };

const V1 = 'v1/devices/me/';
const ATTR_REQ_V1 = `${V1}attributes/request/`;
const RPC_RES_V1 = `${V1}rpc/response/`;
const RPC_REQ_V1 = `${V1}rpc/request/`;
const TELEMETRY_V1 = `${V1}telemetry`;
const ATTRIBUTES_V1 = `${V1}attributes`;
const CLAIM_V1 = `${V1}claim`;
const TELEMETRY: DeviceRoute = { kind: 'telemetry' };
const ATTRIBUTES: DeviceRoute = { kind: 'attributes' };
const CLAIM: DeviceRoute = { kind: 'claim' };
const ROTATE_REQUEST_V1 = `${V1}credentials/rotate/request`;
const ROTATE_RESPONSE_V1 = `${V1}credentials/rotate/response`;
const ROTATE: DeviceRoute = { kind: 'credentials-rotate' };

/** spec thingsboard-ota §4.1: ids are `\d+` (bounded here to safe integers). */
const OTA_REQUEST = /^v2\/(fw|sw)\/request\/(\d{1,9})\/chunk\/(\d{1,9})$/;

/** Parses a request id segment: a decimal integer (TB reads it with Integer.valueOf). */
function requestIdOf(text: string): number | undefined {
  if (!/^-?\d{1,10}$/.test(text)) return undefined;
  const id = Number(text);
  return id >= -2147483648 && id <= 2147483647 ? id : undefined;
}

/** Strips the v2 payload-format suffix (`/j` JSON; `/p` protobuf is not supported). */
function v2Base(topic: string): string | undefined {
  if (topic.endsWith('/p')) return undefined;
  return topic.endsWith('/j') ? topic.slice(0, -2) : topic;
}

/** Maps a device PUBLISH topic to its route (spec §8.2). */
export function routeOf(topic: string): DeviceRoute {
  if (topic === TELEMETRY_V1) return TELEMETRY;
  if (topic === ATTRIBUTES_V1) return ATTRIBUTES;
  if (topic === CLAIM_V1) return CLAIM;
  if (topic === ROTATE_REQUEST_V1) return ROTATE;
  let id: number | undefined;
  if (topic.startsWith(ATTR_REQ_V1) && (id = requestIdOf(topic.slice(ATTR_REQ_V1.length))) !== undefined) {
    return { kind: 'attributes-request', requestId: id, style: 'v1' };
  }
  if (topic.startsWith(RPC_RES_V1) && (id = requestIdOf(topic.slice(RPC_RES_V1.length))) !== undefined) {
    return { kind: 'rpc-reply', requestId: id };
  }
  if (topic.startsWith(RPC_REQ_V1) && (id = requestIdOf(topic.slice(RPC_REQ_V1.length))) !== undefined) {
    return { kind: 'rpc-request', requestId: id, style: 'v1' };
  }
  if (!topic.startsWith('v2/')) return { kind: 'unknown' };
  const ota = OTA_REQUEST.exec(topic);
  if (ota) return { kind: 'ota-chunk', type: ota[1] === 'fw' ? 'FIRMWARE' : 'SOFTWARE', requestId: Number(ota[2]), chunk: Number(ota[3]) };
  const base = v2Base(topic);
  if (base === 'v2/t') return TELEMETRY;
  if (base === 'v2/a') return ATTRIBUTES;
  if (base?.startsWith('v2/a/req/') && (id = requestIdOf(base.slice(9))) !== undefined) {
    return { kind: 'attributes-request', requestId: id, style: 'v2' };
  }
  if (base?.startsWith('v2/r/res/') && (id = requestIdOf(base.slice(9))) !== undefined) return { kind: 'rpc-reply', requestId: id };
  if (base?.startsWith('v2/r/req/') && (id = requestIdOf(base.slice(9))) !== undefined) {
    return { kind: 'rpc-request', requestId: id, style: 'v2' };
  }
  return { kind: 'unknown' };
}

/** What a device subscribes to: one of the server -> device message streams. */
export type SubscriptionKind = 'attributes' | 'attributes-response' | 'rpc-request' | 'rpc-response' | 'fw-response' | 'sw-response' | 'fw-error' | 'sw-error' | 'credentials-rotate-response';

/** Filters a device session may subscribe to (spec §8.2); anything else gets a SUBACK failure. */
const FILTERS: ReadonlyMap<string, { kind: SubscriptionKind; style: TopicStyle }> = new Map([
  [`${V1}attributes`, { kind: 'attributes', style: 'v1' }],
  [`${V1}attributes/response/+`, { kind: 'attributes-response', style: 'v1' }],
  [`${V1}rpc/request/+`, { kind: 'rpc-request', style: 'v1' }],
  [`${V1}rpc/response/+`, { kind: 'rpc-response', style: 'v1' }],
  ['v2/a', { kind: 'attributes', style: 'v2' }],
  ['v2/a/j', { kind: 'attributes', style: 'v2' }],
  ['v2/a/res/+', { kind: 'attributes-response', style: 'v2' }],
  ['v2/r/req/+', { kind: 'rpc-request', style: 'v2' }],
  ['v2/r/res/+', { kind: 'rpc-response', style: 'v2' }],
  // spec thingsboard-ota §4.1: exactly these four; chunks and errors are delivered whether subscribed or not.
  ['v2/fw/response/+/chunk/+', { kind: 'fw-response', style: 'v2' }],
  ['v2/sw/response/+/chunk/+', { kind: 'sw-response', style: 'v2' }],
  ['v2/fw/error', { kind: 'fw-error', style: 'v2' }],
  ['v2/sw/error', { kind: 'sw-error', style: 'v2' }],
  [ROTATE_RESPONSE_V1, { kind: 'credentials-rotate-response', style: 'v1' }],
] as const);

/** The stream a subscription filter selects, or undefined when the filter is not supported. */
export function subscriptionOf(filter: string): { kind: SubscriptionKind; style: TopicStyle } | undefined {
  const known = FILTERS.get(filter);
  if (known) return known;
  // fleetgate also grants one exact chunk topic (ThingsBoard refuses it), so request/response clients such as
  // mosquitto_rr, which subscribe to the exact answer topic first, can fetch a chunk.
  const exact = OTA_RESPONSE.exec(filter);
  return exact ? { kind: exact[1] === 'fw' ? 'fw-response' : 'sw-response', style: 'v2' } : undefined;
}

const OTA_RESPONSE = /^v2\/(fw|sw)\/response\/\d{1,9}\/chunk\/\d{1,9}$/;

/** Topic on which the server publishes a message of `kind` in `style` (spec §8.2). */
export function outboundTopic(kind: SubscriptionKind, style: TopicStyle, requestId?: number): string {
  switch (kind) {
    case 'attributes':
      return style === 'v1' ? `${V1}attributes` : 'v2/a';
    case 'attributes-response':
      return style === 'v1' ? `${V1}attributes/response/${requestId}` : `v2/a/res/${requestId}`;
    case 'rpc-request':
      return style === 'v1' ? `${V1}rpc/request/${requestId}` : `v2/r/req/${requestId}`;
    case 'rpc-response':
      return style === 'v1' ? `${V1}rpc/response/${requestId}` : `v2/r/res/${requestId}`;
    case 'credentials-rotate-response':
      return ROTATE_RESPONSE_V1;
    default:
      throw new Error(`no outbound topic for ${kind}`); // OTA topics are built by ota.ts
  }
}
