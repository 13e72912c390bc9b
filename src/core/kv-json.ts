/**
 * Typed key-value JSON: parsing device payloads with ThingsBoard's value rules (spec §8.2 "JSON value typing")
 * and rendering stored values back to JSON.
 */
import { parse as parseLossless, isLosslessNumber, LosslessNumber } from 'lossless-json';
import { FleetgateError } from './errors.ts';
import type { KvEntry, KvValue, TsPoint } from './model.ts';

const INT64_MIN = -(2n ** 63n);
const INT64_MAX = 2n ** 63n - 1n;

function longOrString(digits: string): KvValue {
  const big = BigInt(digits);
  if (big < INT64_MIN || big > INT64_MAX) return { type: 'STRING', value: digits }; // spec §8.2: beyond long -> string
  return { type: 'LONG', value: big >= BigInt(Number.MIN_SAFE_INTEGER) && big <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(big) : big };
}

/** A JSON number token -> LONG (integers, incl. `1e3`) or DOUBLE (has a `.` or is fractional). */
function numberValue(token: string): KvValue {
  if (/^-?\d+$/.test(token)) return longOrString(token);
  const n = Number(token);
  if (!token.includes('.') && Number.isInteger(n) && Number.isSafeInteger(n)) return { type: 'LONG', value: n };
  return { type: 'DOUBLE', value: n };
}

/** A numeric string (type cast, spec §8.2 and [YML] json.type_cast_enabled=true) -> number; otherwise STRING. */
function stringValue(text: string): KvValue {
  const first = text.charCodeAt(0);
  if (!(first === 0x2d || first === 0x2e || (first >= 0x30 && first <= 0x39))) return { type: 'STRING', value: text }; // not -, . or a digit
  if (/^-?\d+$/.test(text)) return longOrString(text);
  if (/^-?(\d+\.\d+|\.\d+|\d+\.)$/.test(text)) return { type: 'DOUBLE', value: Number(text) };
  return { type: 'STRING', value: text };
}

function stringifyLossless(value: unknown): string {
  if (isLosslessNumber(value)) return (value as LosslessNumber).value;
  if (Array.isArray(value)) return `[${value.map(stringifyLossless).join(',')}]`;
  if (value !== null && typeof value === 'object') {
    return `{${Object.entries(value).map(([k, v]) => `${JSON.stringify(k)}:${stringifyLossless(v)}`).join(',')}}`;
  }
  return JSON.stringify(value);
}

// Shared: values are never modified once parsed.
const TRUE: KvValue = { type: 'BOOLEAN', value: true };
const FALSE: KvValue = { type: 'BOOLEAN', value: false };

/**
 * One JSON value -> typed value; undefined for `null` (skipped, spec §8.2). Numeric strings become numbers only
 * with `castStrings` (device payloads, [YML] json.type_cast_enabled); the admin REST API keeps strings as strings.
 */
export function toKvValue(value: unknown, castStrings = true): KvValue | undefined {
  switch (typeof value) {
    case 'number':
      return Number.isInteger(value) ? { type: 'LONG', value } : { type: 'DOUBLE', value };
    case 'boolean':
      return value ? TRUE : FALSE;
    case 'string':
      return castStrings ? stringValue(value) : { type: 'STRING', value };
    case 'undefined':
      return undefined;
  }
  if (value === null) return undefined;
  if (isLosslessNumber(value)) return numberValue((value as LosslessNumber).value);
  return { type: 'JSON', value: stringifyLossless(value) };
}

const isDigit = (c: number) => c >= 0x30 && c <= 0x39;

/**
 * Whether `text` holds a number JSON.parse could type wrongly: a fraction of zeros (`21.0` must stay a double), an
 * exponent (`1.5e3` is a double), or 16+ digits (beyond 2^53) — what the regular expression
 * `/\d\.0+(?![0-9])|\d[eE]|\d{16}/` matches, in one pass over the characters (the expression cost more than
 * JSON.parse itself on an MQTT telemetry payload: ~7% of the event loop's CPU under the distinct-ts bench, issue 17).
 * It may also match inside strings; that only costs the exact parser's time.
 */
export function needsExactNumbers(text: string): boolean {
  let digits = 0; // the length of the run of digits just before i
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (isDigit(c)) {
      if (++digits === 16) return true;
      continue;
    }
    if (digits > 0) {
      if (c === 0x65 || c === 0x45) return true; // e, E
      if (c === 0x2e && text.charCodeAt(i + 1) === 0x30) {
        let j = i + 2;
        while (text.charCodeAt(j) === 0x30) j++;
        if (!isDigit(text.charCodeAt(j))) return true; // NaN past the end: not a digit
      }
    }
    digits = 0;
  }
  return false;
}

/** Parses text keeping number tokens exact (native JSON.parse when no number could be mistyped). Throws MALFORMED_PAYLOAD. */
export function parseJsonExact(text: string | Buffer): unknown {
  const source = typeof text === 'string' ? text : text.toString('utf8');
  try {
    return needsExactNumbers(source) ? parseLossless(source) : JSON.parse(source);
  } catch (err) {
    throw new FleetgateError('MALFORMED_PAYLOAD', `Invalid JSON: ${(err as Error).message}`);
  }
}

function isObject(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v) && !isLosslessNumber(v);
}

/** Object members -> typed entries (null members skipped). */
export function objectToEntries(obj: Record<string, unknown>, castStrings = true): KvEntry[] {
  const out: KvEntry[] = [];
  for (const key of Object.keys(obj)) {
    const value = toKvValue(obj[key], castStrings);
    if (value) out.push({ key, value });
  }
  return out;
}

/** A telemetry item's timestamp (spec §8.2: its `ts` if it has both `ts` and `values`, else `now`). Throws MALFORMED_PAYLOAD. */
function telemetryItemTs(item: unknown, now: number): number {
  if (!isObject(item)) throw new FleetgateError('MALFORMED_PAYLOAD', 'Telemetry must be a JSON object or an array of objects');
  if (!('ts' in item && 'values' in item)) return now;
  const ts = item.ts;
  // The common case, a JSON.parse number: what the text test below accepts (`+ 0` turns -0 into 0, as Number('0')).
  if (typeof ts === 'number' && ts >= 0 && Number.isSafeInteger(ts) && isObject(item.values)) return ts + 0;
  const tsText = isLosslessNumber(ts) ? (ts as LosslessNumber).value : typeof ts === 'number' || typeof ts === 'string' ? String(ts) : '';
  if (!/^\d+$/.test(tsText) || !Number.isSafeInteger(Number(tsText))) throw new FleetgateError('MALFORMED_PAYLOAD', '"ts" must be a whole number of milliseconds');
  if (!isObject(item.values)) throw new FleetgateError('MALFORMED_PAYLOAD', '"values" must be a JSON object');
  return Number(tsText);
}

/** A telemetry item's values, once telemetryItemTs has accepted it. */
function telemetryItemValues(item: Record<string, unknown>): Record<string, unknown> {
  return 'ts' in item && 'values' in item ? (item.values as Record<string, unknown>) : item;
}

/** Telemetry payload (spec §8.2): `{k:v}`, `{"ts":..,"values":{..}}`, or an array of either. */
export function parseTelemetry(text: string | Buffer, now: number): { ts: number; entries: KvEntry[] }[] {
  const root = parseJsonExact(text);
  const items = Array.isArray(root) ? root : [root];
  return items.map((item) => {
    const ts = telemetryItemTs(item, now);
    return { ts, entries: objectToEntries(telemetryItemValues(item)) };
  });
}

/** A telemetry payload (as parseTelemetry reads it) as the points of `deviceId`, in payload order. */
export function parseTelemetryPoints(text: string | Buffer, deviceId: string, now: number): TsPoint[] {
  const root = parseJsonExact(text);
  if (!Array.isArray(root)) {
    const ts = telemetryItemTs(root, now);
    const values = telemetryItemValues(root as Record<string, unknown>);
    const keys = Object.keys(values);
    const points: TsPoint[] = new Array(keys.length);
    let n = 0;
    for (const key of keys) {
      const value = toKvValue(values[key]);
      if (value) points[n++] = { deviceId, ts, key, value };
    }
    if (n < keys.length) points.length = n;
    return points;
  }
  const points: TsPoint[] = [];
  for (const item of root) {
    const ts = telemetryItemTs(item, now);
    const values = telemetryItemValues(item);
    for (const key of Object.keys(values)) {
      const value = toKvValue(values[key]);
      if (value) points.push({ deviceId, ts, key, value });
    }
  }
  return points;
}

/** Attributes payload: a JSON object. */
export function parseAttributes(text: string | Buffer): KvEntry[] {
  const root = parseJsonExact(text);
  if (!isObject(root)) throw new FleetgateError('MALFORMED_PAYLOAD', 'Attributes must be a JSON object');
  return objectToEntries(root);
}

/** A stored value as a JSON-ready JS value (LONG beyond 2^53 as its decimal string). */
export function kvToJson(value: KvValue): unknown {
  switch (value.type) {
    case 'LONG':
      return typeof value.value === 'bigint' ? value.value.toString() : value.value;
    case 'JSON':
      try {
        return JSON.parse(value.value);
      } catch {
        return value.value;
      }
    default:
      return value.value;
  }
}

/** A stored value as ThingsBoard's non-strict string form (timeseries API without useStrictDataTypes). */
export function kvToString(value: KvValue): string {
  switch (value.type) {
    case 'DOUBLE':
      return Number.isInteger(value.value) ? value.value.toFixed(1) : String(value.value);
    case 'JSON':
      return value.value;
    default:
      return String(value.value);
  }
}

