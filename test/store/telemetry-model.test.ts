/**
 * The Store's telemetry contract against a model (issue 17, the oracle of the chunked SQLite layout): seeded random
 * operation lists (test/store/telemetry-model/ops.ts, points.ts) of dense and sparse write batches, reads with
 * random ranges, orders and limits, aggregates over random buckets, deletes of ranges (latest values deleted and
 * rewritten or not) and of devices, each compared with an in-memory model; now and then the store is closed and
 * opened again, some operations run on a second store of the same database (another process on the file), and
 * writes of disjoint devices are issued together. Written against
 * the Store port only, so it holds for any storage layout: SQLite with and without its writer thread (and with
 * staging merges small enough to run mid-list), and PostgreSQL, which keeps every point a row.
 *
 * A failure prints the configuration, the seed, the failing operation and those before it, and a shrunk list
 * (written to a file as data). Environment: TELEMETRY_MODEL_SEEDS=1,2 (seeds instead of the fixed ones),
 * TELEMETRY_MODEL_STEPS=n, TELEMETRY_MODEL_OPS=file (replay a list written by a failure), TELEMETRY_MODEL_SHRINK_MS
 * (time to shrink a failure; 0: none).
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { openPostgresStore } from '../../src/store/postgres.ts';
import { openSqliteStore, type SqliteStoreOptions } from '../../src/store/sqlite.ts';
import { skipUnlessPostgres, startPostgres, type TestPostgres } from '../support/postgres.ts';
import { generate, type Op } from './telemetry-model/ops.ts';
import { parseOps, report, runOps, shrink, type Dialect, type OpenDatabase } from './telemetry-model/replay.ts';

const env = process.env;
const STEPS = Number(env.TELEMETRY_MODEL_STEPS ?? 160);
const SHRINK_MS = Number(env.TELEMETRY_MODEL_SHRINK_MS ?? 60_000);
const seedsOr = (fixed: number[]) => (env.TELEMETRY_MODEL_SEEDS ? env.TELEMETRY_MODEL_SEEDS.split(',').map(Number) : fixed);

/** Runs the operations of each seed (or the file's) on fresh stores of one configuration; a failure throws its report. */
async function check(config: string, dialect: Dialect, open: OpenDatabase, seeds: number[]): Promise<void> {
  const runs: { seed: number | string; ops: Op[] }[] = env.TELEMETRY_MODEL_OPS
    ? [{ seed: env.TELEMETRY_MODEL_OPS, ops: parseOps(readFileSync(env.TELEMETRY_MODEL_OPS, 'utf8')) }]
    : seeds.map((seed) => ({ seed, ops: generate(seed, STEPS) }));
  for (const { seed, ops } of runs) {
    const failure = await runOps(await open(), ops, dialect);
    if (failure) {
      const shrunk = SHRINK_MS > 0 ? await shrink(open, dialect, ops, failure, SHRINK_MS) : undefined;
      throw new Error(report(config, seed, ops, failure, shrunk));
    }
  }
}

/** A fresh SQLite file (in a directory of its own) opened with `options` (synchronous 'normal' unless given). */
const sqlite =
  (options: Partial<SqliteStoreOptions>): OpenDatabase =>
  async () => {
    const dir = mkdtempSync(join(tmpdir(), 'fleetgate-telemetry-model-'));
    return {
      open: () => openSqliteStore(join(dir, 'db.sqlite'), { synchronous: 'normal', ...options }),
      drop: async () => rmSync(dir, { recursive: true, force: true }),
    };
  };
/** Staging small enough that merge rounds (in slices between commits) and in-commit merges happen within a list. */
const SMALL_STAGING = { mergeAt: 48, sliceRows: 12 };

describe('telemetry against a model: SQLite', () => {
  test('writer thread, every commit on it', () => check('SQLite, writer thread, every commit on it', 'sqlite', sqlite({ writerThread: true, threadMinParameters: 0 }), seedsOr([1, 2])));
  test('writer thread, light commits in process, small staging merges', () =>
    check('SQLite, writer thread, light commits in process, small staging', 'sqlite', sqlite({ writerThread: true, staging: SMALL_STAGING }), seedsOr([3, 4])));
  test('in process, default staging', () => check('SQLite, in process', 'sqlite', sqlite({ writerThread: false }), seedsOr([5, 6])));
  test('in process, small staging merges', () => check('SQLite, in process, small staging', 'sqlite', sqlite({ writerThread: false, staging: SMALL_STAGING }), seedsOr([7, 8])));
});

describe('telemetry against a model: PostgreSQL', { skip: skipUnlessPostgres() }, () => {
  let server: TestPostgres;
  before(async () => {
    server = await startPostgres();
  });
  after(() => server?.stop());
  const open: OpenDatabase = async () => {
    const url = await server.createDatabase();
    return { open: () => openPostgresStore(url), drop: async () => {} };
  };
  test('every point a row', () => check('PostgreSQL', 'postgres', open, seedsOr([9, 10])));
});
