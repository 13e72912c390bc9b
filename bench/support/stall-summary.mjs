/**
 * Sums up stall traces (bench/support/stall-trace.mjs) over a server's load: from the first connection it accepted
 * to the last second whose CPU was at least half a core (seeding and shutdown left out). For each file: event-loop gaps of 10 ms
 * or more, those during which the main thread ran nearly the whole time (>= 70% of the gap, from the scheduler's
 * statistics, else the process's CPU: the event loop was busy, not waiting for a core) apart, by length; and GC pauses of 5 ms or more by kind (1 scavenge, 4 mark-compact,
 * 8 incremental marking, 16 weak callbacks), and mark-compacts by V8's callback flags (32 and more: external memory).
 *   node bench/support/stall-summary.mjs /tmp/st-*.txt
 */
import { readFileSync } from 'node:fs';

for (const file of process.argv.slice(2)) {
  // Lines are "<ms> <event> ..." or, with STALL_TRACE_HRTIME=1, "<µs> <ms> <event> ...".
  const lines = readFileSync(file, 'utf8').split('\n').filter(Boolean).map((l) => {
    const f = l.split(' ');
    return /^\d+$/.test(f[0]) && /^[\d.]+$/.test(f[1]) ? f.slice(1) : f;
  });
  const busySeconds = lines.filter((f) => f[1] === 'second' && Number(f[3]) >= 500).map((f) => Number(f[0]));
  if (busySeconds.length === 0) {
    console.log(`${file}: no busy second`);
    continue;
  }
  const first = lines.find((f) => f[1] === 'first' && f[2] === 'connection');
  const from = first ? Number(first[0]) : busySeconds[0] - 1000;
  const to = busySeconds[busySeconds.length - 1];
  const inLoad = lines.filter((f) => Number(f[0]) >= from && Number(f[0]) <= to);
  // "gap <ms> ms cpu <ms> ms [main ran <ms> ms waited <ms> ms]"
  const gaps = inLoad.filter((f) => f[1] === 'gap').map((f) => ({ ms: Number(f[2]), cpu: Number(f[5]), ran: f[8] === 'ran' ? Number(f[9]) : undefined }));
  const busy = gaps.filter((g) => (g.ran ?? g.cpu) >= 0.7 * g.ms);
  const histogram = (list) => {
    const bins = [[10, 15], [15, 20], [20, 30], [30, 50], [50, Infinity]];
    return bins.map(([a, b]) => `${a}-${b === Infinity ? '' : b} ms: ${list.filter((g) => g.ms >= a && g.ms < b).length}`).join(', ');
  };
  const sum = (list) => list.reduce((s, g) => s + g.ms, 0).toFixed(0);
  const gc = new Map();
  const marks = inLoad.filter((f) => f[1] === 'gc' && f[2] === '4');
  for (const f of inLoad.filter((f) => f[1] === 'gc' && Number(f[3]) >= 5)) {
    const entry = gc.get(f[2]) ?? { n: 0, ms: 0 };
    entry.n++;
    entry.ms += Number(f[3]);
    gc.set(f[2], entry);
  }
  console.log(`${file}: load ${((to - from) / 1000).toFixed(0)} s`);
  console.log(`  gaps >= 10 ms, event loop busy: ${busy.length} (${sum(busy)} ms; ${histogram(busy)})`);
  console.log(`  gaps >= 10 ms, all: ${gaps.length} (${sum(gaps)} ms; ${histogram(gaps)})`);
  console.log(`  GC pauses >= 5 ms: ${[...gc].map(([kind, e]) => `kind ${kind}: ${e.n} (${e.ms.toFixed(0)} ms)`).join(', ') || 'none'}`);
  const flags = new Map();
  for (const f of marks) flags.set(f[6] ?? '', (flags.get(f[6] ?? '') ?? 0) + 1);
  console.log(`  mark-compacts: ${marks.length} (${marks.reduce((s, f) => s + Number(f[3]), 0).toFixed(0)} ms; by V8 flags ${[...flags].map(([k, n]) => `${k || '-'}: ${n}`).join(', ')})`);
}
