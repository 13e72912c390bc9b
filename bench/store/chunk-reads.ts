/**
 * What reading telemetry costs when it is stored as ts_kv_chunk rows instead of ts_kv rows (issue 17 item 4: the read
 * side of the chunked layout). The same data in two SQLite stores (real files, the project's pragmas, through the
 * Store API): 1 device, 2 keys (`temperature` DOUBLE, `count` LONG), `--points` points in all, one a second per key;
 * one store holds them as ts_kv rows, the other as chunks of `--chunk` points (as the chunk writer stores dense batches).
 * Queries, alternating between the stores for `--rounds` rounds: the cheapest raw query (one key, limit 1); a raw query of both keys over the last hour with
 * limit 100, ASC and DESC; a limit-10,000 query of both keys over the last day (ASC); an aggregation of both keys over
 * the last day into 24 buckets. Reports µs per query: CPU (process.cpuUsage, user + system) and wall time.
 *
 *   node --import tsx bench/store/chunk-reads.ts [--points 1000000] [--chunk 64] [--rounds 3] [--layouts rows,chunks]
 */
import BetterSqlite3 from 'better-sqlite3';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import type { Store } from '../../src/core/ports/store.ts';
import { openSqliteStore } from '../../src/store/sqlite.ts';
import { ChunkType, packChunk } from '../../src/store/kysely/ts-kv-chunk-format.ts';

const { values } = parseArgs({
  options: {
    points: { type: 'string', default: '1000000' },
    chunk: { type: 'string', default: '64' },
    rounds: { type: 'string', default: '3' },
    /** `rows`: only the all-rows store (to compare a checkout without the chunk reads: its cost with no chunk). */
    layouts: { type: 'string', default: 'rows,chunks' },
  },
});
const POINTS = Number(values.points);
const CHUNK = Number(values.chunk);
const ROUNDS = Number(values.rounds);
const DEVICE = '1ef00000-0000-1000-8000-000000000001';
const KEYS = ['temperature', 'count'];
const PER_KEY = Math.floor(POINTS / KEYS.length);
const START = 1_700_000_000_000;
const END = START + (PER_KEY - 1) * 1000;
const HOUR = 3_600_000;
const DAY = 24 * HOUR;
const valueOf = (key: string, i: number) => (key === 'count' ? i : 20 + Math.sin(i / 600) * 5);

async function fill(layout: 'rows' | 'chunks'): Promise<{ store: Store; close(): Promise<void> }> {
  const dir = mkdtempSync(join(tmpdir(), `fleetgate-chunk-reads-${layout}-`));
  const path = join(dir, 'db.sqlite');
  const store = await openSqliteStore(path, { synchronous: 'normal' });
  const raw = new BetterSqlite3(path);
  raw.pragma('busy_timeout = 5000');
  raw.transaction(() => {
    if (layout === 'rows') {
      const insert = raw.prepare('insert into ts_kv (device_id, key, ts, long_v, dbl_v) values (?, ?, ?, ?, ?)');
      for (const key of KEYS) for (let i = 0; i < PER_KEY; i++) insert.run(DEVICE, key, START + i * 1000, key === 'count' ? i : null, key === 'count' ? null : valueOf(key, i));
    } else {
      const insert = raw.prepare('insert into ts_kv_chunk (device_id, key, first_ts, last_ts, type, points) values (?, ?, ?, ?, ?, ?)');
      // Written as the writer would: a commit's chunks of both keys, then the next commit's.
      for (let from = 0; from < PER_KEY; from += CHUNK) {
        for (const key of KEYS) {
          const points = [];
          for (let i = from; i < Math.min(PER_KEY, from + CHUNK); i++) points.push({ ts: START + i * 1000, value: key === 'count' ? { type: 'LONG' as const, value: i } : { type: 'DOUBLE' as const, value: valueOf(key, i) } });
          const bytes = packChunk(points, key === 'count' ? ChunkType.LONG : ChunkType.DOUBLE);
          insert.run(DEVICE, key, points[0].ts, points[points.length - 1].ts, key === 'count' ? ChunkType.LONG : ChunkType.DOUBLE, Buffer.from(bytes));
        }
      }
    }
  })();
  raw.pragma('wal_checkpoint(TRUNCATE)');
  raw.close();
  return {
    store,
    async close() {
      await store.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

interface Case {
  name: string;
  times: number;
  run(store: Store): Promise<unknown>;
}

const cases: Case[] = [
  { name: 'raw, 1 key, last minute, limit 1, DESC', times: 3000, run: (s) => s.getTimeseries({ deviceId: DEVICE, keys: KEYS.slice(0, 1), startTs: END - 60_000, endTs: END, limit: 1, orderBy: 'DESC' }) },
  { name: 'raw, last hour, limit 100, ASC', times: 1000, run: (s) => s.getTimeseries({ deviceId: DEVICE, keys: KEYS, startTs: END - HOUR, endTs: END, limit: 100, orderBy: 'ASC' }) },
  { name: 'raw, last hour, limit 100, DESC', times: 1000, run: (s) => s.getTimeseries({ deviceId: DEVICE, keys: KEYS, startTs: END - HOUR, endTs: END, limit: 100, orderBy: 'DESC' }) },
  { name: 'raw, last day, limit 10,000, ASC', times: 20, run: (s) => s.getTimeseries({ deviceId: DEVICE, keys: KEYS, startTs: END - DAY, endTs: END, limit: 10_000, orderBy: 'ASC' }) },
  {
    name: 'aggregation, last day, 24 buckets',
    times: 10,
    run: (s) => s.aggregateTimeseries({ deviceId: DEVICE, keys: KEYS, buckets: Array.from({ length: 24 }, (_, i): [number, number] => [END - DAY + i * HOUR, END - DAY + (i + 1) * HOUR]) }),
  },
];

async function measure(store: Store, c: Case): Promise<{ cpu: number; wall: number }> {
  await c.run(store); // warm the statement cache and the page cache
  const cpu0 = process.cpuUsage();
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < c.times; i++) await c.run(store);
  const wall = Number(process.hrtime.bigint() - t0) / 1000 / c.times;
  const used = process.cpuUsage(cpu0);
  return { cpu: (used.user + used.system) / c.times, wall };
}

async function main(): Promise<void> {
  console.log(`filling: ${POINTS.toLocaleString()} points, 1 device, ${KEYS.length} keys, chunks of ${CHUNK}`);
  const layouts = values.layouts.split(',') as ('rows' | 'chunks')[];
  const stores: Partial<Record<'rows' | 'chunks', Awaited<ReturnType<typeof fill>>>> = {};
  for (const layout of layouts) stores[layout] = await fill(layout);
  // The two layouts must answer alike before they are timed (aggregations: float sums may differ in the last bits).
  const text = (x: unknown) => JSON.stringify(x, (_, v) => (v instanceof Map ? [...v] : typeof v === 'number' && !Number.isInteger(v) ? v.toPrecision(12) : v));
  if (stores.rows && stores.chunks) {
    for (const c of cases) if (text(await c.run(stores.rows.store)) !== text(await c.run(stores.chunks.store))) throw new Error(`the layouts answer "${c.name}" differently`);
  }
  const results = new Map<string, { rows: number[]; chunks: number[]; rowsWall: number[]; chunksWall: number[] }>();
  for (let round = 1; round <= ROUNDS; round++) {
    for (const c of cases) {
      const r = results.get(c.name) ?? { rows: [], chunks: [], rowsWall: [], chunksWall: [] };
      results.set(c.name, r);
      const order = round % 2 === 1 ? layouts : [...layouts].reverse();
      for (const layout of order) {
        const m = await measure(stores[layout]!.store, c);
        r[layout].push(m.cpu);
        r[layout === 'rows' ? 'rowsWall' : 'chunksWall'].push(m.wall);
      }
    }
  }
  const f = (xs: number[]) => xs.map((x) => x.toFixed(0)).join(' / ');
  console.log('| query | rows: µs CPU per query | chunks: µs CPU per query | rows: wall µs | chunks: wall µs |');
  console.log('|---|---|---|---|---|');
  for (const [name, r] of results) console.log(`| ${name} | ${f(r.rows)} | ${f(r.chunks)} | ${f(r.rowsWall)} | ${f(r.chunksWall)} |`);
  for (const s of Object.values(stores)) await s.close();
}

await main();
