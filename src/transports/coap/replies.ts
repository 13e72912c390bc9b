/**
 * Every CoAP answer the transport renders, and the one place errors become CoAP codes (DESIGN: the error registry
 * carries each code's CoAP signal; transports map errors in one place).
 */
import { parameters } from 'coap';
import type { ParsedPacket } from 'coap-packet';
import { FleetgateError, toFleetgateError, type ErrorCode } from '../../core/errors.ts';
import { CONTENT_FORMAT, encodeMessage, uintBuffer, type CoapReply } from './wire.ts';

/**
 * node-coap's server answers a payload smaller than this in one message and a larger one with Block2
 * (its `maxBlock2`, derived the same way from the same parameter when node-coap is loaded).
 */
const NODE_COAP_MAX_BLOCK = parameters.maxPayloadSize < 1024 ? 2 ** Math.floor(Math.log2(parameters.maxPayloadSize)) : 1024;

/** True when node-coap would send `payload` in a single message (no Block2), so the transport may send it itself. */
export const fitsOneMessage = (payload: Buffer | undefined): boolean => payload === undefined || payload.length < NODE_COAP_MAX_BLOCK;

/** Answers a request directly: piggybacked in the ACK of a CON, or as a NON (RFC 7252 §5.2). */
export function directAnswer(packet: ParsedPacket, reply: CoapReply, observe?: number): Buffer {
  return encodeMessage({ type: packet.confirmable ? 'ACK' : 'NON', messageId: packet.messageId, token: packet.token, reply, observe });
}

/** A JSON answer. Content-Format application/json is a deliberate choice: ThingsBoard sets none, which
 * Californium sends as text/plain (spec §5.4 "treat as ambiguous"); clients parse the payload either way. */
export function jsonReply(code: string, body: string | Buffer): CoapReply {
  return { code, payload: typeof body === 'string' ? Buffer.from(body, 'utf8') : body, format: CONTENT_FORMAT.json };
}

/** A protobuf answer (spec §5.4: response format follows the request format). */
export const protobufReply = (code: string, body: Buffer): CoapReply => ({ code, payload: body, format: CONTENT_FORMAT.octetStream });

/** An answer with no payload. */
export const emptyReply = (code: string): CoapReply => ({ code });

/** RFC 7252 §5.5.2 diagnostic payload: a short UTF-8 text saying what was wrong (issue 4, DESIGN 5). */
export function diagnosticReply(code: string, message: string): CoapReply {
  return { code, payload: Buffer.from(message.slice(0, 200), 'utf8'), format: CONTENT_FORMAT.text };
}

/** Maps anything thrown to its registry CoAP code with a diagnostic payload. Internal errors say nothing more. */
export function errorReply(err: unknown): CoapReply {
  const e = toFleetgateError(err);
  const message = e.code === 'INTERNAL' ? 'Internal server error' : e.message;
  const reply = diagnosticReply(e.signal.coap, message);
  return e.retryAfterSeconds === undefined ? reply : withMaxAge(reply, e.retryAfterSeconds);
}

/** RFC 8516 §4: a 4.29 carries Max-Age, the seconds after which the client may try again. */
export function withMaxAge(reply: CoapReply, seconds: number): CoapReply {
  return { ...reply, options: [...(reply.options ?? []), { name: 'Max-Age', value: uintBuffer(seconds) }] };
}

/** An error reply for a registry code. */
export const codeReply = (code: ErrorCode, message: string): CoapReply => errorReply(new FleetgateError(code, message));

/** RFC 7959 §2.9.3: 4.13 carries Size1, the largest body the server accepts. */
export function tooLargeReply(limit: number): CoapReply {
  const reply = codeReply('PAYLOAD_TOO_LARGE', `Payload exceeds the limit of ${limit} bytes`);
  return { ...reply, options: [{ name: 'Size1', value: uintBuffer(limit) }] };
}

/** RFC 7252 §5.8: a method the resource does not support. */
export const methodNotAllowed = (method: string, path: string): CoapReply => diagnosticReply('4.05', `${method} is not allowed on ${path}`);
