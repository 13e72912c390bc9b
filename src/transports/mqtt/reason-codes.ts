/**
 * MQTT reason codes, and the ONE place where core errors (src/core/errors.ts) become MQTT signals
 * (DESIGN "Transports map errors in one place").
 */
import { toFleetgateError, ERRORS, type FleetgateError } from '../../core/errors.ts';

/** MQTT 5 reason codes used by this transport (MQTT 5.0 §2.4). */
export const RC = {
  SUCCESS: 0x00,
  GRANTED_QOS_1: 0x01,
  NO_SUBSCRIPTION_EXISTED: 0x11,
  UNSPECIFIED_ERROR: 0x80,
  MALFORMED_PACKET: 0x81,
  PROTOCOL_ERROR: 0x82,
  IMPLEMENTATION_SPECIFIC_ERROR: 0x83,
  UNSUPPORTED_PROTOCOL_VERSION: 0x84,
  CLIENT_IDENTIFIER_NOT_VALID: 0x85,
  NOT_AUTHORIZED: 0x87,
  SERVER_BUSY: 0x89,
  SERVER_SHUTTING_DOWN: 0x8b,
  KEEP_ALIVE_TIMEOUT: 0x8d,
  TOPIC_FILTER_INVALID: 0x8f,
  TOPIC_NAME_INVALID: 0x90,
  TOPIC_ALIAS_INVALID: 0x94,
  PACKET_TOO_LARGE: 0x95,
  QUOTA_EXCEEDED: 0x97,
  PAYLOAD_FORMAT_INVALID: 0x99,
  QOS_NOT_SUPPORTED: 0x9b,
  CONNECTION_RATE_EXCEEDED: 0x9f,
} as const;

/** MQTT 3.1/3.1.1 CONNACK return codes. TB never sends 4 (spec §8.1). */
export const V3_CONNACK = { ACCEPTED: 0, UNACCEPTABLE_PROTOCOL: 1, IDENTIFIER_REJECTED: 2, SERVER_UNAVAILABLE: 3, NOT_AUTHORIZED: 5 } as const;

/** SUBACK failure: v3 0x80, v5 0x8F TOPIC_FILTER_INVALID (spec §5.2, §8.2). */
export const subackFailure = (version: number): number => (version === 5 ? RC.TOPIC_FILTER_INVALID : 0x80);

/**
 * CONNACK code for a failed authentication (spec §8.1 table). Core and store failures at connect time
 * are "server unavailable" (v3 3 / v5 0x88) rather than the 0x83 the registry uses on acks.
 */
export function connackCode(error: unknown, version: number): number {
  const err = toFleetgateError(error);
  const signal = err.code === 'INTERNAL' || err.code === 'TIMEOUT' ? ERRORS.SERVER_UNAVAILABLE : err.signal;
  if (version === 5) return signal.mqtt5;
  return signal.mqtt3 ?? V3_CONNACK.NOT_AUTHORIZED; // TB: never 4; unknown failures are "not authorised"
}

/** v5 PUBACK / DISCONNECT reason for an error raised while handling a PUBLISH. */
export function ackReason(error: unknown): number {
  return toFleetgateError(error).signal.mqtt5;
}

/** Reason codes a DISCONNECT may carry (MQTT 5.0 §3.14.2.1); parsers such as mqtt-packet reject others. */
const DISCONNECT_CODES = new Set([
  0x00, 0x04, 0x80, 0x81, 0x82, 0x83, 0x87, 0x89, 0x8b, 0x8d, 0x8e, 0x8f, 0x90, 0x93, 0x94, 0x95, 0x96, 0x97, 0x98, 0x99, 0x9a, 0x9b,
  0x9c, 0x9d, 0x9e, 0x9f, 0xa0, 0xa1, 0xa2,
]);

/**
 * The DISCONNECT that follows a refused v5 CONNACK (spec §8.1: same byte; 0x88 -> 0x89 SERVER_BUSY).
 * Undefined for CONNACK-only codes (0x85, 0x86), which are not valid DISCONNECT reasons: the connection
 * is then closed without one, as [MQTT-3.2.2-7] asks.
 */
export function disconnectAfterConnack(code: number): number | undefined {
  if (code === 0x88) return RC.SERVER_BUSY;
  return DISCONNECT_CODES.has(code) ? code : undefined;
}

/** Normalises an error for logging and mapping. */
export function classify(error: unknown): FleetgateError {
  return toFleetgateError(error);
}
