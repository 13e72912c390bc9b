/**
 * What a provisioning group costs SQLite, on better-sqlite3 alone: the statements NewDeviceWriter sends for a group of
 * new devices (multi-row device, credentials, provisionState and audit inserts, the OTA lookup, under a savepoint
 * inside BEGIN … COMMIT), on the project's schema (migrations run by openSqliteStore) holding 100,000 devices first.
 * Prints CPU (user + system) and WAL bytes per device for each variant, so the journal, table and index costs can be
 * told apart on a busy machine (process CPU, not wall time).
 *
 * Variants (joined with +): base (as provisioning does it), tempmem (temp_store = MEMORY, as the main-thread
 * connection now has it), nosp (no savepoint), noaudit / noattr / nocred (leave that insert out), noret (the device and
 * credentials inserts without RETURNING: the statement's change count says whether every row went in), clocktok (tokens
 * from core/ids.ts newAccessToken, whose first characters follow a clock, instead of 20 random characters), fullidx
 * (device_gateway_idx and audit_log_user_idx over every row, as before migration 015 made them partial), pages (also
 * print the WAL frames a group wrote, by the table or index each page belongs to: SQLite's dbstat).
 * Usage: node --import tsx bench/store/provision-journal.ts [groups=400] [devices per group=40] [variant …]
 */
import { copyFileSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import BetterSqlite3 from 'better-sqlite3';
import { openSqliteStore } from '../../src/store/sqlite.ts';
import { newAccessToken } from '../../src/core/ids.ts';

const [groupsArg = '400', sizeArg = '40', ...variantArgs] = process.argv.slice(2);
const variants = variantArgs.length > 0 ? variantArgs : ['base', 'tempmem', 'tempmem+noaudit', 'tempmem+nocred'];
const dir = mkdtempSync(join(tmpdir(), 'fleetgate-bench-journal-'));
const TENANT = '00000000-0000-4000-8000-000000000001';
const PROFILE = '01900000-0000-7000-8000-000000000001';

let seq = 0;
const hex = (n: number, width: number) => n.toString(16).padStart(width, '0');
/** UUIDv7-shaped, time-ordered like core/ids.ts newId. */
const id = () => {
  const t = hex(Date.now(), 12);
  seq++;
  return `${t.slice(0, 8)}-${t.slice(8)}-7${hex(Math.floor(Math.random() * 4096), 3)}-8${hex(seq & 0xfff, 3)}-${hex(Math.floor(Math.random() * 2 ** 48), 12)}`;
};
const token = () => Array.from({ length: 20 }, () => 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789'[Math.floor(Math.random() * 62)]).join('');
const rows = (n: number, columns: number) => Array.from({ length: n }, () => `(${Array(columns).fill('?').join(', ')})`).join(', ');

/** Prepared statements per connection and SQL text, as the store keeps them (sqlite-local-connection.ts). */
const prepared = new WeakMap<BetterSqlite3.Database, Map<string, BetterSqlite3.Statement>>();
function statement(db: BetterSqlite3.Database, text: string): BetterSqlite3.Statement {
  let cache = prepared.get(db);
  if (!cache) prepared.set(db, (cache = new Map()));
  let s = cache.get(text);
  if (!s) cache.set(text, (s = db.prepare(text)));
  return s;
}

function group(db: BetterSqlite3.Database, v: Set<string>, n: number, run: string): void {
  const dev: unknown[] = [];
  const cred: unknown[] = [];
  const attr: unknown[] = [];
  const aud: unknown[] = [];
  const ids: string[] = [];
  const now = Date.now();
  for (let i = 0; i < n; i++) {
    const d = id();
    const name = `bench-${run}-t1-${seq}`; // like the HTTP bench's names (provision-latency.lua)
    ids.push(d);
    dev.push(d, TENANT, PROFILE, name, 'bench', null, null, 1, now, null);
    cred.push(id(), d, 'ACCESS_TOKEN', v.has('clocktok') ? newAccessToken() : token(), null, now, null);
    attr.push(d, 'SERVER_SCOPE', 'provisionState', now, null, null, null, 'provisioned', null);
    const data = { provisionRequest: { deviceName: name, credentialsType: 'ACCESS_TOKEN', provisionDeviceKey: 'bench-key', gateway: false }, deviceProfileId: PROFILE, strategy: 'ALLOW_CREATE_NEW_DEVICES', reason: null };
    aud.push(id(), TENANT, now, 'DEVICE', d, name, null, null, 'PROVISION_SUCCESS', JSON.stringify(data), 'SUCCESS', null, 'HTTP:127.0.0.1');
  }
  statement(db, 'begin').run();
  if (!v.has('nosp')) statement(db, 'savepoint sp_1').run();
  statement(db, `insert into "device" ("id", "tenant_id", "profile_id", "name", "type", "label", "additional_info", "created_by_provisioning", "created_time", "gateway_id") values ${rows(n, 10)} on conflict ("tenant_id", "name") do nothing${v.has('noret') ? '' : ' returning "id"'}`)[v.has('noret') ? 'run' : 'all'](...dev);
  if (!v.has('nocred')) {
    statement(db, `insert into "device_credentials" ("id", "device_id", "credentials_type", "credentials_id", "credentials_value", "created_time", "first_used_time") values ${rows(n, 7)} on conflict ("credentials_id") do nothing${v.has('noret') ? '' : ' returning "device_id"'}`)[v.has('noret') ? 'run' : 'all'](...cred);
  }
  if (!v.has('noattr')) {
    statement(db, `insert into "attribute_kv" ("device_id", "scope", "key", "last_update_ts", "bool_v", "long_v", "dbl_v", "str_v", "json_v") values ${rows(n, 9)} on conflict do nothing`).run(...attr);
  }
  if (!v.has('noaudit')) {
    statement(db, `insert into "audit_log" ("id", "tenant_id", "created_time", "entity_type", "entity_id", "entity_name", "user_id", "user_name", "action_type", "action_data", "action_status", "action_failure_details", "source") values ${rows(n, 13)}`).run(...aud);
  }
  statement(db, `select "target_id", "ota_type", "package_id" from "ota_assignment" where "target_id" in (${[...ids, PROFILE].map(() => '?').join(', ')})`).all(...ids, PROFILE);
  if (!v.has('nosp')) statement(db, 'release savepoint sp_1').run();
  statement(db, 'commit').run();
}

function open(path: string, v: Set<string>): BetterSqlite3.Database {
  const db = new BetterSqlite3(path);
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = NORMAL');
  db.pragma('cache_size = -65536');
  db.pragma('foreign_keys = ON');
  db.pragma('wal_autocheckpoint = 0'); // the WAL's growth is the bytes written
  if (v.has('tempmem')) db.pragma('temp_store = MEMORY');
  return db;
}

/** WAL frames written from byte `from` on, by page number. */
function walFrames(path: string, from: number): Map<number, number> {
  const wal = readFileSync(`${path}-wal`);
  const pageSize = wal.readUInt32BE(8);
  const frames = new Map<number, number>();
  for (let at = Math.max(32, from); at + 24 + pageSize <= wal.length; at += 24 + pageSize) {
    const page = wal.readUInt32BE(at);
    frames.set(page, (frames.get(page) ?? 0) + 1);
  }
  return frames;
}

/** Prints the frames per group by owning table or index (`pages` variant). */
function printFramesByTree(db: BetterSqlite3.Database, frames: Map<number, number>, groups: number): void {
  const owner = new Map<number, string>();
  for (const r of db.prepare('select name, pageno from dbstat').all() as { name: string; pageno: number }[]) owner.set(r.pageno, r.name);
  const byTree = new Map<string, number>();
  for (const [page, n] of frames) {
    const tree = owner.get(page) ?? 'other';
    byTree.set(tree, (byTree.get(tree) ?? 0) + n);
  }
  for (const [tree, n] of [...byTree].sort((a, b) => b[1] - a[1])) console.log(`    ${tree.padEnd(40)} ${(n / groups).toFixed(2)} frames a group`);
}

try {
  // The schema from the migrations, one profile, 100,000 devices.
  const template = join(dir, 'template.db');
  const store = await openSqliteStore(template, { synchronous: 'normal', writerThread: false });
  await store.close();
  const db = open(template, new Set(['tempmem']));
  db.prepare(
    `insert into device_profile (id, tenant_id, name, type, transport_type, description, is_default, provision_type, provision_device_key, profile_data, created_time) values (?, ?, 'bench', 'DEFAULT', 'DEFAULT', null, 0, 'ALLOW_CREATE_NEW_DEVICES', 'bench-key', '{}', 0)`,
  ).run(PROFILE, TENANT);
  for (let g = 0; g < 2500; g++) group(db, new Set(['tempmem']), 40, 'pre');
  db.pragma('wal_checkpoint(TRUNCATE)');
  db.close();
  const groups = Number(groupsArg);
  const size = Number(sizeArg);
  console.log(`# ${groups} groups of ${size} new devices after 100,000, per device:`);
  for (const variant of variants) {
    const path = join(dir, `${variant}.db`);
    copyFileSync(template, path);
    const v = new Set(variant.split('+'));
    const vdb = open(path, v);
    if (v.has('fullidx')) {
      vdb.exec('drop index device_gateway_idx; create index device_gateway_idx on device (gateway_id);');
      vdb.exec('drop index audit_log_user_idx; create index audit_log_user_idx on audit_log (tenant_id, user_id);');
    }
    for (let g = 0; g < 100; g++) group(vdb, v, size, 'warm');
    const wal0 = statSync(`${path}-wal`).size;
    const c0 = process.cpuUsage();
    for (let g = 0; g < groups; g++) group(vdb, v, size, 'run');
    const c = process.cpuUsage(c0);
    const wal = statSync(`${path}-wal`).size - wal0;
    const n = groups * size;
    console.log(
      `${variant.padEnd(24)} ${((c.user + c.system) / n).toFixed(1)} µs CPU (user ${(c.user / n).toFixed(1)}, system ${(c.system / n).toFixed(1)}), WAL ${(wal / n / 1024).toFixed(2)} KB`,
    );
    if (v.has('pages')) printFramesByTree(vdb, walFrames(path, wal0), groups);
    vdb.close();
    for (const f of [path, `${path}-wal`, `${path}-shm`]) rmSync(f, { force: true });
  }
} finally {
  rmSync(dir, { recursive: true, force: true });
}
