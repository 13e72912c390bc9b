/**
 * The SQLite writer thread's CPU per stored row for the MQTT distinct-ts load's commits, this checkout against
 * another (`--base /abs/checkout`), alternating rounds in one process: each side starts its own writer thread
 * (src/store/sqlite-writer-thread.ts) on its own database file and receives the same commits (BEGIN, multi-row
 * upserts into ts_kv of `--series` series × `--per-series` rows grouped by series, the ts_kv_latest upsert, COMMIT),
 * built by each checkout's own src/store/kysely/sqlite-upsert.ts (`sqliteWriteBatch`; `--own-statements` builds the
 * 8-column upserts here instead, the same for both sides). The figure is the thread's own CPU (/proc, user + system)
 * per row, so the main thread's encoding and a loaded machine do not count.
 *
 *   node --import tsx bench/store/writer-thread-decode.ts [--base /tmp/wg-before] [--rows 400000] [--rounds 3]
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { pathToFileURL } from 'node:url';

const { values: args } = parseArgs({
  options: {
    base: { type: 'string' },
    rows: { type: 'string', default: '400000' },
    rounds: { type: 'string', default: '3' },
    series: { type: 'string', default: '200' },
    'per-series': { type: 'string', default: '64' },
    'own-statements': { type: 'boolean', default: false },
  },
});
const ROWS = Number(args.rows);
const SERIES = Number(args.series);
const PER_SERIES = Number(args['per-series']);
const VALUES = ['bool_v', 'long_v', 'dbl_v', 'str_v', 'json_v'];
const COLUMNS = ['device_id', 'key', 'ts', ...VALUES].map((c) => `"${c}"`).join(', ');
const SET = VALUES.map((c) => `"${c}" = excluded."${c}"`).join(', ');
const TS_KV = `on conflict ("device_id", "key", "ts") do update set ${SET}`;
const LATEST = `on conflict ("device_id", "key") do update set ${SET}, "ts" = excluded."ts" where excluded."ts" >= "ts_kv_latest"."ts"`;

function upsert(table: string, conflict: string, rows: unknown[][]): { sql: string; params: unknown[] }[] {
  const ops = [];
  for (let first = 0, n = 0; first < rows.length; first += n) {
    n = rows.length - first >= 512 ? 512 : 2 ** Math.floor(Math.log2(rows.length - first));
    const params: unknown[] = [];
    for (let i = 0; i < n; i++) params.push(...rows[first + i]);
    ops.push({ sql: `insert into "${table}" (${COLUMNS}) values ${Array(n).fill('(?, ?, ?, ?, ?, ?, ?, ?)').join(', ')} ${conflict}`, params });
  }
  return ops;
}

interface Side {
  name: string;
  thread: { start(): Promise<void>; run(ops: unknown[]): Promise<unknown>; cpuMs(): Promise<number>; close(): Promise<void> };
  ts: number;
  us: number[];
  writeBatch: (db: unknown, batch: { telemetry: unknown[]; attributes: unknown[] }) => Promise<void>;
}

async function side(name: string, root: string, dir: string): Promise<Side> {
  const { SqliteWriterThread } = await import(pathToFileURL(join(root, 'src/store/sqlite-writer-thread.ts')).href);
  const thread = new SqliteWriterThread({ path: join(dir, `${name}.db`), synchronous: 'normal', autocheckpoint: 1000 });
  await thread.start();
  for (const table of ['ts_kv', 'ts_kv_latest']) {
    const key = table === 'ts_kv' ? '"device_id", "key", "ts"' : '"device_id", "key"';
    await thread.run([{ sql: `create table "${table}" ("device_id" text not null, "key" text not null, "ts" integer not null, "bool_v" integer, "long_v" integer, "dbl_v" real, "str_v" text, "json_v" text, primary key (${key})) without rowid`, params: [] }]);
  }
  const { sqliteWriteBatch } = await import(pathToFileURL(join(root, 'src/store/kysely/sqlite-upsert.ts')).href);
  return { name, thread, ts: 1_760_000_000_000, us: [], writeBatch: sqliteWriteBatch };
}

async function round(s: Side): Promise<void> {
  const before = await s.thread.cpuMs();
  let stored = 0;
  while (stored < ROWS) {
    const rows: unknown[][] = [];
    const latest: unknown[][] = [];
    const points: unknown[] = [];
    for (let i = 0; i < PER_SERIES; i++) {
      // As the MQTT bench's messages arrive: each device's temperature (DOUBLE) and humidity (LONG) at one ts.
      for (let d = 0; d < SERIES / 2; d++) {
        const deviceId = `0b7c${String(d).padStart(4, '0')}-8d1e-11ef-9f3a-5b2d0c4e7a1${d % 10}`;
        points.push({ deviceId, key: 'temperature', ts: s.ts + i, value: { type: 'DOUBLE', value: 21.5 + i / 10 } });
        points.push({ deviceId, key: 'humidity', ts: s.ts + i, value: { type: 'LONG', value: 40 + i } });
      }
    }
    if (args['own-statements']) {
      for (let d = 0; d < SERIES / 2; d++) {
        const device = `0b7c${String(d).padStart(4, '0')}-8d1e-11ef-9f3a-5b2d0c4e7a1${d % 10}`;
        for (let i = 0; i < PER_SERIES; i++) rows.push([device, 'temperature', s.ts + i, null, null, 21.5 + i / 10, null, null]);
        latest.push(rows[rows.length - 1]);
        for (let i = 0; i < PER_SERIES; i++) rows.push([device, 'humidity', s.ts + i, null, 40 + i, null, null, null]);
        latest.push(rows[rows.length - 1]);
      }
      await s.thread.run([{ sql: 'begin', params: [] }, ...upsert('ts_kv', TS_KV, rows), ...upsert('ts_kv_latest', LATEST, latest), { sql: 'commit', params: [] }]);
    } else {
      const db = { executeQuery: (q: { parameters: readonly unknown[] }) => s.thread.run([{ sql: 'begin', params: [] }, ...(q.parameters as unknown[]), { sql: 'commit', params: [] }]) };
      await s.writeBatch(db, { telemetry: points, attributes: [] });
    }
    s.ts += PER_SERIES;
    stored += points.length;
  }
  const ms = (await s.thread.cpuMs()) - before;
  s.us.push((ms * 1000) / stored);
}

const dir = mkdtempSync(join(tmpdir(), 'writer-decode-'));
try {
  const sides = [await side('this', resolve('.'), dir)];
  if (args.base) sides.unshift(await side('base', resolve(args.base), dir));
  for (let r = 0; r < Number(args.rounds); r++) {
    for (const s of sides) {
      await round(s);
      process.stderr.write(`round ${r + 1} ${s.name}: ${s.us[s.us.length - 1].toFixed(3)} us writer-thread CPU per row\n`);
    }
  }
  for (const s of sides) {
    console.log(`${s.name}: ${s.us.map((u) => u.toFixed(3)).join(' / ')} us per row`);
    await s.thread.close();
  }
} finally {
  rmSync(dir, { recursive: true, force: true });
}
