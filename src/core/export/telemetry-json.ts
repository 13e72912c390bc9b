/**
 * The `telemetry` array of export messages, rendered straight to JSON text on the commit path (issue 16): every
 * exported point passes through here, so it builds no objects and no Maps per point. The text is exactly what
 * `JSON.stringify` gives for the objects the reference rendering builds (`referenceTelemetry`): one entry per ts in
 * first-seen order, keys in first-seen order, the later value of a repeated key winning. A device whose points the
 * fast path cannot render that way (a ts seen again, a repeated key, a key JavaScript orders itself) falls back to
 * the reference rendering, so the output never depends on which path ran.
 */
import { kvToJson } from '../kv-json.ts';
import type { KvValue, TsPoint } from '../model.ts';

/** The JSON text of one stored value, as JSON.stringify renders kvToJson(value). */
export function kvJsonText(value: KvValue): string {
  switch (value.type) {
    case 'DOUBLE':
      return Number.isFinite(value.value) ? String(value.value) : 'null';
    case 'LONG':
      return typeof value.value === 'bigint' ? `"${value.value}"` : Number.isFinite(value.value) ? String(value.value) : 'null';
    case 'BOOLEAN':
      return value.value ? 'true' : 'false';
    case 'STRING':
      return JSON.stringify(value.value);
    default:
      return JSON.stringify(kvToJson(value));
  }
}

/** '000'..'999', for the low digits of a timestamp. */
const THREE_DIGITS = Array.from({ length: 1000 }, (_, i) => String(i).padStart(3, '0'));
let lastMillionsOf = -1;
let lastMillionsText = '';

/**
 * String(ts) for a timestamp, cheaper: String() of a 13-digit number costs ~150 ns (V8 formats it as a double and
 * caches every distinct one, evicting the cached text of repeated values), while the timestamps of a batch share
 * their millions (about 17 minutes), so that part is formatted once and the rest comes from a table.
 */
export function tsText(ts: number): string {
  if (!(ts >= 1e6 && ts <= Number.MAX_SAFE_INTEGER && Number.isInteger(ts))) return String(ts);
  const millions = Math.floor(ts / 1e6);
  const rest = ts - millions * 1e6;
  if (millions !== lastMillionsOf) {
    lastMillionsOf = millions;
    lastMillionsText = String(millions);
  }
  const thousands = Math.floor(rest / 1000);
  return lastMillionsText + THREE_DIGITS[thousands] + THREE_DIGITS[rest - thousands * 1000];
}

/** Keys as JSON strings (devices send few distinct keys; bounded so odd payloads cannot grow it without end). */
const quotedKeys = new Map<string, string>();
const QUOTED_KEYS_CAP = 10_000;

function quoted(key: string): string {
  let text = quotedKeys.get(key);
  if (text === undefined) {
    if (quotedKeys.size >= QUOTED_KEYS_CAP) quotedKeys.clear();
    quotedKeys.set(key, (text = JSON.stringify(key)));
  }
  return text;
}

/** Keys a plain object does not keep in insertion order (array indexes) or does not keep at all (`__proto__`). */
function reordered(key: string): boolean {
  const first = key.charCodeAt(0);
  if (first >= 0x30 && first <= 0x39) return /^(0|[1-9]\d{0,9})$/.test(key) && Number(key) < 4294967295;
  return key === '__proto__';
}

/** One device's entries so far; `fallback` once the fast path cannot render them exactly. */
interface DeviceSeries {
  entries: string[];
  lastTs: number;
  fallback: boolean;
}

/**
 * The JSON text of each device's `telemetry` array (`[{"ts":…,"values":{…}},…]`) for the points of one batch, in
 * order of each device's first point.
 */
export function telemetryJsonByDevice(points: readonly TsPoint[]): Map<string, string> {
  const series = new Map<string, DeviceSeries>();
  let fallbacks = 0;
  for (let i = 0; i < points.length; ) {
    const { deviceId, ts } = points[i];
    // A run: consecutive points of one device and one ts (one message's values, usually).
    let end = i + 1;
    while (end < points.length && points[end].deviceId === deviceId && points[end].ts === ts) end++;
    let s = series.get(deviceId);
    if (s === undefined) series.set(deviceId, (s = { entries: [], lastTs: -Infinity, fallback: false }));
    if (!s.fallback) {
      // A ts seen again (or out of order) would merge into an earlier entry; a repeated key would replace a value.
      if (ts <= s.lastTs || !renderable(points, i, end)) {
        s.fallback = true;
        fallbacks++;
      } else {
        s.lastTs = ts;
        let text = `{"ts":${tsText(ts)},"values":{${quoted(points[i].key)}:${kvJsonText(points[i].value)}`;
        for (let j = i + 1; j < end; j++) text += `,${quoted(points[j].key)}:${kvJsonText(points[j].value)}`;
        s.entries.push(`${text}}}`);
      }
    }
    i = end;
  }
  const reference = fallbacks > 0 ? referenceTelemetry(points, (id) => series.get(id)!.fallback) : undefined;
  const out = new Map<string, string>();
  for (const [deviceId, s] of series) out.set(deviceId, s.fallback ? JSON.stringify(reference!.get(deviceId)) : `[${s.entries.join(',')}]`);
  return out;
}

/** True when the run's keys are distinct and each keeps its place in a plain object. */
function renderable(points: readonly TsPoint[], from: number, to: number): boolean {
  if (to - from > 32) {
    const keys = new Set<string>();
    for (let j = from; j < to; j++) {
      const key = points[j].key;
      if (reordered(key) || keys.has(key)) return false;
      keys.add(key);
    }
    return true;
  }
  for (let j = from; j < to; j++) {
    const key = points[j].key;
    if (reordered(key)) return false;
    for (let k = from; k < j; k++) if (points[k].key === key) return false;
  }
  return true;
}

/**
 * The reference rendering of the points of the devices `wanted` picks: per device, objects for JSON.stringify (the
 * fast path's fallback, and its test oracle).
 */
export function referenceTelemetry(points: readonly TsPoint[], wanted: (deviceId: string) => boolean): Map<string, { ts: number; values: Record<string, unknown> }[]> {
  const byDevice = new Map<string, Map<number, Record<string, unknown>>>();
  for (const p of points) {
    if (!wanted(p.deviceId)) continue;
    let byTs = byDevice.get(p.deviceId);
    if (!byTs) byDevice.set(p.deviceId, (byTs = new Map()));
    let values = byTs.get(p.ts);
    if (!values) byTs.set(p.ts, (values = {}));
    values[p.key] = kvToJson(p.value);
  }
  return new Map([...byDevice].map(([deviceId, byTs]) => [deviceId, [...byTs].map(([ts, values]) => ({ ts, values }))]));
}
