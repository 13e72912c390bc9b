/**
 * CoAP resource paths (spec §5.4, §8.4, ThingsBoard's CoapTransportResource feature detection, spec §9 item 41).
 */

/** Device API features reachable as `/api/v1/{token}/{feature}[/{id}]`. */
export type Feature = 'telemetry' | 'attributes' | 'rpc' | 'claim' | 'credentials';

/** `credentials` is fleetgate's (`/api/v1/{token}/credentials/rotate`, README "Rotation and reprovisioning"). */
const FEATURES: readonly string[] = ['telemetry', 'attributes', 'rpc', 'claim', 'credentials'];

/** What a request path addresses. */
export type Route =
  | { kind: 'provision' }
  | { kind: 'device'; token: string; feature: Feature; id?: string }
  /** `/api/v1/...` without a usable feature: 4.00 (spec §8.4 "any path without feature"). */
  | { kind: 'bad-path'; reason: string }
  /** Not under `/api/v1`: 4.04. */
  | { kind: 'unknown' };

/** Resolves Uri-Path segments to a route. */
export function resolveRoute(segments: readonly string[]): Route {
  if (segments[0] !== 'api' || segments[1] !== 'v1') return { kind: 'unknown' };
  // spec §5.4: /api/v1/provision, /api/v1/{anything}/provision (the segment is not validated),
  // and any 3-segment path with a `provision` segment.
  if (segments.length === 3 && segments.includes('provision')) return { kind: 'provision' };
  if (segments.length === 4 && segments[3] === 'provision') return { kind: 'provision' };
  if (segments.length < 4) return { kind: 'bad-path', reason: 'Path must be /api/v1/{accessToken}/{feature}' };
  const [, , token, feature, id, ...rest] = segments;
  if (!FEATURES.includes(feature)) return { kind: 'bad-path', reason: `Unknown feature "${feature}"` };
  if (feature === 'credentials' && (id !== 'rotate' || rest.length > 0)) return { kind: 'bad-path', reason: 'Path must be /api/v1/{accessToken}/credentials/rotate' };
  if (rest.length > 0 || (id !== undefined && feature !== 'rpc' && feature !== 'credentials')) return { kind: 'bad-path', reason: `Too many path segments for ${feature}` };
  return { kind: 'device', token, feature: feature as Feature, ...(id !== undefined ? { id } : {}) };
}
