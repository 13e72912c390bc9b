/**
 * What a delivery round's completion (ExportStore.completeBatches: each lane's UPDATE and range DELETE) costs each
 * thread on SQLite: as one statement list in a transaction on the writer thread (`thread`, the store's way since
 * session 9), or statement by statement on the event loop's connection (`local`, the way before). Each round writes
 * 4 lanes of ROWS rows of ROW_BYTES-byte blobs (a busy lane's compact rows), claims and reads them, and completes
 * them; the two ways alternate in one process, the rest of each round is the same work. CPU by thread in ms a round
 * (/proc, 10 ms ticks: run enough rounds).
 *   node --import tsx bench/export/complete.ts [--rounds 300]   (ROWS=160 ROW_BYTES=2000)
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import type { ExportRule, OutboxEntry } from '../../src/core/export/model.ts';
import { sqliteDialect } from '../../src/store/dialect.ts';
import { completeExportBatch } from '../../src/store/kysely/export-queries.ts';
import type { KyselyStore } from '../../src/store/kysely/kysely-store.ts';
import { openSqliteStore } from '../../src/store/sqlite.ts';
import { mainThreadCpuMs, writerThreadCpuMs } from '../support/thread-cpu.ts';

const { values } = parseArgs({ options: { rounds: { type: 'string', default: '300' } } });
const ROUNDS = Number(values.rounds);
const ROWS = Number(process.env.ROWS ?? 160);
const ROW_BYTES = Number(process.env.ROW_BYTES ?? 2000);
const LANES = [1, 5, 9, 13];

const rule: ExportRule = {
  id: 'b0000000-0000-4000-8000-000000000001',
  tenantId: 't',
  name: 'bench',
  profileId: null,
  kinds: ['telemetry'],
  destination: { type: 'webhook', url: 'http://127.0.0.1:9/', headers: {}, secret: null, batchSize: 100_000, timeoutMs: 1000 },
  enabled: true,
  createdTime: 1,
  lanes: 16,
};

const dir = mkdtempSync(join(tmpdir(), 'fleetgate-complete-'));
const store = (await openSqliteStore(join(dir, 'b.db'), { synchronous: 'normal' })) as KyselyStore;
await store.exports.insertRule(rule);
const blob = Buffer.alloc(ROW_BYTES, 7);

async function round(way: 'thread' | 'local'): Promise<void> {
  const rows: OutboxEntry[] = [];
  for (let r = 0; r < ROWS; r++) for (const partition of LANES) rows.push({ ruleId: rule.id, partition, deviceId: null, kind: 'telemetry', createdTime: 1, payload: '', messages: 6, points: blob });
  // Written on the writer thread, as the group commit writes them (its connection's page cache then holds the pages).
  await store.transaction((tx) => tx.exports.insertOutbox(rows), { offload: true });
  await store.exports.claimLanes('node', Date.now(), 30_000, 16);
  const batches: { ruleId: string; partition: number; seqs: number[] }[] = [];
  for (const partition of LANES) batches.push({ ruleId: rule.id, partition, seqs: (await store.exports.readOutbox(rule.id, partition, 1_000_000)).map((r) => r.seq) });
  if (way === 'thread') await store.exports.completeBatches('node', batches);
  else {
    await store.transaction(async (tx) => {
      for (const b of batches) await completeExportBatch((tx as unknown as { db: Parameters<typeof completeExportBatch>[0] }).db, sqliteDialect, 'node', b.ruleId, b.partition, b.seqs);
    });
  }
}

const results: Record<'thread' | 'local', { main: number[]; writer: number[] }> = { thread: { main: [], writer: [] }, local: { main: [], writer: [] } };
for (let i = 0; i < 10; i++) await round('local'); // warm-up
for (let pass = 0; pass < 3; pass++) {
  for (const way of ['local', 'thread'] as const) {
    const main0 = mainThreadCpuMs();
    const writer0 = await writerThreadCpuMs();
    for (let i = 0; i < ROUNDS; i++) await round(way);
    results[way].main.push((mainThreadCpuMs() - main0) / ROUNDS);
    results[way].writer.push(((await writerThreadCpuMs()) - writer0) / ROUNDS);
  }
}
const list = (xs: number[]) => xs.map((x) => x.toFixed(2)).join(', ');
for (const way of ['local', 'thread'] as const) console.log(`| ${way} | main ${list(results[way].main)} ms a round | writer ${list(results[way].writer)} ms a round |`);
console.log(`(a round: ${LANES.length} lanes x ${ROWS} rows of ${ROW_BYTES} B written, read and completed)`);
await store.close();
rmSync(dir, { recursive: true, force: true });
