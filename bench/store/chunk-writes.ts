/**
 * What a stored telemetry point costs on the SQLite write path, ts_kv rows against ts_kv_chunk rows (issue 17 item 4:
 * the chunk layout's write side, src/store/kysely/sqlite-chunk-writes.ts), by points per series in a commit. The
 * real statement builders (sqlite-upsert.ts directOps: chunks, the ts_kv upsert, the latest-value upsert) on one
 * connection to a real database file with the project's schema and pragmas, in this thread; CPU time
 * (process.cpuUsage, user + system) per stored point over `--points` points per form, folding and packing included,
 * forms alternating; WAL frames per 100 points. Each commit holds about `--commit` points: two series per device (a
 * DOUBLE and a LONG, as the MQTT bench's payload), `p` points per series at distinct timestamps, devices taken in turn
 * from `--devices`. Checkpoints (RESTART, every 8 commits) run between commits, not counted (the server runs them on
 * their own thread).
 *
 *   node --import tsx bench/store/chunk-writes.ts [--per-series 8,16,32,64] [--points 200000] [--commit 2048]
 *     [--rounds 2] [--forms rows,chunks,chunks-delete-each,chunks-no-delete]
 *
 * Forms: rows (every point a ts_kv row, chunks off), chunks (what the store writes: one chunk a series and rule 2's
 * delete as one statement a commit), chunks-delete-each (rule 2 as one delete per chunk, binding its points again),
 * chunks-no-delete (no rule 2: only to show what the delete costs).
 */
import BetterSqlite3 from 'better-sqlite3';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import type { TsPoint } from '../../src/core/model.ts';
import { openSqliteStore } from '../../src/store/sqlite.ts';
import { directOps, foldPoints } from '../../src/store/kysely/sqlite-upsert.ts';
import { registerChunkFunctions } from '../../src/store/kysely/sqlite-chunk-writes.ts';
import type { WriterOp } from '../../src/store/sqlite-writer-thread.ts';

const { values } = parseArgs({
  options: {
    'per-series': { type: 'string', default: '8,16,32,64' },
    points: { type: 'string', default: '200000' },
    commit: { type: 'string', default: '2048' },
    devices: { type: 'string', default: '1000' },
    rounds: { type: 'string', default: '2' },
    forms: { type: 'string', default: 'rows,chunks,chunks-delete-each,chunks-no-delete' },
  },
});
const POINTS = Number(values.points);
const COMMIT = Number(values.commit);
const DEVICES = Number(values.devices);
const deviceIds = Array.from({ length: DEVICES }, (_, i) => `1ef${String(i).padStart(5, '0')}-0000-1000-8000-${String(i).padStart(12, '0')}`);

/** One commit's points: devices in turn, `p` messages each (2 points a message), interleaved as they arrive. */
function commitPoints(state: { device: number; clock: number }, p: number): TsPoint[] {
  const devices = Math.max(1, Math.round(COMMIT / (2 * p)));
  const points: TsPoint[] = [];
  for (let m = 0; m < p; m++) {
    for (let d = 0; d < devices; d++) {
      const deviceId = deviceIds[(state.device + d) % DEVICES];
      const ts = state.clock + m;
      points.push({ deviceId, key: 'temperature', ts, value: { type: 'DOUBLE', value: 21.5 + (m % 7) / 10 } });
      points.push({ deviceId, key: 'humidity', ts, value: { type: 'LONG', value: 40 + (m % 5) } });
    }
  }
  state.device = (state.device + devices) % DEVICES;
  if (state.device < devices) state.clock += p; // every device has been written: later timestamps
  return points;
}

/** Rule 2 as one delete per chunk (the form measured against the one statement). */
function deleteEach(ops: WriterOp[]): WriterOp[] {
  const out: WriterOp[] = [];
  for (const op of ops) {
    if (op.sql.startsWith('delete from "ts_kv" where ("device_id"')) continue;
    out.push(op);
    if (!op.sql.startsWith('insert into "ts_kv_chunk"')) continue;
    for (let at = 0; at < op.params.length; at += 6) {
      const [deviceId, key, first, last, , points] = op.params.slice(at, at + 6);
      out.push({ sql: 'delete from "ts_kv" where "device_id" = ? and "key" = ? and "ts" >= ? and "ts" <= ? and chunk_has_ts(?, "ts")', params: [deviceId, key, first, last, points] });
    }
  }
  return out;
}

function run(db: BetterSqlite3.Database, cache: Map<string, BetterSqlite3.Statement>, ops: readonly WriterOp[]): void {
  for (const op of ops) {
    let s = cache.get(op.sql);
    if (!s) cache.set(op.sql, (s = db.prepare(op.sql)));
    s.run(...op.params);
  }
}

const forms = values.forms.split(',');
const perSeries = values['per-series'].split(',').map(Number);
const dir = mkdtempSync(join(tmpdir(), 'fleetgate-chunk-writes-'));
const totals = new Map<string, number[]>();
try {
  for (let round = 0; round < Number(values.rounds); round++) {
    for (const p of perSeries) {
      for (const form of forms) {
        const path = join(dir, `${round}-${p}-${form}.db`);
        await (await openSqliteStore(path, { synchronous: 'normal', writerThread: false })).close();
        const db = new BetterSqlite3(path);
        db.pragma('journal_mode = WAL');
        db.pragma('synchronous = NORMAL');
        db.pragma('wal_autocheckpoint = 0');
        db.pragma('cache_size = -65536');
        db.defaultSafeIntegers(true);
        registerChunkFunctions(db);
        const cache = new Map<string, BetterSqlite3.Statement>();
        const state = { device: 0, clock: 1_700_000_000_000 };
        let cpu = 0;
        let stored = 0;
        let frames = 0;
        for (let c = 0; stored < POINTS; c++) {
          const points = commitPoints(state, p);
          const t0 = process.cpuUsage();
          const { rows, latest } = foldPoints(points);
          let ops: WriterOp[] = [];
          directOps(ops, rows, latest, form === 'rows' ? Infinity : 1);
          if (form === 'chunks-delete-each') ops = deleteEach(ops);
          else if (form === 'chunks-no-delete') ops = ops.filter((op) => !op.sql.startsWith('delete from "ts_kv"'));
          db.exec('begin');
          run(db, cache, ops);
          db.exec('commit');
          const d = process.cpuUsage(t0);
          if (c >= 2) {
            cpu += d.user + d.system;
            stored += rows.length;
          }
          if (c % 8 === 7) {
            const [r] = db.pragma('wal_checkpoint(RESTART)') as { log: number | bigint }[];
            if (c >= 2) frames += Number(r.log);
          }
        }
        const count = (sql: string) => Number((db.prepare(sql).get() as { n: bigint | null }).n ?? 0n);
        const held = count('select count(*) n from ts_kv') + count('select sum(length(points)) / 16 n from ts_kv_chunk');
        db.close();
        const us = cpu / stored;
        const name = `${p} a series, ${form}`;
        (totals.get(name) ?? totals.set(name, []).get(name)!).push(us);
        process.stderr.write(`round ${round + 1} ${name}: ${us.toFixed(3)} us CPU per stored point, ${((frames / stored) * 100).toFixed(1)} WAL frames per 100 points (${stored} measured, ${held} held)\n`);
      }
    }
  }
  for (const [name, xs] of totals) console.log(`${name}: ${xs.map((x) => x.toFixed(3)).join(' / ')} us/point`);
} finally {
  rmSync(dir, { recursive: true, force: true });
}
