/**
 * POST /api/v1/provision over CoAP (spec §5.4): JSON first, then ThingsBoard's protobuf message; the answer uses
 * the request's format. SUCCESS is 2.01; NOT_FOUND and FAILURE are 4.00 *with* the payload.
 */
import type { ProvisionRequest, ProvisionResult, RequestSource } from '../../core/api.ts';
import type { Core } from '../../core/core-types.ts';
import { FleetgateError } from '../../core/errors.ts';
import { decodeProvisionRequestProto, encodeProvisionResponseProto } from '../../core/provisioning/protobuf.ts';
import { renderProvisionJson } from '../../core/provisioning/render.ts';
import { parseProvisionJson } from '../../core/provisioning/request.ts';
import { jsonReply, protobufReply, withMaxAge } from './replies.ts';
import type { CoapReply } from './wire.ts';

/** Parses a provisioning payload; spec §2.1/§5.5: anything that is not a JSON object is tried as protobuf. */
export function parseProvisionPayload(payload: Buffer): { request: ProvisionRequest; format: 'json' | 'protobuf' } {
  try {
    return { request: parseProvisionJson(payload), format: 'json' };
  } catch (err) {
    if (!(err instanceof FleetgateError) || err.code !== 'MALFORMED_PAYLOAD') throw err; // missing key, bad enum: 4.00
  }
  // Throws MALFORMED_PAYLOAD (4.00) when the bytes are not a ProvisionDeviceRequestMsg either (spec §5.5).
  return { request: decodeProvisionRequestProto(payload), format: 'protobuf' };
}

/** spec §5.4: 2.01 on SUCCESS, 4.00 with the payload otherwise; DESIGN 6: a throttled request is 4.29. */
export function provisionCode(result: ProvisionResult): string {
  if (result.status === 'SUCCESS') return '2.01';
  return result.reason === 'RATE_LIMITED' ? '4.29' : '4.00';
}

/** Runs one provisioning request. Malformed input throws (mapped to 4.00 with a diagnostic by the caller). */
export async function provision(core: Core, payload: Buffer, source: RequestSource): Promise<CoapReply> {
  const { request, format } = parseProvisionPayload(payload);
  const result = await core.provisioning.provision(request, source);
  const code = provisionCode(result);
  const reply = format === 'json' ? jsonReply(code, renderProvisionJson(result)) : protobufReply(code, encodeProvisionResponseProto(result));
  return result.status !== 'SUCCESS' && result.retryAfterSeconds !== undefined ? withMaxAge(reply, result.retryAfterSeconds) : reply;
}
