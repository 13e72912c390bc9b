/**
 * Telemetry staging on SQLite. A WAL commit writes every B-tree page it dirtied (~10-15 µs each), and ts_kv is
 * clustered by (device_id, key, ts), so a batch with one row per series (closed-loop devices: one request, wait for
 * the answer) dirties one ts_kv page per row. Such batches are appended to the rowid table `ts_kv_recent` instead
 * (arrival order, 1-3 pages per commit) and merged into ts_kv in large batches, where each page takes many rows.
 *
 * Correctness never rests on this process's bookkeeping, since other processes (the CLI) open the same file: staged
 * rows are committed with their batch, so they are durable and visible to every connection; readers of ts_kv merge
 * first when the table holds any row, whoever staged it; a direct write to ts_kv merges first (so no older staged
 * row of a (device, key, ts) is merged over it later); deleting a device deletes its staged rows too. The count
 * `staged` only decides when the writer merges.
 *
 * When to merge (issue 17): once MERGE_AT rows are staged, a commit of MERGE_IN_COMMIT_ROWS or more merges them
 * inside itself; after lighter commits (HTTP telemetry's ~150 rows) a merge round runs instead, after the commit that
 * crossed the mark, in transactions of its own between group commits, one slice at a time. A slice is a range of
 * device ids holding about SLICE_ROWS staged rows, merged and deleted in one transaction, so no commit, and no
 * request waiting on one, waits for the whole ~30 ms merge. Slices are ranges of series, not of age:
 * ts_kv is clustered by (device_id, key, ts), so a slice of the oldest 4,000 rows (tried first) spans nearly every
 * series and dirties nearly every page a full merge dirties, and a WAL commit writes each dirtied page: 2.3-2.5× the
 * merge's CPU and WAL bytes per row (bench/RESULTS.md, issue 17). A range of devices dirties only its own pages, once
 * a round. Each slice is self-contained (it deletes exactly what it merged, whatever else happened meanwhile), so a
 * round needs no bookkeeping to be correct: a slice may run after a reader merged everything, after another process
 * did, or never (a crash); rows staged into a range after its slice ran wait for the next round.
 */
import { channel } from 'node:diagnostics_channel';
import { CompiledQuery, type Kysely, type Transaction } from 'kysely';
import type { Database } from '../schema.ts';
import type { WriterOp } from '../sqlite-writer-thread.ts';
import { statements } from '../sqlite-writer-dialect.ts';
import { CHUNK_MIN_POINTS } from './sqlite-chunk-writes.ts';

type Db = Kysely<Database> | Transaction<Database>;

/**
 * Rows per distinct series at which a batch is written straight to ts_kv (bulk uploads, pipelining MQTT devices):
 * its rows then share pages. Measured per stored row on a database file, rows grouped by series as foldPoints
 * (sqlite-upsert.ts) gives them (bench/store/writer-forms.ts, issue 17): staging plus merging 2.1-2.4 µs whatever the
 * batch; a direct upsert 4.7 µs at 8 rows per series, 2.9 at 16, 2.1 at 32, 1.7 at 64, 1.5 at 128, 1.4 at 256. (In
 * arrival order, before the rows were grouped: 13 µs at 1 row per series, 5 at 8, 2.2 at 64, so the bound was 256.)
 * Closed-loop devices (one request, wait for the answer) leave one row per series in a commit: staged.
 */
export const DIRECT_ROWS_PER_SERIES = 32;

/**
 * Staged rows at which a merge round starts (see the file's doc). A merge costs ~1.5 µs a row at 20,000 rows
 * (2.6 at 5,000, 1.3 at 50,000: a page of ts_kv takes more rows); merged at once, 20,000 took ~30 ms.
 */
export const MERGE_AT = 20_000;

/**
 * Staged rows a merge slice takes, about (whole devices: a slice is a range of device ids), so a slice holds the
 * writer (and the event loop: slices run on the main-thread connection) 7-9 ms on a quiet machine, at 1.6-2.2 µs a
 * row. Smaller slices cost more: each scans the whole staging table for its range (~0.05 µs a row, twice).
 */
export const SLICE_ROWS = 4_000;

/**
 * Rows appended by one commit from which it merges everything staged inside itself, as before slices: such a commit
 * (MQTT telemetry's, thousands of rows, on the writer thread) already takes several ms, and merging all at once
 * dirties each ts_kv page once, where slices would each scan the staging table while it keeps growing by thousands
 * of rows a commit (measured: +14% CPU per message for MQTT telemetry with a distinct ts, bench/core/ingest.ts).
 */
export const MERGE_IN_COMMIT_ROWS = 1_000;

const COLUMNS = ['device_id', 'key', 'ts', 'bool_v', 'long_v', 'dbl_v', 'str_v', 'json_v'].map((c) => `"${c}"`).join(', ');
const SET_VALUES = ['bool_v', 'long_v', 'dbl_v', 'str_v', 'json_v'].map((c) => `"${c}" = excluded."${c}"`).join(', ');
// In seq order, so the later of two staged rows of a (device, key, ts) wins; `where true` parses ON CONFLICT as the upsert.
const MERGE = CompiledQuery.raw(
  `insert into "ts_kv" (${COLUMNS}) select ${COLUMNS} from "ts_kv_recent" where true order by "seq" on conflict ("device_id", "key", "ts") do update set ${SET_VALUES}`,
);
const CLEAR = CompiledQuery.raw('delete from "ts_kv_recent"');
// A slice: the staged rows of device ids from the first parameter up to (not including) the second, if any.
const RANGE = ['"device_id" >= ?', '"device_id" >= ? and "device_id" < ?'];
const MERGE_RANGE = RANGE.map(
  (range) => `insert into "ts_kv" (${COLUMNS}) select ${COLUMNS} from "ts_kv_recent" where ${range} order by "seq" on conflict ("device_id", "key", "ts") do update set ${SET_VALUES}`,
);
const CLEAR_RANGE = RANGE.map((range) => `delete from "ts_kv_recent" where ${range}`);

/** A slice of a merge round: device ids from `from` up to (not including) `to`, or with no end. */
interface Slice {
  from: string;
  to: string | undefined;
}
const ANY = CompiledQuery.raw('select 1 from "ts_kv_recent" limit 1');
/** Each merge slice's rows and wall time, for diagnostics (bench/support/stall-trace.mjs). */
const published = channel('fleetgate:sqlite-merge');

/** One SQLite store's staging state (see the file's doc). */
export class SqliteStaging {
  /** Device ids of the rows staged since the current merge round began (where its slices' ranges are cut). */
  private devices = new Set<string>();
  /** The slices of the current merge round still to run (undefined: no round). */
  private round: Slice[] | undefined;
  /** The slice being merged. */
  private running: Promise<void> | undefined;
  private stopped = false;
  /** The next slice, scheduled. */
  private due: NodeJS.Immediate | undefined;
  /**
   * Rows appended since the current round began. A round merges everything staged before it began (its slices cover
   * every device id), so once it is over at most these are left: `staged` may count rows that never were (a rolled-back
   * transaction) or that something else merged or deleted (another process, a reader's merge racing a count, a
   * deleted device), and a count left at MERGE_AT or more would start a new round at once after each, without end.
   */
  private appendedSinceRound = 0;

  private constructor(
    /** The database (not a transaction) merge slices run on. */
    private readonly db: Kysely<Database>,
    /** Rows staged and not yet merged, as far as this process knows: schedules merges, nothing else. */
    public staged: number,
    private readonly mergeAt: number,
    private readonly sliceRows: number,
    /**
     * Points of one series from which a dense batch writes the series as one ts_kv_chunk row (sqlite-chunk-writes.ts,
     * CHUNK_MIN_POINTS; Infinity: never).
     */
    readonly chunkMinPoints: number,
  ) {}

  /** The staging of the database `db`, counting the rows already staged (e.g. left by a process that was killed). */
  static async open(db: Kysely<Database>, mergeAt = MERGE_AT, sliceRows = SLICE_ROWS, chunkMinPoints = CHUNK_MIN_POINTS): Promise<SqliteStaging> {
    const row = await db.selectFrom('ts_kv_recent').select((eb) => eb.fn.countAll().as('n')).executeTakeFirst();
    return new SqliteStaging(db, Number(row?.n ?? 0), mergeAt, sliceRows, chunkMinPoints);
  }

  /**
   * After a group commit that appended rows: starts the next slice of the merge round, or a new round once MERGE_AT
   * rows are staged, unless a slice is running. Never waits and never throws: a slice that fails leaves its rows
   * staged (the next round, reader or close merges them).
   */
  committed(): void {
    if (this.running || this.stopped || this.due || (this.round === undefined && this.staged < this.mergeAt)) return;
    // On the next turn of the event loop: the commit's requests are answered first (a slice on the main-thread
    // connection holds the event loop while it runs).
    this.due = setImmediate(() => {
      this.due = undefined;
      this.next();
    });
  }

  private next(): void {
    if (this.running || this.stopped) return;
    if (this.round === undefined || this.round.length === 0) {
      // A round that ran all its slices: what is left is at most what was appended meanwhile (see appendedSinceRound).
      if (this.round !== undefined) this.staged = Math.min(this.staged, this.appendedSinceRound);
      this.round = undefined;
      if (this.staged < this.mergeAt) return;
      this.round = this.slices();
    }
    const { from, to } = this.round.shift()!;
    const bounded = to === undefined ? 0 : 1;
    const params = to === undefined ? [from] : [from, to];
    // A short statement list: with the writer thread on, it runs on the main-thread connection, where the light
    // commits that staged these rows ran (a slice on the thread measured more CPU in all, its connection's page cache
    // made stale by every commit of the other, and the event loop waited for it all the same: commits queue behind it).
    const ops: WriterOp[] = [
      { sql: MERGE_RANGE[bounded], params },
      { sql: CLEAR_RANGE[bounded], params, ifChanged: true },
    ];
    const started = performance.now();
    this.running = this.db
      .transaction()
      .execute((trx) => trx.executeQuery(statements(ops)))
      .then(
        // The merged rows and the deleted ones: as many of each.
        (result) => {
          this.staged = Math.max(0, this.staged - Number(result.numAffectedRows ?? 0n) / 2);
          if (published.hasSubscribers) published.publish({ slice: Number(result.numAffectedRows ?? 0n) / 2, ms: performance.now() - started });
        },
        () => void (this.round = undefined),
      )
      .finally(() => {
        this.running = undefined;
        // The next slice queues behind the group commit that waited for this one (the mutex is first come, first served).
        if (this.round) this.committed();
      });
  }

  /** Resolves once the merge round is over: no slice running or still to run (tests). */
  async settled(): Promise<void> {
    while (this.running || this.round || this.due) await (this.running ?? new Promise((resolve) => setImmediate(resolve)));
  }

  /** Stops starting merge slices and waits for the running one (before closing the store). */
  async stop(): Promise<void> {
    this.stopped = true;
    this.round = undefined;
    if (this.due) clearImmediate(this.due);
    this.due = undefined;
    await this.running;
  }

  /** A new round's slices: ranges of the device ids staged since the last round began, ~SLICE_ROWS rows each. */
  private slices(): Slice[] {
    const ids = [...this.devices].sort();
    this.devices = new Set();
    this.appendedSinceRound = 0;
    const parts = Math.max(1, Math.min(ids.length, Math.ceil(this.staged / this.sliceRows)));
    // From '' (the least text) to no end: rows of devices this process did not stage are merged too.
    const slices: Slice[] = [];
    let from = '';
    for (let i = 1; i < parts; i++) {
      const to = ids[Math.floor((i * ids.length) / parts)];
      slices.push({ from, to });
      from = to;
    }
    slices.push({ from, to: undefined });
    return slices;
  }

  /**
   * Counts `rows` just appended (in a transaction not yet committed) for the devices of `series` (a point per
   * series: only its deviceId is read). Returns the statements of a whole merge (mergeOps) to run at the end of this
   * transaction when it appended MERGE_IN_COMMIT_ROWS or more and MERGE_AT rows are staged (or 4 × MERGE_AT are);
   * otherwise none, and the merge runs after the commit, in slices (committed()).
   */
  appended(rows: number, series: readonly { deviceId: string }[]): WriterOp[] {
    this.staged += rows;
    this.appendedSinceRound += rows;
    for (const p of series) this.devices.add(p.deviceId);
    // The second bound is a safety net: slices run on later turns of the event loop, and should they fall behind
    // (an event loop that never turns between commits), a light commit merges everything as before slices.
    const inCommit = (rows >= MERGE_IN_COMMIT_ROWS && this.staged >= this.mergeAt) || this.staged >= 4 * this.mergeAt;
    return inCommit ? this.mergeOps() : [];
  }

  /** merge() as statements: the emptying delete runs only if the merge moved a row (see merge). */
  mergeOps(): WriterOp[] {
    this.forget();
    return [
      { sql: MERGE.sql, params: [] },
      { sql: CLEAR.sql, params: [], ifChanged: true },
    ];
  }

  /**
   * Moves every staged row into ts_kv (upserting in seq order) and empties the staging table. Run it inside a
   * transaction. Cheap when nothing is staged: no page is written (the emptying delete, which always dirties the
   * table's root page, is skipped).
   */
  async merge(db: Db): Promise<void> {
    const merged = await db.executeQuery(MERGE);
    if ((merged.numAffectedRows ?? 0n) > 0n) await db.executeQuery(CLEAR);
    this.forget();
  }

  /** Everything staged is (being) merged at once: no round is due. */
  private forget(): void {
    this.staged = 0;
    this.appendedSinceRound = 0;
    this.round = undefined;
    this.devices.clear();
  }

  /**
   * Before reading ts_kv: merges when any process left rows staged, in a transaction of its own unless `db` is one.
   * The check is one read of the table's first page, so readers pay ~1 µs when nothing is staged.
   */
  async flush(db: Db): Promise<void> {
    if ((await db.executeQuery(ANY)).rows.length === 0) return;
    if (db.isTransaction) await this.merge(db);
    else await (db as Kysely<Database>).transaction().execute((trx) => this.merge(trx));
  }

  /** Deletes the staged rows of a device (with its time series), inside the caller's transaction. */
  async deleteDevice(db: Db, deviceId: string): Promise<void> {
    await db.deleteFrom('ts_kv_recent').where('device_id', '=', deviceId).execute();
  }
}
