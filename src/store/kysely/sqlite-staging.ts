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
 */
import { CompiledQuery, type Kysely, type Transaction } from 'kysely';
import type { Database } from '../schema.ts';
import type { WriterOp } from '../sqlite-writer-thread.ts';

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
 * Staged rows at which the writer merges, inside its transaction. A merge costs ~1.5 µs a row at 20,000 rows
 * (2.6 at 5,000, 1.3 at 50,000: a page of ts_kv takes more rows), so it blocks the event loop for ~30 ms.
 */
export const MERGE_AT = 20_000;

const COLUMNS = ['device_id', 'key', 'ts', 'bool_v', 'long_v', 'dbl_v', 'str_v', 'json_v'].map((c) => `"${c}"`).join(', ');
const SET_VALUES = ['bool_v', 'long_v', 'dbl_v', 'str_v', 'json_v'].map((c) => `"${c}" = excluded."${c}"`).join(', ');
// In seq order, so the later of two staged rows of a (device, key, ts) wins; `where true` parses ON CONFLICT as the upsert.
const MERGE = CompiledQuery.raw(
  `insert into "ts_kv" (${COLUMNS}) select ${COLUMNS} from "ts_kv_recent" where true order by "seq" on conflict ("device_id", "key", "ts") do update set ${SET_VALUES}`,
);
const CLEAR = CompiledQuery.raw('delete from "ts_kv_recent"');
const ANY = CompiledQuery.raw('select 1 from "ts_kv_recent" limit 1');

/** One SQLite store's staging state (see the file's doc). */
export class SqliteStaging {
  private constructor(
    /** Rows staged since the last merge, as far as this process knows: schedules merges, nothing else. */
    public staged: number,
    private readonly mergeAt: number,
  ) {}

  /** The staging of the database `db`, counting the rows already staged (e.g. left by a process that was killed). */
  static async open(db: Kysely<Database>, mergeAt = MERGE_AT): Promise<SqliteStaging> {
    const row = await db.selectFrom('ts_kv_recent').select((eb) => eb.fn.countAll().as('n')).executeTakeFirst();
    return new SqliteStaging(Number(row?.n ?? 0), mergeAt);
  }

  /** Counts `rows` just appended inside the writer's transaction `db`, merging there when the count reaches MERGE_AT. */
  async appended(db: Db, rows: number): Promise<void> {
    this.staged += rows;
    if (this.staged >= this.mergeAt) await this.merge(db);
  }

  /**
   * The statements that count `rows` just appended: the merge (mergeOps) when the count reaches MERGE_AT, else none.
   * For a caller that sends its statements together (sqlite-upsert.ts).
   */
  appendedOps(rows: number): WriterOp[] {
    this.staged += rows;
    return this.staged >= this.mergeAt ? this.mergeOps() : [];
  }

  /** merge() as statements: the emptying delete runs only if the merge moved a row (see merge). */
  mergeOps(): WriterOp[] {
    this.staged = 0;
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
    this.staged = 0;
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
