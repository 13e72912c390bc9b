/**
 * What the outbox row's size costs SQLite (issue 16, the compact-form question of session 7): per commit, 16 lane rows
 * of a group-commit-sized batch (2,500 MQTT messages) inserted in one statement, and every 20 commits each lane's rows
 * deleted as one seq range, as the export does; text rows of the size the JSON form makes (~70 bytes a message) against
 * blob rows of the compact form's size (~32 bytes a message). WAL, synchronous=normal, one connection; CPU per message.
 *   [BLOB_SIZES=31,13,10] node --import tsx bench/export/outbox-bytes.ts [--commits 400]
 */
import Database from 'better-sqlite3';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';

const { values } = parseArgs({ options: { commits: { type: 'string', default: '400' } } });
const COMMITS = Number(values.commits);
const MESSAGES = 2500;
const LANES = 16;

function run(kind: 'text' | 'blob', bytesPerMessage: number): number {
  const dir = mkdtempSync(join(tmpdir(), 'fleetgate-outbox-bytes-'));
  const db = new Database(join(dir, 'b.db'));
  db.pragma('journal_mode = wal');
  db.pragma('synchronous = normal');
  db.exec(`create table o (seq integer primary key autoincrement, rule_id text not null, part integer not null, device_id text, kind text not null, created_time integer not null, payload ${kind === 'text' ? 'text' : 'blob'} not null, messages integer not null default 1);
           create index o_idx on o (rule_id, part, seq, messages)`);
  const perRow = Math.round((MESSAGES / LANES) * bytesPerMessage);
  const payload = kind === 'text' ? 'x'.repeat(perRow) : Buffer.alloc(perRow, 7);
  const insert = db.prepare(`insert into o (rule_id, part, device_id, kind, created_time, payload, messages) values ${Array.from({ length: LANES }, () => '(?, ?, null, ?, ?, ?, ?)').join(',')}`);
  const lane = db.prepare('select seq from o where rule_id = ? and part = ? order by seq');
  const del = db.prepare('delete from o where rule_id = ? and part = ? and seq between ? and ?');
  const t0 = process.cpuUsage();
  for (let c = 1; c <= COMMITS; c++) {
    const params: unknown[] = [];
    for (let p = 0; p < LANES; p++) params.push('rule', p, 'telemetry', Date.now(), kind === 'text' ? `${c}${payload as string}`.slice(0, perRow) : payload, 6);
    db.transaction(() => insert.run(params))();
    if (c % 20 === 0) {
      db.transaction(() => {
        for (let p = 0; p < LANES; p++) {
          const seqs = lane.all('rule', p) as { seq: number }[];
          if (seqs.length) del.run('rule', p, seqs[0].seq, seqs[seqs.length - 1].seq);
        }
      })();
    }
  }
  const u = process.cpuUsage(t0);
  db.close();
  rmSync(dir, { recursive: true, force: true });
  return ((u.user + u.system) * 1000) / (COMMITS * MESSAGES);
}

// BLOB_SIZES=31,13,10: only blob rows of those sizes (the f64 form, and session 8's packed form with varying and repeated values).
const blobSizes = process.env.BLOB_SIZES?.split(',').map(Number);
for (let r = 0; r < 3; r++) {
  if (blobSizes) console.log(blobSizes.map((b) => `blob ${b} B/msg: ${run('blob', b).toFixed(0)} ns`).join('; '));
  else console.log(`text 70 B/msg: ${run('text', 70).toFixed(0)} ns per message; blob 32 B/msg: ${run('blob', 32).toFixed(0)} ns; text 32 B/msg: ${run('text', 32).toFixed(0)} ns`);
}
