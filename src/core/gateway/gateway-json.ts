/**
 * Payloads of ThingsBoard's MQTT gateway API (gateway spec §2.2-§2.8), parsed into plain data. Syntax errors are
 * MALFORMED_PAYLOAD (MQTT 5 PUBACK 0x99), a wrong shape INVALID_ARGUMENT (0x83); each message names what is wrong, so a
 * gateway's log says why its message was refused.
 */
import { isLosslessNumber, type LosslessNumber } from 'lossless-json';
import { FleetgateError } from '../errors.ts';
import { parseJsonExact } from '../kv-json.ts';

/** Limits a parsed message must keep (config gatewayMaxDevicesPerMessage, gatewayMaxDeviceNameLength). */
export interface GatewayMessageLimits {
  maxDevicesPerMessage: number;
  maxNameLength: number;
}

/** One device's telemetry samples in a `v1/gateway/telemetry` message. */
export interface DeviceSamples {
  device: string;
  samples: { ts: number; values: Record<string, unknown> }[];
}

const invalid = (message: string) => new FleetgateError('INVALID_ARGUMENT', message);

function isObject(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v) && !isLosslessNumber(v);
}

/** The payload as a JSON object. TB: an empty payload is JSON null, a structural error. */
export function parseGatewayObject(payload: Buffer, topic: string): Record<string, unknown> {
  const root = payload.length === 0 ? null : parseJsonExact(payload);
  if (!isObject(root)) throw invalid(`${topic}: the payload must be a JSON object`);
  return root;
}

/**
 * A device name as a gateway sent it: a string (TB coerces numbers), not blank, without NUL, at most `maxLength`
 * characters. TB: blank names fail in its core after a 10 s timeout (spec §7 note 6); refused at once here.
 */
export function deviceName(value: unknown, maxLength: number, where: string): string {
  const name = typeof value === 'string' ? value : typeof value === 'number' || isLosslessNumber(value) ? String(isLosslessNumber(value) ? (value as LosslessNumber).value : value) : undefined;
  if (name === undefined) throw invalid(`${where}: "device" must be a string`);
  if (name.trim() === '') throw invalid(`${where}: Device name is empty!`);
  if (name.length > maxLength) throw invalid(`${where}: device name longer than ${maxLength} characters`);
  if (name.includes('\u0000')) throw invalid(`${where}: device name contains a NUL character`);
  return name;
}

function checkDeviceCount(count: number, limits: GatewayMessageLimits, topic: string): void {
  if (count === 0) throw invalid(`${topic}: no device entry in the message`);
  if (count > limits.maxDevicesPerMessage) {
    throw new FleetgateError('QUOTA_EXCEEDED', `${topic}: ${count} devices in one message, more than the limit of ${limits.maxDevicesPerMessage}`);
  }
}

/** `v1/gateway/connect` `{"device":"A","type":"T"}`; absent or null type is `default` (spec §2.2). */
export function parseConnect(payload: Buffer, limits: GatewayMessageLimits): { device: string; type: string } {
  const root = parseGatewayObject(payload, 'v1/gateway/connect');
  const device = deviceName(root.device, limits.maxNameLength, 'v1/gateway/connect');
  const type = root.type === undefined || root.type === null ? 'default' : root.type;
  if (typeof type !== 'string') throw invalid('v1/gateway/connect: "type" must be a string');
  // TB passes "" on and fails creating its profile (spec §3.5); the default profile is the evident intent.
  return { device, type: type.trim() === '' ? 'default' : type.trim() };
}

/** `v1/gateway/disconnect` `{"device":"A"}`. */
export function parseDisconnect(payload: Buffer, limits: GatewayMessageLimits): string {
  const root = parseGatewayObject(payload, 'v1/gateway/disconnect');
  return deviceName(root.device, limits.maxNameLength, 'v1/gateway/disconnect');
}

/** A sample's timestamp: a whole number of ms. */
function sampleTs(value: unknown, device: string): number {
  const text = isLosslessNumber(value) ? (value as LosslessNumber).value : typeof value === 'number' || typeof value === 'string' ? String(value) : '';
  if (!/^\d+$/.test(text) || !Number.isSafeInteger(Number(text))) throw new FleetgateError('MALFORMED_PAYLOAD', `v1/gateway/telemetry: "${device}": "ts" must be a whole number of milliseconds`);
  return Number(text);
}

/**
 * `v1/gateway/telemetry` (spec §2.4): device name -> array of samples, each `{"ts","values"}` or a key/value map at
 * server time; a `metadata` member is dropped (gateway latency metrics are not kept). Unlike TB, an entry that is not
 * an array is refused rather than skipped: a half-stored message is worse than a clear refusal.
 */
export function parseTelemetryMessage(payload: Buffer, limits: GatewayMessageLimits, now: number): DeviceSamples[] {
  const root = parseGatewayObject(payload, 'v1/gateway/telemetry');
  const names = Object.keys(root);
  checkDeviceCount(names.length, limits, 'v1/gateway/telemetry');
  return names.map((raw) => {
    const device = deviceName(raw, limits.maxNameLength, 'v1/gateway/telemetry');
    const list = root[raw];
    if (!Array.isArray(list)) throw invalid(`v1/gateway/telemetry: "${device}" must map to an array of samples`);
    const samples = list.map((item) => {
      if (!isObject(item)) throw invalid(`v1/gateway/telemetry: "${device}": each sample must be a JSON object`);
      if ('ts' in item && 'values' in item) {
        if (!isObject(item.values)) throw invalid(`v1/gateway/telemetry: "${device}": "values" must be a JSON object`);
        return { ts: sampleTs(item.ts, device), values: withoutMetadata(item.values) };
      }
      return { ts: now, values: withoutMetadata(item) };
    });
    return { device, samples };
  });
}

function withoutMetadata(values: Record<string, unknown>): Record<string, unknown> {
  if (!('metadata' in values)) return values;
  const { metadata: _metadata, ...rest } = values;
  return rest;
}

/** `v1/gateway/attributes` (spec §2.5): device name -> object of client attributes. Non-objects are refused. */
export function parseAttributesMessage(payload: Buffer, limits: GatewayMessageLimits): { device: string; values: Record<string, unknown> }[] {
  const root = parseGatewayObject(payload, 'v1/gateway/attributes');
  const names = Object.keys(root);
  checkDeviceCount(names.length, limits, 'v1/gateway/attributes');
  return names.map((raw) => {
    const device = deviceName(raw, limits.maxNameLength, 'v1/gateway/attributes');
    const values = root[raw];
    if (!isObject(values)) throw invalid(`v1/gateway/attributes: "${device}" must map to a JSON object`);
    return { device, values };
  });
}

/** A JSON integer (request and RPC ids). */
function integer(value: unknown, what: string): number {
  const n = isLosslessNumber(value) ? Number((value as LosslessNumber).value) : value;
  if (typeof n !== 'number' || !Number.isInteger(n) || n < -2147483648 || n > 2147483647) throw invalid(`${what} must be an integer`);
  return n;
}

/** `v1/gateway/attributes/request` (spec §2.6): `{"id","device","client","key"|"keys"}`, all required; `key` wins. */
export function parseAttributeRequest(payload: Buffer, limits: GatewayMessageLimits): { id: number; device: string; client: boolean; keys: string[] } {
  const topic = 'v1/gateway/attributes/request';
  const root = parseGatewayObject(payload, topic);
  const id = integer(root.id, `${topic}: "id"`);
  const device = deviceName(root.device, limits.maxNameLength, topic);
  if (typeof root.client !== 'boolean') throw invalid(`${topic}: "client" must be true or false`);
  let keys: string[];
  if (root.key !== undefined && root.key !== null) {
    if (typeof root.key !== 'string') throw invalid(`${topic}: "key" must be a string`);
    keys = [root.key];
  } else if (Array.isArray(root.keys) && root.keys.every((k) => typeof k === 'string')) keys = root.keys as string[];
  else throw invalid(`${topic}: "key" (a string) or "keys" (an array of strings) is required`);
  return { id, device, client: root.client, keys };
}

/** `v1/gateway/rpc` reply (spec §2.8): `{"device","id","data"}`, all required; `data` as JSON text is the result. */
export function parseRpcReply(payload: Buffer, limits: GatewayMessageLimits): { device: string; id: number; data: string } {
  const root = parseGatewayObject(payload, 'v1/gateway/rpc');
  const device = deviceName(root.device, limits.maxNameLength, 'v1/gateway/rpc');
  const id = integer(root.id, 'v1/gateway/rpc: "id"');
  if (root.data === undefined) throw invalid('v1/gateway/rpc: "data" is required');
  return { device, id, data: stringifyExact(root.data) };
}

/** JSON text of a value parsed by parseJsonExact (lossless numbers written as their digits). */
function stringifyExact(value: unknown): string {
  if (isLosslessNumber(value)) return (value as LosslessNumber).value;
  if (Array.isArray(value)) return `[${value.map(stringifyExact).join(',')}]`;
  if (value !== null && typeof value === 'object') return `{${Object.entries(value).map(([k, v]) => `${JSON.stringify(k)}:${stringifyExact(v)}`).join(',')}}`;
  return JSON.stringify(value);
}
