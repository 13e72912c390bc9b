/**
 * Random write batches for the telemetry model test: dense series (2-200 points of one series in a batch, mostly 31+:
 * the shape a chunked layout packs; spans inside an hour, of exactly an hour, a millisecond over, and wider; out of order,
 * with duplicate timestamps, over timestamps already stored, rewriting stored ones with another type), sparse ones
 * (1-3 points: SQLite stages them), and values at the edges of their types.
 */
import type { KvValue, TsPoint } from '../../../src/core/model.ts';
import type { TelemetryModel } from './model.ts';

/** The random draws a generator uses. */
export interface Draw {
  rnd(): number;
  /** An integer in [lo, hi]. */
  int(lo: number, hi: number): number;
  pick<T>(list: readonly T[]): T;
  chance(p: number): boolean;
}

/** Series keys: one a prefix of another, one with a quote, a backslash and non-ASCII characters (keys are any text). */
export const KEYS = ['a', 'ab', 'c', 'q"\\ü ✓'];
/** Where timestamps start (a realistic epoch ms). */
export const BASE_TS = 1_700_000_000_000;
export const HOUR = 3_600_000;
/** A timestamp relative to BASE_TS, for reports. */
export const rel = (ts: number | undefined) => (ts === undefined ? '-' : `B${ts - BASE_TS >= 0 ? '+' : ''}${ts - BASE_TS}`);

type Type = KvValue['type'];
/** The order a series changes type in when a batch rewrites stored timestamps. */
const CYCLE: Type[] = ['LONG', 'DOUBLE', 'BOOLEAN', 'STRING', 'JSON'];

/**
 * A value of `type`, often at an edge: LONGs beyond 2^53 and at the int64 ends, -0, fractions, ±Infinity (a device's
 * `1e400` is a DOUBLE Infinity: core/kv-json.ts). `edge`: only such values.
 */
export function valueOf({ int, pick, chance, rnd }: Draw, type: Type, edge = false): KvValue {
  switch (type) {
    case 'LONG': {
      const r = edge ? 0.6 + 0.4 * rnd() : rnd();
      if (r < 0.45) return { type, value: int(-1000, 1000) };
      if (r < 0.6) return { type, value: pick([1, -1]) * int(2 ** 40, Number.MAX_SAFE_INTEGER) };
      if (r < 0.65) return { type, value: pick([Number.MAX_SAFE_INTEGER, Number.MIN_SAFE_INTEGER, -0]) };
      if (r < 0.7) return { type, value: BigInt(int(-1000, 1000)) }; // a bigint within the safe integers
      if (r < 0.97) return { type, value: BigInt(pick([1, -1])) * (2n ** 53n + BigInt(int(1, 2 ** 30)) * BigInt(int(1, 2 ** 25))) };
      return { type, value: pick([2n ** 63n - 1n, -(2n ** 63n), -(2n ** 63n) + 1n, 2n ** 53n, -(2n ** 53n) - 1n]) };
    }
    case 'DOUBLE': {
      const r = edge ? 0.9 + 0.1 * rnd() : rnd();
      if (r < 0.5) return { type, value: (rnd() - 0.5) * 10 ** int(-3, 6) };
      if (r < 0.65) return { type, value: int(-100, 100) }; // integral, still a DOUBLE (`21.0`)
      if (r < 0.8) return { type, value: (rnd() - 0.5) * 10 ** int(7, 18) };
      if (r < 0.9) return { type, value: Math.round(rnd() * 1000) / 8 - 60 };
      if (r < 0.985) return { type, value: pick([-0, 0, 5e-324, -1e300, 1e300, 0.1, -0.30000000000000004, 2 ** 53 + 2]) };
      return { type, value: pick([Infinity, -Infinity]) };
    }
    case 'BOOLEAN':
      return { type, value: chance(0.5) };
    case 'STRING':
      return { type, value: Math.floor(rnd() * 36 ** int(0, 5)).toString(36) + (chance(0.2) ? '' : pick(['', 'x', '0'])) };
    case 'JSON':
      return { type, value: pick(['{"v":1}', '[1,2,3]', `{"n":${int(-9, 9)}}`, '{}']) };
  }
}

function typeOf({ rnd }: Draw): Type {
  const r = rnd();
  return r < 0.35 ? 'LONG' : r < 0.7 ? 'DOUBLE' : r < 0.85 ? 'BOOLEAN' : r < 0.93 ? 'STRING' : 'JSON';
}

/** A dense series' timestamps (increasing) and what shape they took; with `around`, one of them is that. */
function denseTimestamps(draw: Draw, model: TelemetryModel, deviceId: string, key: string, around?: number): { ts: number[]; shape: string; rewrite: boolean } {
  const shifted = ({ ts, shape, rewrite }: { ts: number[]; shape: string; rewrite: boolean }) => {
    if (around === undefined || rewrite) return { ts, shape, rewrite };
    const delta = around - ts[draw.int(0, ts.length - 1)];
    return { ts: ts.map((t) => t + delta), shape: `${shape}, over ${rel(around)}`, rewrite };
  };
  return shifted(unshifted(draw, model, deviceId, key));
}

function unshifted(draw: Draw, model: TelemetryModel, deviceId: string, key: string): { ts: number[]; shape: string; rewrite: boolean } {
  const { int, pick, chance } = draw;
  const stored = model.timestamps(deviceId, key);
  if (stored.length >= 8 && chance(0.2)) {
    // The stored timestamps (a run of them) again: a rewrite, with the series' next type.
    const n = Math.min(stored.length, pick([int(2, 31), 31, 32, 33, int(32, 200)]));
    const from = int(0, stored.length - n);
    return { ts: stored.slice(from, from + n), shape: 'rewrite', rewrite: true };
  }
  const n = pick([int(2, 31), 31, 32, 33, int(32, 200), int(32, 200), int(32, 200)]);
  let start = BASE_TS + int(0, 6 * HOUR);
  if (stored.length > 0 && chance(0.5)) start = pick(stored) - pick([0, 0, 1, 1000, int(0, HOUR)]);
  else if (chance(0.5)) start -= start % 1000;
  const r = draw.rnd();
  if (r < 0.7) {
    const step = Math.min(pick([1, 2, 10, 1000, 1000, 5000, 60_000]), Math.floor(HOUR / (n - 1)));
    return { ts: Array.from({ length: n }, (_, i) => start + i * step), shape: `step ${step}`, rewrite: false };
  }
  if (r < 0.85) {
    // A span of exactly one hour, or one millisecond over (the chunk span bound).
    const over = chance(0.35) ? 1 : 0;
    const ts = Array.from({ length: n }, (_, i) => start + Math.round((i * HOUR) / (n - 1)));
    ts[n - 1] += over;
    return { ts, shape: over ? 'span 1h+1ms' : 'span 1h', rewrite: false };
  }
  const step = Math.ceil(HOUR / (n - 1)) + int(1, 60_000);
  return { ts: Array.from({ length: n }, (_, i) => start + i * step), shape: `wide step ${step}`, rewrite: false };
}

/** One dense series' points, perturbed at random; `notes` gets what was done. */
function denseSeries(draw: Draw, model: TelemetryModel, deviceId: string, key: string, notes: string[], around?: number): TsPoint[] {
  const { int, pick, chance } = draw;
  const { ts, shape, rewrite } = denseTimestamps(draw, model, deviceId, key, around);
  let type = typeOf(draw);
  if (rewrite) {
    const now = model.series(deviceId, key).find((p) => p.ts === ts[0])?.value.type ?? 'JSON';
    type = CYCLE[(CYCLE.indexOf(now) + 1) % CYCLE.length];
  }
  const edge = chance(0.08);
  const points = ts.map((t) => ({ deviceId, key, ts: t, value: valueOf(draw, type, edge) }));
  const done = [`${deviceId}/${key} ${type}${edge ? ' (edge values)' : ''} n=${ts.length} ${rel(ts[0])}..${rel(ts.at(-1))} ${shape}`];
  if (chance(0.15)) {
    points.reverse();
    done.push('reversed');
  } else if (chance(0.2)) {
    for (let k = int(1, 5); k > 0; k--) {
      const i = int(0, points.length - 1);
      const j = int(0, points.length - 1);
      [points[i], points[j]] = [points[j], points[i]];
    }
    done.push('swapped');
  }
  if (chance(0.2)) {
    // Duplicate timestamps: the later point of one ts wins; sometimes of another type (the series is then mixed).
    const other = chance(0.3);
    for (let k = int(1, 4); k > 0; k--) {
      const at = int(0, points.length);
      points.splice(at, 0, { deviceId, key, ts: pick(ts), value: valueOf(draw, other ? typeOf(draw) : type) });
    }
    done.push(other ? 'duplicate ts, other types' : 'duplicate ts');
  }
  if (chance(0.06)) {
    points[int(0, points.length - 1)].value = valueOf(draw, typeOf(draw));
    done.push('one point of a random type');
  }
  notes.push(done.join(', '));
  return points;
}

/** A sparse series: 1-3 points at stored timestamps, after the newest or anywhere. */
function sparseSeries(draw: Draw, model: TelemetryModel, deviceId: string, key: string, notes: string[]): TsPoint[] {
  const { int, pick, chance } = draw;
  const stored = model.series(deviceId, key);
  const points: TsPoint[] = [];
  for (let k = int(1, 3); k > 0; k--) {
    const r = draw.rnd();
    const ts = stored.length > 0 && r < 0.45 ? pick(stored).ts : stored.length > 0 && r < 0.7 ? stored[stored.length - 1].ts + int(0, 10_000) : BASE_TS + int(0, 7 * HOUR);
    const type = stored.length > 0 && chance(0.6) ? stored[stored.length - 1].value.type : typeOf(draw);
    points.push({ deviceId, key, ts, value: valueOf(draw, type) });
  }
  if (chance(0.25)) {
    // A ts again after another point: the later of the two wins (in values and in latest).
    const again = points[0];
    if (points.length === 1) points.push({ deviceId, key, ts: again.ts + pick([1, -1]) * int(1, 5), value: valueOf(draw, again.value.type) });
    points.push({ deviceId, key, ts: again.ts, value: valueOf(draw, chance(0.7) ? again.value.type : typeOf(draw)) });
  }
  notes.push(`${deviceId}/${key} sparse ${points.map((p) => `${rel(p.ts)}:${p.value.type}`).join(' ')}`);
  return points;
}

/**
 * A write batch: `dense` has 1-4 dense series (and sometimes a few sparse ones), `sparse` 1-8 sparse series; the
 * series' points grouped in turn or interleaved (MQTT devices send one message per ts with every key). A dense
 * series is often over a point of `recent` (written just before, maybe still staged on SQLite).
 */
export function pointsOf(draw: Draw, model: TelemetryModel, live: readonly string[], mode: 'dense' | 'sparse', recent: readonly TsPoint[] = []): { points: TsPoint[]; what: string } {
  const { int, pick, chance } = draw;
  const series = new Set<string>();
  const notes: string[] = [];
  const lists: TsPoint[][] = [];
  const add = (count: number, make: typeof denseSeries) => {
    for (let k = 0; k < count; k++) {
      const over = make === denseSeries && recent.length > 0 && chance(0.6) ? pick(recent) : undefined;
      const deviceId = over?.deviceId ?? pick(live);
      const key = over?.key ?? pick(KEYS);
      if (series.has(`${deviceId}/${key}`)) continue;
      series.add(`${deviceId}/${key}`);
      lists.push(make(draw, model, deviceId, key, notes, over?.ts));
    }
  };
  if (mode === 'dense') {
    add(int(1, 4), denseSeries);
    if (chance(0.3)) add(int(1, 4), sparseSeries);
  } else add(int(1, 8), sparseSeries);
  let points: TsPoint[];
  const grouped = lists.length === 1 || chance(0.5);
  if (grouped) points = lists.flat();
  else {
    // Interleaved: one point of each series in turn.
    points = [];
    for (let i = 0; lists.some((l) => i < l.length); i++) for (const l of lists) if (i < l.length) points.push(l[i]);
  }
  return { points, what: `${mode} (${grouped ? 'grouped' : 'interleaved'}): ${notes.join('; ')}` };
}
