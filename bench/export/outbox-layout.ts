/**
 * What the outbox's table layout costs SQLite (issue 16), in one thread with better-sqlite3 alone: per commit 16 lane
 * rows of BYTES bytes (default 920: run.ts's load, 2,496 messages a commit at 5.9 bytes) in one INSERT, in a
 * transaction of its own; every DELIVER_EVERY commits (default 10) each lane's rows read by the lane index and deleted
 * as one seq range, all lanes in one transaction (delivery's rounds); every 100 commits a passive checkpoint. CPU µs
 * a message (2,496 a commit) of each part:
 *   current: rowid table (seq AUTOINCREMENT) + the lane index (rule_id, part, seq, messages), as migrations 011-013
 *   clustered: WITHOUT ROWID, primary key (rule_id, part, seq): a lane's rows side by side, no second index; seq from
 *     a counter row (what AUTOINCREMENT does for the rowid table)
 *   node --import tsx bench/export/outbox-layout.ts [--commits 2000] [--rounds 3]
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import Database from 'better-sqlite3';

const { values } = parseArgs({ options: { commits: { type: 'string', default: '2000' }, rounds: { type: 'string', default: '3' } } });
const COMMITS = Number(values.commits);
const BYTES = Number(process.env.BYTES ?? 920);
const DELIVER_EVERY = Number(process.env.DELIVER_EVERY ?? 10);
const LANES = 16;
const MESSAGES_A_COMMIT = 2496;
const RULE = 'c0ffee00-0000-4000-8000-000000000001';

type Layout = 'current' | 'clustered';

function run(layout: Layout) {
  const dir = mkdtempSync(join(tmpdir(), 'fleetgate-outbox-layout-'));
  const db = new Database(join(dir, 'db.sqlite'));
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = NORMAL');
  db.pragma('wal_autocheckpoint = 0');
  db.pragma('cache_size = -65536');
  if (layout === 'current') {
    db.exec(`create table export_outbox (seq integer primary key autoincrement, rule_id text not null, part integer not null, device_id text, kind text not null,
      created_time integer not null, payload text not null, messages integer not null default 1, points blob)`);
    db.exec('create index export_outbox_lane_messages_idx on export_outbox (rule_id, part, seq, messages)');
  } else {
    db.exec(`create table export_outbox (rule_id text not null, part integer not null, seq integer not null, device_id text, kind text not null,
      created_time integer not null, payload text not null, messages integer not null default 1, points blob, primary key (rule_id, part, seq)) without rowid`);
    db.exec('create table export_outbox_seq (id integer primary key, seq integer not null)');
    db.exec('insert into export_outbox_seq values (1, 0)');
  }
  const tuple = layout === 'current' ? '(?, ?, ?, ?, ?, ?, ?, ?)' : '(?, ?, ?, ?, ?, ?, ?, ?, ?)';
  const columns = layout === 'current' ? 'rule_id, part, device_id, kind, created_time, payload, messages, points' : 'rule_id, part, seq, device_id, kind, created_time, payload, messages, points';
  const insert = db.prepare(`insert into export_outbox (${columns}) values ${Array(LANES).fill(tuple).join(', ')}`);
  const takeSeqs = layout === 'current' ? undefined : db.prepare(`update export_outbox_seq set seq = seq + ${LANES} where id = 1 returning seq`);
  const sizes = db.prepare('select seq, messages from export_outbox where rule_id = ? and part = ? order by seq limit 100000');
  const remove = db.prepare('delete from export_outbox where rule_id = ? and part = ? and seq between ? and ?');
  const begin = db.prepare('begin');
  const commit = db.prepare('commit');
  const bytes = Buffer.alloc(BYTES, 7);
  const cpu = { insert: 0, deliver: 0, checkpoint: 0 };
  const time = (part: keyof typeof cpu, work: () => void) => {
    const t = process.cpuUsage();
    work();
    const u = process.cpuUsage(t);
    cpu[part] += u.user + u.system;
  };
  for (let c = 1; c <= COMMITS; c++) {
    time('insert', () => {
      begin.run();
      const params: unknown[] = [];
      const first = layout === 'clustered' ? Number((takeSeqs!.get() as { seq: number }).seq) - LANES + 1 : 0;
      for (let part = 0; part < LANES; part++) {
        if (layout === 'current') params.push(RULE, part, null, 'telemetry', c, '', 156, bytes);
        else params.push(RULE, part, first + part, null, 'telemetry', c, '', 156, bytes);
      }
      insert.run(...params);
      commit.run();
    });
    if (c % DELIVER_EVERY === 0)
      time('deliver', () => {
        const lanes = [];
        for (let part = 0; part < LANES; part++) lanes.push(sizes.all(RULE, part) as { seq: number }[]);
        begin.run();
        lanes.forEach((rows, part) => rows.length > 0 && remove.run(RULE, part, rows[0].seq, rows[rows.length - 1].seq));
        commit.run();
      });
    if (c % 100 === 0) time('checkpoint', () => db.pragma('wal_checkpoint(PASSIVE)'));
  }
  db.close();
  rmSync(dir, { recursive: true, force: true });
  const messages = COMMITS * MESSAGES_A_COMMIT;
  return { insert: cpu.insert / messages, deliver: cpu.deliver / messages, checkpoint: cpu.checkpoint / messages };
}

const results: Record<Layout, ReturnType<typeof run>[]> = { current: [], clustered: [] };
for (let r = 0; r < Number(values.rounds); r++) for (const layout of ['current', 'clustered'] as const) results[layout].push(run(layout));
const list = (xs: number[]) => xs.map((x) => x.toFixed(3)).join(', ');
for (const [layout, rs] of Object.entries(results)) {
  console.log(`| ${layout} | insert ${list(rs.map((r) => r.insert))} | delivery's read + delete ${list(rs.map((r) => r.deliver))} | checkpoint ${list(rs.map((r) => r.checkpoint))} |`);
}
console.log(`(CPU µs a message, ${COMMITS} commits of ${LANES} rows of ${BYTES} bytes, ${MESSAGES_A_COMMIT} messages a commit)`);
