/**
 * Where an idle-session server's RSS sits (issue 17 item 5): probes one server before any session (E), with half the
 * sessions (A) and with all (B), each a few times, and prints RSS (anonymous / file-backed), the V8 heap figures and
 * the anonymous RSS by kind of mapping from /proc/<pid>/smaps: `brk` (glibc's main malloc arena: native socket state,
 * SQLite's page cache, Node's read buffers), `p256k` (256 KB mappings: V8 heap pages), the rest. With --trim, RSS
 * again after glibc's malloc_trim(0) (through gdb) at A and B: the difference is malloc memory that is free but still
 * resident. --provision connects provision-only sessions (no credential lookup) instead of devices.
 *   node --import tsx bench/mqtt/idle-rss-parts.ts [--target fleetgate|floor] [--idle 19000] [--probes 2] [--trim] [--provision]
 */
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { NODE_FLAGS } from '../../bin/node-flags.js';
import { mallocTrim, startProbedNode, stopServer } from './idle-measure.ts';
import { idleSessions } from './load.ts';

const { values } = parseArgs({
  options: {
    target: { type: 'string', default: 'fleetgate' },
    idle: { type: 'string', default: '19000' },
    probes: { type: 'string', default: '2' },
    trim: { type: 'boolean', default: false },
    provision: { type: 'boolean', default: false },
  },
});
const count = Number(values.idle);
const script = values.target === 'floor' ? 'bench/mqtt/floor-server.ts' : 'bench/mqtt/fleetgate-server.ts';
const server = await startProbedNode(values.target!, [...NODE_FLAGS, '--import', 'tsx', script], { BENCH_DEVICES: String(count), FLOOR_MODE: 'reading', BENCH_FROM_DIST: '1' });
const pid = server.child.pid!;
const mb = (bytes: number) => (bytes / 1048576).toFixed(1);

/** RSS, anonymous and file-backed, MB (/proc/<pid>/status). */
function status(): { rss: number; anon: number; file: number } {
  const text = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = (key: string) => Number(new RegExp(`${key}:\\s+(\\d+)`).exec(text)![1]) / 1024;
  return { rss: kb('VmRSS'), anon: kb('RssAnon'), file: kb('RssFile') };
}

/** Resident MB by kind of mapping. */
function parts(): string {
  const out: Record<string, number> = {};
  let kind = '';
  for (const line of readFileSync(`/proc/${pid}/smaps`, 'utf8').split('\n')) {
    const head = /^([0-9a-f]+)-([0-9a-f]+) \S+ \S+ \S+ \d+\s*(.*)$/.exec(line);
    if (head) {
      const size = (parseInt(head[2], 16) - parseInt(head[1], 16)) / 1048576;
      const name = head[3];
      kind = name === '[heap]' ? 'brk' : name.startsWith('/') ? 'file' : name ? 'other' : size === 0.25 ? 'p256k' : 'anon-other';
      continue;
    }
    const rss = /^Rss:\s+(\d+) kB/.exec(line);
    if (rss) out[kind] = (out[kind] ?? 0) + Number(rss[1]) / 1024;
  }
  return Object.entries(out)
    .sort()
    .map(([k, v]) => `${k} ${v.toFixed(1)}`)
    .join(', ');
}

async function show(label: string): Promise<void> {
  for (let i = 0; i < Number(values.probes); i++) {
    const m = await server.probe!();
    const s = status();
    console.log(`${label}: RSS ${s.rss.toFixed(1)} (anon ${s.anon.toFixed(1)}, file ${s.file.toFixed(1)}) | heap total ${mb(m.heapTotal)}, used ${mb(m.heapUsed)}, new space ${mb(m.newSpace)}, external ${mb(m.external)} | ${parts()}`);
    await new Promise((r) => setTimeout(r, 2000));
  }
  if (values.trim) {
    mallocTrim(pid);
    await new Promise((r) => setTimeout(r, 200));
    console.log(`${label} after malloc_trim: RSS ${status().rss.toFixed(1)} | ${parts()}`);
  }
}

const tokens = Array.from({ length: count }, (_, i) => (values.provision ? 'provision' : `bench-${i}`));
const half = Math.floor(count / 2);
try {
  await show('E');
  const first = await idleSessions(server.port, tokens.slice(0, half));
  await show('A');
  const second = await idleSessions(server.port, tokens.slice(half));
  await show('B');
  await Promise.all([first.close(), second.close()]);
} finally {
  await stopServer(server);
}
process.exit(0);
