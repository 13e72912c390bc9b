// The cost of forms of the SQLite staging merge, on better-sqlite3 alone (issue 17; bench/RESULTS.md). Appends
// commits of `batchReq` requests × `keys` values over `devices` devices to a ts_kv_recent-shaped table with the
// ts_kv_latest upsert, merging into a ts_kv clustered by (device_id, key, ts) once AT (env, default 20,000) rows
// are staged, in one of these forms:
//   full     all staged rows in seq order, inside the commit that crossed the mark (the form before issue 17)
//   sorted   the same, ordered by (device_id, key, ts, seq)      replace  the same as INSERT OR REPLACE
//   chunk    the oldest `chunk` rows per commit once the mark is crossed (the reverted trial)
//   range    device-id ranges of ~`chunk` rows, each its own transaction, one after another, one delete at the end
//   rangedel the same, each range deleting what it merged
//   inter    rangedel's slices, one after each commit (what src/store/kysely/sqlite-staging.ts does)
//   inter2   the same on a second connection (as the writer thread would)
// Prints CPU µs per row (in all, the merge's, the appends'), WAL KB written per row and the merges' wall ms.
//   node bench/store/merge-forms.mjs MODE [devices=100] [keys=3] [batchReq=50] [rows=200000] [chunk=4000]
import Database from 'better-sqlite3';
import { mkdtempSync, statSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
const [mode = 'full', devices = 100, keys = 3, batchReq = 50, total = 200000, chunk = 4000] = process.argv.slice(2).map((v, i) => (i ? Number(v) : v));
const dir = mkdtempSync(join(tmpdir(), 'mergesql-'));
const db = new Database(join(dir, 'x.db'));
db.pragma('journal_mode = WAL'); db.pragma('synchronous = NORMAL'); db.pragma('wal_autocheckpoint = 0'); db.pragma('cache_size = -65536');
db.defaultSafeIntegers(true);
const cols = '"device_id","key","ts","bool_v","long_v","dbl_v","str_v","json_v"';
const setv = ['bool_v', 'long_v', 'dbl_v', 'str_v', 'json_v'].map((c) => `"${c}" = excluded."${c}"`).join(', ');
db.exec(`create table ts_kv (device_id text not null, key text not null, ts integer not null, bool_v integer, long_v integer, dbl_v double precision, str_v text, json_v text, constraint ts_kv_pk primary key (device_id, key, ts)) without rowid;
create table ts_kv_latest (device_id text not null, key text not null, ts integer not null, bool_v integer, long_v integer, dbl_v double precision, str_v text, json_v text, constraint ts_kv_latest_pk primary key (device_id, key)) without rowid;
create table ts_kv_recent (seq integer primary key, device_id text not null, key text not null, ts integer not null, bool_v integer, long_v integer, dbl_v double precision, str_v text, json_v text);`);
const ids = Array.from({ length: devices }, (_, i) => `0190a1b2-${String(1000 + (i % 9000)).padStart(4, '0')}-7abc-8def-${String(i).padStart(12, '0')}`);
const keyNames = ['temperature', 'humidity', 'on', 'pressure', 'voltage'].slice(0, keys);
const tuple = '(?,?,?,?,?,?,?,?)';
const perStmt = batchReq * keys;
const appendStmt = db.prepare(`insert into ts_kv_recent (${cols}) values ${Array(perStmt).fill(tuple).join(',')}`);
const latestStmt = db.prepare(`insert into ts_kv_latest (${cols}) values ${Array(perStmt).fill(tuple).join(',')} on conflict (device_id, key) do update set ${setv}, ts = excluded.ts where excluded.ts >= ts_kv_latest.ts`);
const merges = {
  full: [`insert into ts_kv (${cols}) select ${cols} from ts_kv_recent where true order by seq on conflict (device_id, key, ts) do update set ${setv}`, 'delete from ts_kv_recent'],
  sorted: [`insert into ts_kv (${cols}) select ${cols} from ts_kv_recent where true order by device_id, key, ts, seq on conflict (device_id, key, ts) do update set ${setv}`, 'delete from ts_kv_recent'],
  replace: [`insert or replace into ts_kv (${cols}) select ${cols} from ts_kv_recent order by seq`, 'delete from ts_kv_recent'],
};
let ts = 1_700_000_000_000; let dev = 0; let staged = 0;
const params = new Array(perStmt * 8);
let mergeMs = []; let mergeCpu = 0; let appendCpu = 0;
const cpu = () => { const u = process.cpuUsage(); return (u.user + u.system) / 1000; };
const t0 = cpu();
let oldestSql = `"seq" < (select min("seq") from "ts_kv_recent") + ${chunk}`;
const chunkMerge = db.prepare(`insert into ts_kv (${cols}) select ${cols} from ts_kv_recent where ${oldestSql} order by seq on conflict (device_id, key, ts) do update set ${setv}`);
const chunkClear = db.prepare(`delete from ts_kv_recent where ${oldestSql}`);
const fullMerge = db.prepare((merges[mode] ?? merges.full)[0]); const fullClear = db.prepare((merges[mode] ?? merges.full)[1]);
// range chunks: by device id
const rangeMerge = db.prepare(`insert into ts_kv (${cols}) select ${cols} from ts_kv_recent where seq <= ? and device_id >= ? and device_id < ? order by seq on conflict (device_id, key, ts) do update set ${setv}`);
const rangeClear = db.prepare('delete from ts_kv_recent where seq <= ?');
const rangeDel = db.prepare('delete from ts_kv_recent where seq <= ? and device_id >= ? and device_id < ?');
const sortedIds = [...ids].sort();
const db2 = new Database(join(dir, 'x.db')); db2.pragma('cache_size = -65536'); db2.pragma('wal_autocheckpoint = 0'); db2.defaultSafeIntegers(true);
if (process.env.MMAP) { db.pragma('mmap_size = 1073741824'); db2.pragma('mmap_size = 1073741824'); }
const sliceDb = mode === 'inter2' ? db2 : db;
const sMerge = sliceDb.prepare(`insert into ts_kv (${cols}) select ${cols} from ts_kv_recent where device_id >= ? and device_id < ? order by seq on conflict (device_id, key, ts) do update set ${setv}`);
const sDel = sliceDb.prepare('delete from ts_kv_recent where device_id >= ? and device_id < ?');
let pending = [];
let rounds = 0;
for (let n = 0; n < total; n += perStmt) {
  const a = cpu();
  for (let r = 0; r < batchReq; r++) {
    ts++;
    const d = ids[dev++ % devices];
    for (let k = 0; k < keys; k++) { const at = (r * keys + k) * 8; params[at] = d; params[at + 1] = keyNames[k]; params[at + 2] = ts; params[at + 3] = null; params[at + 4] = null; params[at + 5] = 21.5 + k; params[at + 6] = null; params[at + 7] = null; }
  }
  db.exec('begin');
  appendStmt.run(params); latestStmt.run(params);
  staged += perStmt;
  let merged = false;
  const m0 = performance.now(); const c0 = cpu();
  if (mode === 'chunk' && staged >= Number(process.env.AT ?? 20000)) { chunkMerge.run(); chunkClear.run(); staged -= chunk; merged = true; }
  else if ((mode === 'full' || mode === 'sorted' || mode === 'replace') && staged >= Number(process.env.AT ?? 20000)) { fullMerge.run(); fullClear.run(); staged = 0; merged = true; }
  db.exec('commit');
  if ((mode === 'range' || mode === 'rangedel') && staged >= Number(process.env.AT ?? 20000)) {
    const maxSeq = db.prepare('select max(seq) m from ts_kv_recent').get().m;
    const parts = Math.ceil(staged / chunk);
    for (let p = 0; p < parts; p++) {
      const lo = p === 0 ? '' : sortedIds[Math.floor((p * devices) / parts)];
      const hi = p === parts - 1 ? '\uffff' : sortedIds[Math.floor(((p + 1) * devices) / parts)];
      const q0 = performance.now();
      db.exec('begin'); rangeMerge.run(maxSeq, lo, hi); if (mode === 'rangedel') rangeDel.run(maxSeq, lo, hi); else if (p === parts - 1) rangeClear.run(maxSeq); db.exec('commit');
      mergeMs.push(performance.now() - q0);
    }
    staged = 0; merged = true;
  }
  if ((mode === 'inter' || mode === 'inter2')) {
    if (pending.length === 0 && staged >= Number(process.env.AT ?? 20000)) {
      const parts = Math.ceil(staged / chunk);
      for (let p = 0; p < parts; p++) pending.push([p === 0 ? '' : sortedIds[Math.floor((p * devices) / parts)], p === parts - 1 ? '\uffff' : sortedIds[Math.floor(((p + 1) * devices) / parts)]]);
    }
    if (pending.length) {
      const [lo, hi] = pending.shift();
      const q0 = performance.now();
      sliceDb.exec('begin'); const ch = sMerge.run(lo, hi).changes; sDel.run(lo, hi); sliceDb.exec('commit');
      staged -= ch; mergeMs.push(performance.now() - q0); merged = true;
    }
  }
  const c1 = cpu();
  if (merged) { mergeCpu += c1 - c0; if (!mode.startsWith('range') && !mode.startsWith('inter')) mergeMs.push(performance.now() - m0); rounds++; }
  appendCpu += c0 - a;
}
const wal = statSync(join(dir, 'x.db-wal')).size;
const all = cpu() - t0;
mergeMs.sort((a, b) => a - b);
console.log(JSON.stringify({ mode, devices, keys, batchReq, rows: total, cpuUsPerRow: +(all * 1000 / total).toFixed(2), mergeCpuUsPerRow: +(mergeCpu * 1000 / total).toFixed(2), appendCpuUsPerRow: +(appendCpu * 1000 / total).toFixed(2), walKBPerRow: +(wal / 1024 / total).toFixed(3), merges: mergeMs.length, mergeMsMedian: +mergeMs[mergeMs.length >> 1]?.toFixed(1), mergeMsMax: +mergeMs.at(-1)?.toFixed(1) }));
rmSync(dir, { recursive: true, force: true });
