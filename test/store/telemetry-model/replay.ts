/**
 * Runs an operation list (ops.ts) against a Store and the model side by side, comparing every read; and shrinks a
 * failing list to a short one that still fails, for the report.
 */
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { AggregateBucket, Store } from '../../../src/core/ports/store.ts';
import { credentials, device, profile, TENANT } from '../fixtures.ts';
import { TelemetryModel, type ExpectedBucket, type Stored } from './model.ts';
import { describe, type Op } from './ops.ts';

export type Dialect = 'sqlite' | 'postgres';

/** A fresh, empty database of one configuration: stores on it, opened alongside each other or one after another. */
export interface Database {
  open(): Promise<Store & { close(): Promise<void> }>;
  /** Removes the database once its stores are closed. */
  drop(): Promise<void>;
}
export type OpenDatabase = () => Promise<Database>;

/** Where a run went wrong: the index of the operation and what differed. */
export interface Failure {
  at: number;
  message: string;
}

/** Plain data for a message or a file: bigints as `123n`, -0 and non-finite numbers spelled out. */
export function json(value: unknown, indent?: number): string {
  return JSON.stringify(
    value,
    function (this: unknown, key, v) {
      const raw = (this as Record<string, unknown>)[key];
      if (typeof raw === 'bigint') return `${raw}n`;
      if (typeof raw === 'number' && (Object.is(raw, -0) || !Number.isFinite(raw))) return Object.is(raw, -0) ? '-0' : String(raw);
      if (raw instanceof Map) return Object.fromEntries(raw);
      return v;
    },
    indent,
  );
}

/** Operations written by json(): a LONG's `123n` and a DOUBLE's `-0` or `Infinity` become values again. */
export function parseOps(text: string): Op[] {
  const ops = JSON.parse(text) as Op[];
  for (const op of ops.flatMap((o) => (o.op === 'together' ? o.ops : [o]))) {
    if (op.op !== 'write') continue;
    for (const p of op.points) {
      const v = p.value as { type: string; value: unknown };
      if (typeof v.value !== 'string') continue;
      if (v.type === 'LONG') v.value = BigInt(v.value.slice(0, -1));
      else if (v.type === 'DOUBLE') v.value = Number(v.value);
    }
  }
  return ops;
}

/**
 * Runs `ops` on a store of `database` (and, for operations marked `peer`, on a second store of the same database, as
 * another process would open it); the first operation whose result differs from the model's is the failure.
 */
export async function runOps(database: Database, ops: readonly Op[], dialect: Dialect): Promise<Failure | undefined> {
  const model = new TelemetryModel();
  const profileRow = profile();
  let primary = await database.open();
  let peer: (Store & { close(): Promise<void> }) | undefined;
  try {
    await primary.insertProfile(profileRow);
    for (let at = 0; at < ops.length; at++) {
      const op = ops[at];
      try {
        if (op.op === 'reopen') {
          await peer?.close();
          peer = undefined;
          await primary.close();
          primary = await database.open();
          continue;
        }
        const store = 'peer' in op && op.peer ? (peer ??= await database.open()) : primary;
        await runOp(store, model, op, dialect, profileRow.id);
      } catch (err) {
        return { at, message: err instanceof Error ? err.message : String(err) };
      }
    }
    return undefined;
  } finally {
    await peer?.close();
    await primary.close();
    await database.drop();
  }
}

async function runOp(store: Store, model: TelemetryModel, op: Op, dialect: Dialect, profileId: string): Promise<void> {
  switch (op.op) {
    case 'createDevice':
      await store.insertDevice(device(profileId, { id: op.id }), credentials(op.id));
      model.devices.add(op.id);
      return;
    case 'deleteDevice': {
      const deleted = await store.deleteDevice(TENANT, op.id);
      assert.equal(deleted, model.deleteDevice(op.id), 'deleteDevice: whether the device existed');
      return;
    }
    case 'write':
      await store.writeBatch({ telemetry: op.points, attributes: [] });
      model.write(op.points);
      return;
    case 'delete':
      await store.deleteTimeseries(op.del);
      model.delete(op.del);
      return;
    case 'get':
      same(points(await store.getTimeseries(op.query)), points(model.getTimeseries(op.query)), 'getTimeseries');
      return;
    case 'latest':
      same(latest(await store.getLatestTimeseries(op.deviceId, op.keys)), latest(model.getLatest(op.deviceId, op.keys)), 'getLatestTimeseries');
      return;
    case 'keys':
      same(await store.listTimeseriesKeys(op.deviceId), model.listKeys(op.deviceId), 'listTimeseriesKeys');
      return;
    case 'aggregate':
      sameBuckets(await store.aggregateTimeseries(op.query), model.aggregate(op.query, dialect));
      return;
    case 'reopen':
      return;
    case 'together':
      await Promise.all(op.ops.map((o) => runOp(store, model, o, dialect, profileId)));
      return;
    case 'yield':
      for (let i = 0; i < 3; i++) await new Promise((resolve) => setImmediate(resolve));
      return;
  }
}

const byKey = <T>(map: Map<string, T>) => [...map].sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
const points = (map: Map<string, Stored[]>) => byKey(map).map(([key, list]) => [key, list.map((p) => ({ ts: p.ts, value: p.value }))] as const);
const latest = (map: Map<string, Stored>) => byKey(map).map(([key, p]) => [key, { ts: p.ts, value: p.value }] as const);

/** Deep strict equality (so -0 differs from 0 and 5n from 5), with a message that shows where they part. */
function same(got: unknown, want: unknown, what: string): void {
  try {
    assert.deepStrictEqual(got, want);
  } catch {
    throw new Error(`${what} differs from the model\n  got:  ${clip(json(got))}\n  want: ${clip(json(want))}\n  first difference: ${firstDifference(got, want)}`);
  }
}

const clip = (text: string) => (text.length > 1500 ? `${text.slice(0, 1500)}… (${text.length} chars)` : text);

/** The path to the first place two values differ, with both sides there. */
function firstDifference(got: unknown, want: unknown, path = ''): string {
  if (typeof got === 'object' && got !== null && typeof want === 'object' && want !== null) {
    const keys = new Set([...Object.keys(got), ...Object.keys(want)]);
    for (const k of keys) {
      const a: unknown = (got as Record<string, unknown>)[k];
      const b: unknown = (want as Record<string, unknown>)[k];
      try {
        assert.deepStrictEqual(a, b);
      } catch {
        return firstDifference(a, b, `${path}.${k}`);
      }
    }
  }
  return `${path || '(top)'}: got ${json(got)}, want ${json(want)}`;
}

/** Aggregates: every count, min and max exactly, a LONG sum exactly (as the Number of the exact sum), DOUBLE sums to 1e-9. */
function sameBuckets(got: Map<string, AggregateBucket[]>, want: Map<string, ExpectedBucket[]>): void {
  const tolerant = (g: AggregateBucket, w: ExpectedBucket) => {
    const { doubleMagnitude, ...exact } = w;
    const gs = g.sumDouble;
    const ws = w.sumDouble;
    const close =
      gs === ws ||
      (gs !== null && ws !== null && Number.isNaN(gs) && Number.isNaN(ws)) ||
      (gs !== null && ws !== null && Number.isFinite(ws) && Math.abs(gs - ws) <= 1e-9 * doubleMagnitude);
    return { ...g, sumDouble: close ? exact.sumDouble : gs };
  };
  const wantList = byKey(want).map(([key, list]) => [key, list.map(({ doubleMagnitude, ...b }) => b)] as const);
  const gotList = byKey(got).map(([key, list]) => [key, list.map((b, i) => tolerant(b, want.get(key)?.[i] ?? ({ ...b, doubleMagnitude: 0 } as ExpectedBucket)))] as const);
  same(gotList, wantList, 'aggregateTimeseries');
}

/** A failure's report: the configuration, seed, the failing operation, what differed, and the operations before it. */
export function report(config: string, seed: number | string, ops: readonly Op[], failure: Failure, shrunk?: { ops: Op[]; failure: Failure; file: string }): string {
  const lines = [`telemetry model: ${config}, seed ${seed}: operation ${failure.at} (${describe(ops[failure.at])}) failed:`, failure.message];
  if (shrunk) {
    lines.push(`\nshrunk to ${shrunk.ops.length} operations (full data: ${shrunk.file}); operation ${shrunk.failure.at} fails:`, shrunk.failure.message);
    lines.push(...shrunk.ops.map((op, i) => `  ${i}: ${describe(op)}`));
    const text = json(shrunk.ops);
    if (text.length < 20_000) lines.push(`shrunk operations as data: ${text}`);
  }
  const run = 'node scripts/run-tests.mjs test/store/telemetry-model.test.ts';
  lines.push(`\nreplay: ${typeof seed === 'number' ? `TELEMETRY_MODEL_SEEDS=${seed}` : `TELEMETRY_MODEL_OPS=${seed}`} ${run}`);
  if (shrunk) lines.push(`replay the shrunk case: TELEMETRY_MODEL_OPS=${shrunk.file} ${run}`);
  lines.push(`operations up to the failure (${failure.at + 1}):`, ...ops.slice(0, failure.at + 1).map((op, i) => `  ${i}: ${describe(op)}`));
  return lines.join('\n');
}

/**
 * A shorter list that still fails on fresh stores: drops runs of operations (halving their length down to one), then
 * series and halves of points from each write. Bounded by `budgetMs` and 400 replays; writes the result to a file.
 */
export async function shrink(open: OpenDatabase, dialect: Dialect, ops: readonly Op[], failure: Failure, budgetMs: number): Promise<{ ops: Op[]; failure: Failure; file: string }> {
  const deadline = Date.now() + budgetMs;
  let best = ops.slice(0, failure.at + 1);
  let bestFailure = failure;
  let replays = 0;
  const fails = async (candidate: Op[]): Promise<boolean> => {
    if (Date.now() > deadline || replays >= 400) return false;
    replays++;
    const f = await runOps(await open(), candidate, dialect);
    if (!f) return false;
    best = candidate.slice(0, f.at + 1);
    bestFailure = f;
    return true;
  };
  for (let size = Math.max(1, best.length >> 1); size >= 1; size = size === 1 ? 0 : Math.max(1, size >> 1)) {
    for (let from = 0; from < best.length - 1 && Date.now() < deadline; ) {
      if (!(await fails([...best.slice(0, from), ...best.slice(from + size)]))) from += size;
    }
  }
  for (let i = 0; i < best.length && Date.now() < deadline; i++) {
    const op = best[i];
    if (op.op !== 'write') continue;
    const series = [...new Set(op.points.map((p) => `${p.deviceId}/${p.key}`))];
    for (const s of series) {
      const current = best[i];
      if (current.op !== 'write') break;
      const points = current.points.filter((p) => `${p.deviceId}/${p.key}` !== s);
      if (points.length > 0) await fails(best.map((o, j) => (j === i ? { ...current, what: `${current.what} (without ${s})`, points } : o)));
    }
    for (let half = 0; half < 4; half++) {
      const current = best[i];
      if (current.op !== 'write' || current.points.length < 2) break;
      const mid = current.points.length >> 1;
      for (const part of [current.points.slice(0, mid), current.points.slice(mid)]) {
        if (await fails(best.map((o, j) => (j === i ? { ...current, what: `${current.what} (${part.length} of its points)`, points: part } : o)))) break;
      }
    }
  }
  const file = join(tmpdir(), `telemetry-model-failure-${process.pid}-${Date.now()}.json`);
  writeFileSync(file, json(best, 1));
  return { ops: best, failure: bestFailure, file };
}
