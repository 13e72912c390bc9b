/**
 * Renders stored telemetry and attribute values as ThingsBoard's TelemetryController does:
 * time series as strings (Java `toString` of the value) unless `useStrictDataTypes=true`,
 * attributes always typed, JSON values parsed. Serialised with lossless-json so 64-bit integers
 * (LONG values beyond 2^53, big numbers inside JSON values) keep every digit.
 */
import { LosslessNumber, parse as parseLossless, stringify as stringifyLossless } from 'lossless-json';
import type { AttributeEntry, KvValue } from '../core/model.ts';

/** Java's `Double.toString`: `1.0`, `21.5`, `1.0E7`, `1.0E-4`, `NaN`, `Infinity`. */
export function javaDoubleString(value: number): string {
  if (Number.isNaN(value)) return 'NaN';
  if (!Number.isFinite(value)) return value > 0 ? 'Infinity' : '-Infinity';
  if (value === 0) return Object.is(value, -0) ? '-0.0' : '0.0';
  const abs = Math.abs(value);
  if (abs >= 1e-3 && abs < 1e7) {
    const text = String(value);
    return text.includes('.') ? text : `${text}.0`;
  }
  const [mantissa, exponent] = value.toExponential().split('e');
  const digits = mantissa.includes('.') ? mantissa : `${mantissa}.0`;
  return `${digits}E${Number(exponent)}`;
}

function parseJsonValue(text: string): unknown {
  try {
    return parseLossless(text);
  } catch {
    return text; // stored text that is not JSON after all: show it as it is
  }
}

/** The typed value (`useStrictDataTypes=true`, and always for attributes). */
export function typedValue(kv: KvValue): unknown {
  switch (kv.type) {
    case 'JSON':
      return parseJsonValue(kv.value);
    case 'DOUBLE':
      // Jackson writes a double as Java's Double.toString does: `1.0`, not `1`.
      return Number.isFinite(kv.value) ? new LosslessNumber(javaDoubleString(kv.value)) : String(kv.value);
    default:
      return kv.value;
  }
}

/** The string value ThingsBoard returns for time series by default (`getValueAsString`). */
export function stringValue(kv: KvValue): string {
  switch (kv.type) {
    case 'BOOLEAN':
      return kv.value ? 'true' : 'false';
    case 'LONG':
      return kv.value.toString();
    case 'DOUBLE':
      return javaDoubleString(kv.value);
    case 'STRING':
    case 'JSON':
      return kv.value;
  }
}

/** A time series point as rendered in `{"key":[{"ts":..,"value":..}]}`; `null` renders a missing latest value. */
export function tsPointJson(point: { ts: number; value: KvValue | null }, strict: boolean): { ts: number; value: unknown } {
  if (point.value === null) return { ts: point.ts, value: null };
  return { ts: point.ts, value: strict ? typedValue(point.value) : stringValue(point.value) };
}

/** ThingsBoard `AttributeData`: `{"lastUpdateTs":..,"key":..,"value":..}`. */
export function attributeJson(entry: AttributeEntry): { lastUpdateTs: number; key: string; value: unknown } {
  return { lastUpdateTs: entry.lastUpdateTs, key: entry.key, value: typedValue(entry.value) };
}

/** JSON text of a value that may hold bigints or lossless numbers. */
export function toJsonText(value: unknown): string {
  return stringifyLossless(value) ?? 'null';
}
