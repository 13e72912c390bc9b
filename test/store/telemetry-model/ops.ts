/**
 * The operations of the telemetry model test as plain data, and a seeded generator of them. An operation list is
 * generated whole against the model alone (the model needs no store), so a failing list replays and shrinks as is.
 */
import type { TsPoint } from '../../../src/core/model.ts';
import type { TimeseriesAggregateQuery, TimeseriesDelete, TimeseriesQuery } from '../../../src/core/ports/store.ts';
import { buildBuckets } from '../../../src/core/timeseries-aggregate.ts';
import { TelemetryModel } from './model.ts';
import { BASE_TS, HOUR, KEYS, pointsOf, rel, type Draw } from './points.ts';
import { Rng } from '../../fuzz/rng.ts';

/** Operations that may run on a second store of the same database (`peer`: another process on the same file). */
type OnPeer = { peer?: boolean };
export type Op =
  | ({ op: 'write'; what: string; points: TsPoint[] } & OnPeer)
  | ({ op: 'get'; query: TimeseriesQuery } & OnPeer)
  | ({ op: 'aggregate'; query: TimeseriesAggregateQuery } & OnPeer)
  | ({ op: 'delete'; del: TimeseriesDelete } & OnPeer)
  | { op: 'createDevice'; id: string }
  | ({ op: 'deleteDevice'; id: string } & OnPeer)
  | ({ op: 'latest'; deviceId: string; keys?: string[] } & OnPeer)
  | ({ op: 'keys'; deviceId: string } & OnPeer)
  /** Let the event loop turn (a SQLite merge slice may run between commits). */
  | { op: 'yield' }
  /** Close the store and open the database again (a restart). */
  | { op: 'reopen' }
  /** Operations issued together, not one after another: writes of disjoint series and reads of others. */
  | { op: 'together'; ops: Op[] };

/** A small deterministic generator (mulberry32, test/fuzz/rng.ts): a seed replays its run. */
export function random(seed: number): () => number {
  const rng = new Rng(seed);
  return () => rng.next();
}

/** A key never written: reads of it must find nothing. */
const UNKNOWN_KEY = 'never';
const LIVE_DEVICES = 4;

/** One line per operation, for a failure's report. */
export function describe(op: Op): string {
  return `${'peer' in op && op.peer ? '(peer) ' : ''}${describeOp(op)}`;
}

function describeOp(op: Op): string {
  switch (op.op) {
    case 'write':
      return `write ${op.what}`;
    case 'get': {
      const q = op.query;
      return `get ${q.deviceId} [${q.keys}] ${rel(q.startTs)}..${rel(q.endTs)} ${q.orderBy} limit ${q.limit}`;
    }
    case 'aggregate':
      return `aggregate ${op.query.deviceId} [${op.query.keys}] ${op.query.buckets.length} buckets ${rel(op.query.buckets[0]?.[0])}..${rel(op.query.buckets.at(-1)?.[1])}`;
    case 'delete': {
      const d = op.del;
      return `delete ${d.deviceId} [${d.keys}] ${rel(d.startTs)}..${rel(d.endTs)} deleteLatest=${d.deleteLatest} rewriteLatest=${d.rewriteLatest}`;
    }
    case 'latest':
      return `latest ${op.deviceId} ${op.keys ? `[${op.keys}]` : 'all'}`;
    case 'keys':
      return `keys ${op.deviceId}`;
    case 'yield':
    case 'reopen':
      return op.op;
    case 'together':
      return `together: ${op.ops.map(describe).join(' | ')}`;
    default:
      return `${op.op} ${op.id}`;
  }
}

/**
 * `steps` random operations for `seed`: each write followed by a read of its devices' latest values (and now and then
 * of its series in full), each delete by full reads of what it touched, and every 40 steps a read of everything.
 */
export function generate(seed: number, steps: number): Op[] {
  const rnd = random(seed);
  const model = new TelemetryModel();
  const draw: Draw = {
    rnd,
    int: (lo, hi) => lo + Math.floor(rnd() * (hi - lo + 1)),
    pick: (list) => list[Math.floor(rnd() * list.length)],
    chance: (p) => rnd() < p,
  };
  const { int, pick, chance } = draw;
  const ops: Op[] = [];
  let devices = 0;
  const live: string[] = [];
  const dead: string[] = [];
  const newDevice = () => {
    const id = `dev-${seed}-${devices++}`;
    live.push(id);
    model.devices.add(id);
    ops.push({ op: 'createDevice', id });
  };
  for (let i = 0; i < LIVE_DEVICES; i++) newDevice();
  /** Now and then on the peer store (another process on the same database). */
  const onPeer = (p = 0.12): OnPeer => (chance(p) ? { peer: true } : {});
  const anyDevice = () => (dead.length > 0 && chance(0.05) ? pick(dead) : pick(live));
  const someKeys = () => {
    if (chance(0.02)) return [];
    const keys = KEYS.filter(() => chance(0.5));
    if (keys.length === 0) keys.push(pick(KEYS));
    if (chance(0.1)) keys.push(UNKNOWN_KEY);
    return keys;
  };
  /** A timestamp worth asking about: a stored one (maybe ±1), one near a stored one, or anywhere. */
  const tsNear = (deviceId: string, keys: readonly string[]) => {
    const stored = model.timestamps(deviceId, pick(keys));
    if (stored.length > 0 && chance(0.75)) return pick(stored) + pick([0, 0, 0, -1, 1, -HOUR, HOUR]);
    return BASE_TS + int(-HOUR, 8 * HOUR);
  };
  const range = (deviceId: string, keys: readonly string[]): [number, number] => {
    const a = tsNear(deviceId, keys);
    const b = chance(0.1) ? a : tsNear(deviceId, keys);
    return chance(0.05) ? [Math.max(a, b), Math.min(a, b)] : [Math.min(a, b), Math.max(a, b)];
  };
  const checkSeries = (touched: Iterable<string>) => {
    const series = [...touched];
    for (const id of series) {
      const [deviceId, key] = id.split('\u0000');
      ops.push({ op: 'get', query: { deviceId, keys: [key], startTs: 0, endTs: Number.MAX_SAFE_INTEGER, limit: 1_000_000, orderBy: 'ASC' } });
    }
    for (const deviceId of new Set(series.map((id) => id.split('\u0000')[0]))) ops.push({ op: 'latest', deviceId });
  };
  const checkAll = () => {
    for (const deviceId of [...live, ...dead]) {
      ops.push({ op: 'get', query: { deviceId, keys: [...KEYS, UNKNOWN_KEY], startTs: 0, endTs: Number.MAX_SAFE_INTEGER, limit: 1_000_000, orderBy: 'ASC' } });
      ops.push({ op: 'latest', deviceId });
      ops.push({ op: 'keys', deviceId });
    }
  };

  for (let step = 0; step < steps; step++) {
    const kind = rnd();
    if (kind < 0.42) {
      // A write, or a burst of sparse ones (then dense, sometimes) with nothing between them that merges what SQLite
      // staged: latest values are read after each (that read merges nothing), whole series only now and then.
      const burst = kind >= 0.3 && chance(0.5) ? int(2, 6) : 1;
      const recent: TsPoint[] = [];
      for (let b = 0; b < burst; b++) {
        const mode = kind < 0.3 || (b === burst - 1 && burst > 1 && chance(0.5)) ? 'dense' : 'sparse';
        const { points, what } = pointsOf(draw, model, live, mode, recent);
        recent.push(...points);
        ops.push({ op: 'write', what, points, ...onPeer(0.05) });
        model.write(points);
        const touched = new Set(points.map((p) => `${p.deviceId}\u0000${p.key}`));
        if (b === burst - 1 && chance(0.35)) checkSeries(touched);
        else for (const deviceId of new Set(points.map((p) => p.deviceId))) ops.push({ op: 'latest', deviceId });
        if (chance(0.2)) ops.push({ op: 'yield' });
      }
    } else if (kind < 0.55) {
      const deviceId = anyDevice();
      const keys = someKeys();
      const [startTs, endTs] = range(deviceId, keys);
      const total = Math.max(0, ...keys.map((k) => model.series(deviceId, k).length));
      const limit = chance(0.02) ? 0 : pick([1, 1, 2, int(1, total + 2), int(1, total + 2), 1_000_000]);
      ops.push({ op: 'get', query: { deviceId, keys, startTs, endTs, limit, orderBy: chance(0.5) ? 'ASC' : 'DESC' }, ...onPeer() });
    } else if (kind < 0.7) {
      const deviceId = anyDevice();
      let [start, end] = range(deviceId, KEYS);
      const stored = model.timestamps(deviceId, pick(KEYS));
      if (stored.length > 0 && chance(0.4)) [start, end] = [stored[0] - int(0, 1000), stored[stored.length - 1] + int(1, 1000)]; // all of a series
      const buckets = bucketsOf(draw, start, end);
      // A LONG sum reaching 2^63 overflows SQLite's sum() (an error on any layout): such keys are left out.
      const keys = someKeys().filter((k) => model.longMagnitude(deviceId, k, buckets[0][0], buckets.at(-1)![1]) < 2n ** 62n);
      ops.push({ op: 'aggregate', query: { deviceId, keys, buckets }, ...onPeer() });
    } else if (kind < 0.8) {
      const deviceId = anyDevice();
      const keys = someKeys();
      const [startTs, endTs] = range(deviceId, keys);
      const deleteLatest = chance(0.6);
      const del = { deviceId, keys, startTs, endTs, deleteLatest, rewriteLatest: deleteLatest && chance(0.6) };
      ops.push({ op: 'delete', del, ...onPeer() });
      model.delete(del);
      checkSeries(keys.map((k) => `${deviceId}\u0000${k}`));
    } else if (kind < 0.83) {
      if (chance(0.5) && live.length > 1) {
        const id = live.splice(Math.floor(rnd() * live.length), 1)[0];
        dead.push(id);
        ops.push({ op: 'deleteDevice', id, ...onPeer() });
        model.deleteDevice(id);
        checkSeries(KEYS.map((k) => `${id}\u0000${k}`));
      }
      if (live.length < LIVE_DEVICES) newDevice();
    } else if (kind < 0.9) {
      const deviceId = anyDevice();
      ops.push({ op: 'latest', deviceId, keys: chance(0.3) ? undefined : chance(0.1) ? [] : someKeys(), ...onPeer() });
    } else if (kind < 0.93) {
      ops.push({ op: 'keys', deviceId: anyDevice(), ...onPeer() });
    } else if (kind < 0.96) {
      ops.push({ op: 'yield' });
    } else if (kind < 0.985) {
      // Writes of disjoint devices issued together (and a read of another device): each must land as if alone.
      const devices = [...live];
      for (let i = devices.length - 1; i > 0; i--) {
        const j = int(0, i);
        [devices[i], devices[j]] = [devices[j], devices[i]];
      }
      const together: Op[] = [];
      const touched = new Set<string>();
      for (const group of [devices.slice(0, 1), devices.slice(1, int(2, 3))]) {
        if (group.length === 0) continue;
        const { points, what } = pointsOf(draw, model, group, chance(0.6) ? 'dense' : 'sparse');
        together.push({ op: 'write', what, points });
        model.write(points);
        for (const p of points) touched.add(`${p.deviceId}\u0000${p.key}`);
      }
      const other = devices.find((d) => ![...touched].some((id) => id.startsWith(`${d}\u0000`)));
      if (other) together.push({ op: 'get', query: { deviceId: other, keys: KEYS, startTs: 0, endTs: Number.MAX_SAFE_INTEGER, limit: 1_000_000, orderBy: 'ASC' } });
      ops.push({ op: 'together', ops: together });
      checkSeries(touched);
    } else {
      ops.push({ op: 'reopen' });
    }
    if (step % 40 === 39) checkAll();
  }
  checkAll();
  return ops;
}

/**
 * Buckets over [start, end): as core builds them (buildBuckets, fixed interval, the last one cut at the end), or
 * random disjoint ranges with gaps between them.
 */
function bucketsOf({ int, chance }: Draw, start: number, end: number): [number, number][] {
  end = Math.max(end, start + 1);
  if (chance(0.6)) {
    const interval = Math.max(1, Math.ceil((end - start) / int(1, 40)) + int(-1, 1));
    return buildBuckets(start, end, 'MILLISECONDS', interval, 'UTC');
  }
  const buckets: [number, number][] = [];
  const width = Math.max(1, Math.ceil((end - start) / int(1, 30)));
  for (let s = start; s < end; ) {
    const e = Math.min(end, s + int(1, width));
    if (!chance(0.3)) buckets.push([s, e]);
    s = e + (chance(0.3) ? int(0, width) : 0);
  }
  if (buckets.length === 0) buckets.push([start, end]);
  return buckets;
}

