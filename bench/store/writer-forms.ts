/**
 * What a stored telemetry row costs the SQLite writer, by the form of the statements (issue 17 item 4: MQTT
 * telemetry with a distinct ts, the writer thread's CPU per row). One connection on a real database file (the
 * project's schema and pragmas: WAL, synchronous=NORMAL, 64 MiB cache), in this thread; group commits of `--messages`
 * messages, 2 points each (a DOUBLE and a LONG), every point a distinct (device, key, ts), from `--spread` devices
 * (the next ones each commit) in bursts of `--burst` messages per device, as the MQTT bench's commits look. CPU time
 * (process.cpuUsage, user + system) per stored row over `--rows` rows per form, the staged forms' merges included,
 * forms alternating; WAL frames written per 100 rows. Checkpoints (RESTART, every 8 commits; `--wal grow`: none) run
 * between commits and are not counted: the server runs them on their own thread.
 *
 *   node --import tsx bench/store/writer-forms.ts [--rows 400000] [--messages 3200] [--rounds 2] [--forms 0,7]
 *     [--spread 32] [--burst 8] [--page-size 4096] [--wal restart|grow]
 *
 * Forms by index: see `forms` below (0: staged, the form before issue 17's change; 7: direct, rows grouped by series,
 * the form after it).
 */
import BetterSqlite3 from 'better-sqlite3';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { openSqliteStore } from '../../src/store/sqlite.ts';

const { values } = parseArgs({
  options: {
    rows: { type: 'string', default: '400000' },
    messages: { type: 'string', default: '3200' },
    rounds: { type: 'string', default: '2' },
    forms: { type: 'string' },
    spread: { type: 'string', default: '32' },
    burst: { type: 'string', default: '8' },
    'page-size': { type: 'string' },
    /** restart: the WAL starts over every 8 commits; grow: never checkpointed (as under continuous writes). */
    wal: { type: 'string', default: 'restart' },
  },
});
const ROWS = Number(values.rows);
const MESSAGES = Number(values.messages);
const DEVICES = 100;
const KEYS = ['temperature', 'humidity'];
const COLS = ['device_id', 'key', 'ts', 'bool_v', 'long_v', 'dbl_v', 'str_v', 'json_v'];
const COLUMNS = COLS.map((c) => `"${c}"`).join(', ');
const SET_VALUES = ['bool_v', 'long_v', 'dbl_v', 'str_v', 'json_v'].map((c) => `"${c}" = excluded."${c}"`).join(', ');
const MERGE_AT = 20_000;
const deviceIds = Array.from({ length: DEVICES }, (_, i) => `1ef${String(i).padStart(5, '0')}-0000-1000-8000-${String(i).padStart(12, '0')}`);

type Row = [string, string, number, null, number | null, number | null, null, null];

/** One commit's rows: MESSAGES messages spread over the devices, each 2 points at its own ts. */
const SPREAD = Number(values.spread);
const BURST = Number(values.burst);
let clock = 1_700_000_000_000;
let firstDevice = 0;
/**
 * One commit's rows: MESSAGES messages from SPREAD devices (the next ones each commit, as a commit of the MQTT bench
 * covers about a third of its 100 devices), arriving in bursts of BURST messages per device (one socket read).
 */
function commitRows(): { rows: Row[]; latest: Row[]; byseries: Row[] } {
  const rows: Row[] = [];
  const latest = new Map<string, Row>();
  for (let m = 0; m < MESSAGES; m++) {
    const burst = Math.floor(m / BURST);
    const d = deviceIds[(firstDevice + (burst % SPREAD)) % DEVICES];
    const ts = clock + Math.floor(burst / SPREAD) * BURST + (m % BURST);
    const t: Row = [d, 'temperature', ts, null, null, 21.5, null, null];
    const h: Row = [d, 'humidity', ts, null, 40, null, null, null];
    rows.push(t, h);
    latest.set(`${d}|temperature`, t);
    latest.set(`${d}|humidity`, h);
  }
  clock += MESSAGES + 1;
  firstDevice = (firstDevice + SPREAD) % DEVICES;
  return { rows, latest: [...latest.values()], byseries: grouped(rows) };
}

const tupleText = (n: number) => Array(n).fill(`(${COLS.map(() => '?').join(', ')})`).join(', ');
const CHUNK = 512;
const chunkRows = (remaining: number) => (remaining >= CHUNK ? CHUNK : 2 ** Math.floor(Math.log2(remaining)));

interface Form {
  name: string;
  /** Runs one commit's statements (inside BEGIN/COMMIT done by the caller). */
  commit(db: BetterSqlite3.Database, rows: Row[], latest: Row[], byseries: Row[]): void;
}

function preparedCache(db: BetterSqlite3.Database) {
  const cache = new Map<string, BetterSqlite3.Statement>();
  return (sql: string) => {
    let s = cache.get(sql);
    if (!s) cache.set(sql, (s = db.prepare(sql)));
    return s;
  };
}

function multiRow(db: BetterSqlite3.Database, table: string, conflict: string, rows: Row[]) {
  multiRowVerb(db, 'insert', table, conflict, rows);
}
function multiRowVerb(db: BetterSqlite3.Database, verb: string, table: string, conflict: string, rows: Row[]) {
  const prep = statementsOf.get(db)!;
  for (let first = 0, n = 0; first < rows.length; first += n) {
    n = chunkRows(rows.length - first);
    const params = new Array(n * 8);
    for (let i = 0; i < n; i++) {
      const r = rows[first + i];
      for (let c = 0; c < 8; c++) params[i * 8 + c] = r[c];
    }
    prep(`${verb} into "${table}" (${COLUMNS}) values ${tupleText(n)} ${conflict}`).run(params);
  }
}
const statementsOf = new Map<BetterSqlite3.Database, (sql: string) => BetterSqlite3.Statement>();

const LATEST_CONFLICT = `on conflict ("device_id", "key") do update set ${SET_VALUES}, "ts" = excluded."ts" where excluded."ts" >= "ts_kv_latest"."ts"`;
const TS_KV_CONFLICT = `on conflict ("device_id", "key", "ts") do update set ${SET_VALUES}`;
const MERGE_SEQ = `insert into "ts_kv" (${COLUMNS}) select ${COLUMNS} from "ts_kv_recent" where true order by "seq" on conflict ("device_id", "key", "ts") do update set ${SET_VALUES}`;
const MERGE_SORTED = `insert into "ts_kv" (${COLUMNS}) select ${COLUMNS} from "ts_kv_recent" where true order by "device_id", "key", "ts", "seq" on conflict ("device_id", "key", "ts") do update set ${SET_VALUES}`;
/** JSON staging: one parameter, an array of rows as arrays. */
const JSON_STAGE = `insert into "ts_kv_recent" (${COLUMNS}) select value->>0, value->>1, value->>2, value->>3, value->>4, value->>5, value->>6, value->>7 from json_each(?)`;

let staged = 0;
function mergeIfDue(db: BetterSqlite3.Database, added: number, merge: string) {
  staged += added;
  if (staged < MERGE_AT) return;
  const prep = statementsOf.get(db)!;
  if (prep(merge).run().changes > 0) prep('delete from "ts_kv_recent"').run();
  staged = 0;
}

const jsonOf = (rows: Row[]) => JSON.stringify(rows);

/** The rows grouped by series (device, key), arrival order kept within a series: what foldPoints can emit for free. */
function grouped(rows: Row[]): Row[] {
  const series = new Map<string, Row[]>();
  for (const r of rows) {
    const k = `${r[0]}|${r[1]}`;
    const list = series.get(k);
    if (list) list.push(r);
    else series.set(k, [r]);
  }
  return ([] as Row[]).concat(...series.values());
}

const forms: Form[] = [
  {
    name: 'current: stage multi-row 512, merge by seq',
    commit(db, rows, latest) {
      multiRow(db, 'ts_kv_recent', '', rows);
      mergeIfDue(db, rows.length, MERGE_SEQ);
      multiRow(db, 'ts_kv_latest', LATEST_CONFLICT, latest);
    },
  },
  {
    name: 'stage multi-row 512, merge sorted',
    commit(db, rows, latest) {
      multiRow(db, 'ts_kv_recent', '', rows);
      mergeIfDue(db, rows.length, MERGE_SORTED);
      multiRow(db, 'ts_kv_latest', LATEST_CONFLICT, latest);
    },
  },
  {
    name: 'stage single-row prepared ×N',
    commit(db, rows, latest) {
      const s = statementsOf.get(db)!(`insert into "ts_kv_recent" (${COLUMNS}) values ${tupleText(1)}`);
      for (const r of rows) s.run(r);
      mergeIfDue(db, rows.length, MERGE_SEQ);
      multiRow(db, 'ts_kv_latest', LATEST_CONFLICT, latest);
    },
  },
  {
    name: 'stage via json_each(1 param) (JSON built here)',
    commit(db, rows, latest) {
      statementsOf.get(db)!(JSON_STAGE).run(jsonOf(rows));
      mergeIfDue(db, rows.length, MERGE_SEQ);
      multiRow(db, 'ts_kv_latest', LATEST_CONFLICT, latest);
    },
  },
  {
    name: 'direct upsert ts_kv multi-row 512',
    commit(db, rows, latest) {
      multiRow(db, 'ts_kv', TS_KV_CONFLICT, rows);
      multiRow(db, 'ts_kv_latest', LATEST_CONFLICT, latest);
    },
  },
  {
    name: 'direct upsert ts_kv, rows sorted by series',
    commit(db, rows, latest) {
      const sorted = rows.slice().sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : a[1] < b[1] ? -1 : a[1] > b[1] ? 1 : a[2] - b[2]));
      multiRow(db, 'ts_kv', TS_KV_CONFLICT, sorted);
      multiRow(db, 'ts_kv_latest', LATEST_CONFLICT, latest);
    },
  },
  {
    name: 'stage grouped by series, merge by seq',
    commit(db, rows, latest, byseries) {
      multiRow(db, 'ts_kv_recent', '', byseries);
      mergeIfDue(db, rows.length, MERGE_SEQ);
      multiRow(db, 'ts_kv_latest', LATEST_CONFLICT, latest);
    },
  },
  {
    name: 'direct upsert, grouped by series',
    commit(db, rows, latest, byseries) {
      multiRow(db, 'ts_kv', TS_KV_CONFLICT, byseries);
      multiRow(db, 'ts_kv_latest', LATEST_CONFLICT, latest);
    },
  },
  {
    name: 'direct upsert grouped, 5 params a row (type tag + one value)',
    commit(db, rows, latest, byseries) {
      const prep = statementsOf.get(db)!;
      for (let first = 0, n = 0; first < byseries.length; first += n) {
        n = chunkRows(byseries.length - first);
        const params = new Array(n * 5);
        for (let i = 0; i < n; i++) {
          const r = byseries[first + i];
          const at = i * 5;
          params[at] = r[0];
          params[at + 1] = r[1];
          params[at + 2] = r[2];
          const tag = r[4] !== null ? 2 : 3;
          params[at + 3] = tag;
          params[at + 4] = tag === 2 ? r[4] : r[5];
        }
        const tuples = Array(n).fill('(?, ?, ?, ?, ?)').join(', ');
        prep(
          `insert into "ts_kv" (${COLUMNS}) select column1, column2, column3, iif(column4 = 1, column5, null), iif(column4 = 2, column5, null), iif(column4 = 3, column5, null), iif(column4 = 4, column5, null), iif(column4 = 5, column5, null) from (values ${tuples}) where true ${TS_KV_CONFLICT}`,
        ).run(params);
      }
      multiRow(db, 'ts_kv_latest', LATEST_CONFLICT, latest);
    },
  },
  {
    name: 'direct insert or replace, grouped by series',
    commit(db, rows, latest) {
      multiRowVerb(db, 'insert or replace', 'ts_kv', '', grouped(rows));
      multiRow(db, 'ts_kv_latest', LATEST_CONFLICT, latest);
    },
  },
  {
    name: 'direct plain insert (no conflict clause), grouped',
    commit(db, rows, latest) {
      multiRowVerb(db, 'insert', 'ts_kv', '', grouped(rows));
      multiRow(db, 'ts_kv_latest', LATEST_CONFLICT, latest);
    },
  },
  {
    name: 'direct sorted, no latest',
    commit(db, rows) {
      const sorted = rows.slice().sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : a[1] < b[1] ? -1 : a[1] > b[1] ? 1 : a[2] - b[2]));
      multiRow(db, 'ts_kv', TS_KV_CONFLICT, sorted);
    },
  },
  {
    name: 'direct sorted, latest single-row prepared',
    commit(db, rows, latest) {
      const sorted = rows.slice().sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : a[1] < b[1] ? -1 : a[1] > b[1] ? 1 : a[2] - b[2]));
      multiRow(db, 'ts_kv', TS_KV_CONFLICT, sorted);
      const s = statementsOf.get(db)!(`insert into "ts_kv_latest" (${COLUMNS}) values ${tupleText(1)} ${LATEST_CONFLICT}`);
      for (const r of latest) s.run(r);
    },
  },
  {
    name: 'stage+merge, no latest (what latest costs)',
    commit(db, rows) {
      multiRow(db, 'ts_kv_recent', '', rows);
      mergeIfDue(db, rows.length, MERGE_SEQ);
    },
  },
  {
    // Layout sketch (not the schema): points keyed by an integer series id, (series, ts) WITHOUT ROWID, the 5 value
    // columns kept; the (device, key) -> series map is the process's (a series table written once per new series).
    name: 'compact: (series int, ts) key, 5 value columns, grouped',
    commit(db, rows, latest, byseries) {
      compactUpsert(db, byseries, 5);
      multiRow(db, 'ts_kv_latest', LATEST_CONFLICT, latest);
    },
  },
  {
    name: 'compact: (series int, ts) key, one value column (type in the series), grouped',
    commit(db, rows, latest, byseries) {
      compactUpsert(db, byseries, 1);
      multiRow(db, 'ts_kv_latest', LATEST_CONFLICT, latest);
    },
  },
  {
    // Per-series chunks: one row per series per commit, its points packed (ts, value) as float64 pairs; the blob
    // built here is counted (the writer would build it from the rows it receives).
    name: 'chunk: a row per series per commit, points packed in a blob',
    commit(db, rows, latest, byseries) {
      const prep = statementsOf.get(db)!;
      prep('create table if not exists ts_chunk (series integer not null, first_ts integer not null, seq integer not null, points blob not null, primary key (series, first_ts, seq)) without rowid').run();
      const out: unknown[] = [];
      for (let i = 0; i < byseries.length; ) {
        let j = i;
        const k0 = byseries[i][0], k1 = byseries[i][1];
        while (j < byseries.length && byseries[j][0] === k0 && byseries[j][1] === k1) j++;
        const packed = new Float64Array((j - i) * 2);
        for (let m = i; m < j; m++) {
          packed[(m - i) * 2] = byseries[m][2];
          packed[(m - i) * 2 + 1] = Number(byseries[m][4] ?? byseries[m][5]);
        }
        out.push(seriesOf(byseries[i]), byseries[i][2], ++chunkSeq, Buffer.from(packed.buffer));
        i = j;
      }
      for (let first = 0, n = 0; first < out.length / 4; first += n) {
        n = chunkRows(out.length / 4 - first);
        prep(`insert into ts_chunk (series, first_ts, seq, points) values ${Array(n).fill('(?, ?, ?, ?)').join(', ')}`).run(out.slice(first * 4, (first + n) * 4));
      }
      multiRow(db, 'ts_kv_latest', LATEST_CONFLICT, latest);
    },
  },
  {
    // 17: what binding the nulls costs. Rows split by their value's column (order kept within each: valid when no
    // series mixes types, as here), each run an upsert binding (device_id, key, ts, that column): 4 parameters a row.
    name: 'direct upsert grouped, typed statements (4 params a row, no nulls bound)',
    commit(db, rows, latest, byseries) {
      const prep = statementsOf.get(db)!;
      const byColumn = new Map<number, Row[]>();
      for (const r of byseries) {
        let c = 3;
        while (c < 7 && r[c] === null) c++;
        (byColumn.get(c) ?? byColumn.set(c, []).get(c)!).push(r);
      }
      const names = ['bool_v', 'long_v', 'dbl_v', 'str_v', 'json_v'];
      for (const [c, list] of byColumn) {
        const name = names[c - 3];
        const set = names.map((v) => (v === name ? `"${v}" = excluded."${v}"` : `"${v}" = null`)).join(', ');
        for (let first = 0, n = 0; first < list.length; first += n) {
          n = chunkRows(list.length - first);
          const params = new Array(n * 4);
          for (let i = 0; i < n; i++) {
            const r = list[first + i];
            params[i * 4] = r[0];
            params[i * 4 + 1] = r[1];
            params[i * 4 + 2] = r[2];
            params[i * 4 + 3] = r[c];
          }
          prep(`insert into "ts_kv" ("device_id", "key", "ts", "${name}") values ${Array(n).fill('(?, ?, ?, ?)').join(', ')} on conflict ("device_id", "key", "ts") do update set ${set}`).run(params);
        }
      }
      multiRow(db, 'ts_kv_latest', LATEST_CONFLICT, latest);
    },
  },
];
let chunkSeq = 0;

const seriesIds = new Map<string, number>();
const seriesOf = (r: Row) => {
  const k = `${r[0]}|${r[1]}`;
  let id = seriesIds.get(k);
  if (id === undefined) seriesIds.set(k, (id = seriesIds.size + 1));
  return id;
};
/** Upserts rows into ts_point (series, ts, values): `width` 5 (the value columns) or 1 (the one non-null value). */
function compactUpsert(db: BetterSqlite3.Database, rows: Row[], width: 1 | 5) {
  const prep = statementsOf.get(db)!;
  const vcols = width === 5 ? ['bool_v', 'long_v', 'dbl_v', 'str_v', 'json_v'] : ['v'];
  prep(`create table if not exists ts_point_${width} (series integer not null, ts integer not null, ${vcols.join(', ')}, primary key (series, ts)) without rowid`).run();
  const cols = 2 + width;
  const tuple = `(${Array(cols).fill('?').join(', ')})`;
  const set = vcols.map((c) => `${c} = excluded.${c}`).join(', ');
  for (let first = 0, n = 0; first < rows.length; first += n) {
    n = chunkRows(rows.length - first);
    const params = new Array(n * cols);
    for (let i = 0; i < n; i++) {
      const r = rows[first + i];
      const at = i * cols;
      params[at] = seriesOf(r);
      params[at + 1] = r[2];
      if (width === 5) for (let c = 0; c < 5; c++) params[at + 2 + c] = r[3 + c];
      else params[at + 2] = r[4] ?? r[5];
    }
    prep(`insert into ts_point_${width} (series, ts, ${vcols.join(', ')}) values ${Array(n).fill(tuple).join(', ')} on conflict (series, ts) do update set ${set}`).run(params);
  }
}

function open(path: string): BetterSqlite3.Database {
  const db = new BetterSqlite3(path);
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = NORMAL');
  db.pragma('wal_autocheckpoint = 0');
  db.pragma('cache_size = -65536');
  db.pragma('foreign_keys = ON');
  db.defaultSafeIntegers(true);
  statementsOf.set(db, preparedCache(db));
  return db;
}

const chosen = values.forms ? values.forms.split(',').map((i) => forms[Number(i)]) : forms;
const dir = mkdtempSync(join(tmpdir(), 'fleetgate-forms-'));
const totals = new Map<string, number[]>();
try {
  for (let round = 0; round < Number(values.rounds); round++) {
    for (const form of chosen) {
      const path = join(dir, `forms-${round}-${forms.indexOf(form)}.db`);
      if (values['page-size']) {
        const fresh = new BetterSqlite3(path);
        fresh.pragma(`page_size = ${values['page-size']}`);
        fresh.close();
      }
      await (await openSqliteStore(path, { synchronous: 'normal', writerThread: false })).close();
      const db = open(path);
      staged = 0;
      // Warm-up: 2 commits (statements prepared, pages cached), not counted.
      let cpu = 0;
      let stored = 0;
      let frames = 0;
      let sys = 0;
      for (let c = 0; stored < ROWS; c++) {
        const { rows, latest, byseries } = commitRows();
        const t0 = process.cpuUsage();
        db.exec('begin');
        form.commit(db, rows, latest, byseries);
        db.exec('commit');
        const d = process.cpuUsage(t0);
        if (c >= 2) {
          cpu += d.user + d.system;
          sys += d.system;
          stored += rows.length;
        }
        if (c % 8 === 7 && values.wal === 'restart') {
          const [r] = db.pragma('wal_checkpoint(RESTART)') as { log: number | bigint }[];
          if (c >= 2) frames += Number(r.log);
        }
      }
      // The rows still staged are merged too, and counted: every form pays for every row reaching ts_kv.
      const t0 = process.cpuUsage();
      db.exec('begin');
      if (staged > 0) statementsOf.get(db)!(MERGE_SEQ).run();
      db.exec('commit');
      const d = process.cpuUsage(t0);
      cpu += d.user + d.system;
      const table = form.name.startsWith('chunk') ? 'ts_chunk' : form.name.startsWith('compact') ? `ts_point_${form.name.includes('one value') ? 1 : 5}` : 'ts_kv';
      const count = Number((db.prepare(`select count(*) n from ${table}`).get() as { n: bigint }).n);
      db.close();
      const us = cpu / stored;
      (totals.get(form.name) ?? totals.set(form.name, []).get(form.name)!).push(us);
      process.stderr.write(`round ${round + 1} ${form.name}: ${us.toFixed(2)} us CPU per stored row (${(sys / stored).toFixed(2)} of it system), ${(frames / stored * 100).toFixed(1)} WAL frames (pages written) per 100 rows (${stored} rows, ts_kv ${count})\n`);
    }
  }
  for (const [name, xs] of totals) console.log(`${name}: ${xs.map((x) => x.toFixed(2)).join(' / ')} us/row`);
} finally {
  rmSync(dir, { recursive: true, force: true });
}
