/**
 * Server memory per idle MQTT session, measured the same way for every server: the server's RSS (from /proc) and,
 * for Node servers, its heap, each after V8's most thorough collection and a settle pause (bench/support/memory-probe.ts),
 * before and after `count` sessions have connected (CONNECT with keep-alive 0, CONNACK) and then sat idle for 66 s;
 * RSS is read again after glibc's malloc_trim(0) (see IdleOptions). bench/RESULTS.md, "Idle sessions, session 6",
 * explains each step.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import { createInterface, type Interface } from 'node:readline';
import type { MemoryReport } from '../support/memory-probe.ts';
import { idleSessions } from './load.ts';

/** A server child process that prints its port on its first stdout line and, if a Node server, answers the probe. */
export interface ProbedServer {
  name: string;
  port: number;
  child: ChildProcess;
  /** Node servers: asks the probe for settled figures. Undefined for native servers (mosquitto). */
  probe?: (command?: 'measure' | 'measure-plain') => Promise<MemoryReport>;
}

/** Resident set size of a process, bytes, from /proc (Linux). */
export const rssBytes = (pid: number): number => Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))![1]) * 1024;

/** Proportional set size of a process, bytes, from /proc/<pid>/smaps_rollup (Linux): RSS with shared pages divided among their sharers. */
export const pssBytes = (pid: number): number => Number(/^Pss:\s+(\d+)/m.exec(readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8'))![1]) * 1024;

/** Spawns a Node server that prints `{"mqttPort":N}` first and answers `measure` on stdin. */
export async function startProbedNode(name: string, args: string[], env: NodeJS.ProcessEnv = {}): Promise<ProbedServer> {
  const child = spawn(process.execPath, args, { env: { ...process.env, ...env, BENCH_MEMORY_PROBE: '1' }, stdio: ['pipe', 'pipe', 'inherit'] });
  const lines = createInterface({ input: child.stdout! });
  const next = lineQueue(lines);
  const port = JSON.parse(await next()).mqttPort as number;
  const probe = async (command: 'measure' | 'measure-plain' = 'measure') => {
    child.stdin!.write(`${command}\n`);
    for (;;) {
      const line = await next();
      if (line.startsWith('{"memory"')) return JSON.parse(line).memory as MemoryReport;
    }
  };
  return { name, port, child, probe };
}

function lineQueue(lines: Interface): () => Promise<string> {
  const buffered: string[] = [];
  const waiting: ((line: string) => void)[] = [];
  lines.on('line', (line) => {
    const waiter = waiting.shift();
    if (waiter) waiter(line);
    else buffered.push(line);
  });
  return () => (buffered.length > 0 ? Promise.resolve(buffered.shift()!) : new Promise((resolve) => waiting.push(resolve)));
}

/** Per-session figures, bytes. The heap figures are undefined for a native server. */
export interface IdleFigures {
  name: string;
  /** How the server was read (IdleOptions.view). */
  view: IdleView;
  /** Sessions measured: the second half (see measureIdle). */
  sessions: number;
  rssBefore: number;
  rssAfter: number;
  /** Settled RSS growth per session over the second half (the marginal cost), after malloc_trim when trimming. */
  perSession: number;
  /** Settled RSS growth per session over all sessions, from the settled server before the first one connected. */
  wholePerSession: number;
  /** The same second half, RSS read before malloc_trim: as the OS sees it, with the allocator's free pages. */
  untrimmedPerSession?: number;
  /** Growth of V8's used heap (live objects after V8's most thorough collection), per session. */
  heapPerSession?: number;
  /** Growth of RSS outside the V8 heap's committed pages (RSS − heapTotal): native socket state, malloc, Buffers. */
  nativePerSession?: number;
  /** The earlier method: RSS 2 s after the last CONNACK, no GC, no settling, per session. */
  quickPerSession: number;
  /** The same second half read as PSS (/proc/<pid>/smaps_rollup) at the same moments as perSession. */
  pssPerSession: number;
  pssBefore: number;
  pssAfter: number;
}

/**
 * What is done to the server before each reading:
 * - `operator`: nothing. No GC, no probe, no malloc_trim: RSS and PSS as `ps`/`top` show them after the quiet period
 *   (read when two readings 2 s apart agree within 0.5 MB). What an operator sees.
 * - `plain`: ordinary full GCs only (the probe's `measure-plain`), no V8 thorough collection, no malloc_trim.
 * - `probe`: session 6's probe: V8's most thorough collection (`v8.queryObjects`, which leaves ~50 MB of freed malloc
 *   memory resident) + full GCs, then RSS before and after glibc malloc_trim(0) through gdb (a reference, not what an
 *   operator sees). The default; the heap and native columns come from it.
 */
export type IdleView = 'operator' | 'plain' | 'probe';

/** How measureIdle reads a server. */
export interface IdleOptions {
  /**
   * Quiet time after the last CONNACK of each half before the first probe, ms. Servers drop per-connect state on timers
   * (fleetgate: credentials cache entries after 60 s, swept every 5 s; aedes likewise): a probe inside that window
   * counts state an idle session no longer holds, and whether it falls inside it for the first half depended on how
   * long the probes took. Default 66 s.
   */
  quietMs?: number;
  /**
   * Gives the allocator's free pages back before reading RSS (glibc `malloc_trim(0)`, called through gdb, the same for
   * every server, mosquitto included). A connect storm leaves 5-40 MB of freed malloc memory resident in the main arena
   * (Node: the 64 KB read buffers shrunk to the bytes read and the storm's transient allocations fragment it), a
   * different amount each run; without the trim that swings RSS per session by ±1-2 KB. The RSS before the trim is
   * reported too. Default: on when gdb is installed.
   */
  trim?: boolean;
  /** See IdleView; default `probe`. Only `probe` trims (when `trim` allows). */
  view?: IdleView;
}

/** Whether gdb can be run (the trim needs it). */
export function gdbAvailable(): boolean {
  try {
    execFileSync('gdb', ['--version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

/** Calls glibc's malloc_trim(0) inside `pid` (gdb attaches, calls it, detaches): freed malloc memory goes back to the OS. */
export function mallocTrim(pid: number): void {
  execFileSync('gdb', ['-p', String(pid), '-batch', '-nx', '-ex', 'call (int)malloc_trim(0)'], { stdio: 'ignore', timeout: 60_000 });
}

const pause = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * Measures `server` with `count` idle sessions (tokens bench-0..count-1): settled before any session (E), after the
 * first half connected (A), after the second half connected too (B). Per session: (B − E) / count over all of them, and
 * the marginal (B − A) / half, which leaves out start-up transients (code compiled and pools grown on the first
 * connections). The first half's sessions stay open. Closes the sessions, not the server.
 */
export async function measureIdle(server: ProbedServer, count: number, options: IdleOptions = {}): Promise<IdleFigures> {
  const quietMs = options.quietMs ?? 66_000;
  const view = options.view ?? 'probe';
  const trim = view === 'probe' && (options.trim ?? gdbAvailable());
  const probe = view === 'operator' ? undefined : server.probe;
  const command = view === 'plain' ? 'measure-plain' : 'measure';
  const pid = server.child.pid!;
  /**
   * Probes every 2 s until V8 has given back what it no longer uses (its memory reducer shrinks the young generation and
   * releases free old-generation pages some seconds after allocation stops; with --max-semi-space-size=64 a grown
   * young generation holds up to 128 MB) and two answers in a row agree (RSS within 0.5 MB, heap used within 0.5%); at
   * most ~45 s (then the last answer is taken as it is). Then, when trimming, RSS again after malloc_trim.
   */
  const settle = async (): Promise<{ rss: number; pss: number; untrimmed: number; memory?: MemoryReport }> => {
    const finish = async (untrimmed: number, memory?: MemoryReport) => {
      if (!trim) return { rss: untrimmed, pss: pssBytes(pid), untrimmed, memory };
      mallocTrim(pid);
      await pause(200);
      return { rss: rssBytes(pid), pss: pssBytes(pid), untrimmed, memory };
    };
    if (!probe) {
      let last = rssBytes(pid);
      for (let i = 0; i < 15; i++) {
        await pause(2000);
        const now = rssBytes(pid);
        if (Math.abs(now - last) <= 524288) return finish(now);
        last = now;
      }
      return finish(last);
    }
    let last: { rss: number; memory: MemoryReport } | undefined;
    for (let i = 0; i < 15; i++) {
      const memory = await probe(command);
      const now = { rss: rssBytes(pid), memory };
      const freeHeap = now.memory.heapTotal - now.memory.heapUsed; // pages V8 holds but no object uses
      // Ordinary full GCs (`plain`) need not shrink the young generation: there only the two answers must agree.
      const released = view === 'plain' || now.memory.newSpace <= 4 * 1048576 && freeHeap <= Math.max(8 * 1048576, 0.1 * now.memory.heapUsed);
      if (last && released && Math.abs(last.rss - now.rss) <= 524288 && Math.abs(last.memory.heapUsed - now.memory.heapUsed) <= 0.005 * now.memory.heapUsed) return finish(now.rss, now.memory);
      last = now;
      await pause(2000);
    }
    return finish(last!.rss, last!.memory);
  };
  const tokens = Array.from({ length: count }, (_, i) => `bench-${i}`);
  const half = Math.floor(count / 2);
  const empty = await settle();
  const first = await idleSessions(server.port, tokens.slice(0, half));
  await pause(quietMs);
  const before = await settle();
  const second = await idleSessions(server.port, tokens.slice(half));
  await pause(2000);
  const quick = rssBytes(pid);
  await pause(Math.max(0, quietMs - 2000));
  const after = await settle();
  const stillOpen = first.open() + second.open();
  await Promise.all([first.close(), second.close()]);
  // Every session must still be connected when B is read, or the figure would divide by sessions the server dropped.
  if (stillOpen !== first.count + second.count) throw new Error(`${server.name}: only ${stillOpen} of ${first.count + second.count} idle sessions were still open at the last probe`);
  const n = second.count;
  const figures: IdleFigures = { name: server.name, view, pssPerSession: (after.pss - before.pss) / n, pssBefore: before.pss, pssAfter: after.pss, sessions: n, rssBefore: before.rss, rssAfter: after.rss, perSession: (after.rss - before.rss) / n, wholePerSession: (after.rss - empty.rss) / (n + first.count), quickPerSession: (quick - before.untrimmed) / n };
  if (trim) figures.untrimmedPerSession = (after.untrimmed - before.untrimmed) / n;
  if (before.memory && after.memory) {
    figures.heapPerSession = (after.memory.heapUsed - before.memory.heapUsed) / n;
    figures.nativePerSession = (after.rss - after.memory.heapTotal - (before.rss - before.memory.heapTotal)) / n;
  }
  return figures;
}

/** Stops a server child. */
export async function stopServer(server: ProbedServer): Promise<void> {
  if (server.child.exitCode !== null) return;
  server.child.kill('SIGTERM');
  const timer = setTimeout(() => server.child.kill('SIGKILL'), 10_000);
  await once(server.child, 'exit');
  clearTimeout(timer);
}

/** One markdown row. */
export function idleRow(f: IdleFigures): string {
  const kb = (b: number | undefined) => (b === undefined ? '—' : (b / 1024).toFixed(2));
  return `| ${f.name} | ${kb(f.wholePerSession)} | **${kb(f.perSession)}** | ${kb(f.untrimmedPerSession)} | ${kb(f.heapPerSession)} | ${kb(f.nativePerSession)} | ${kb(f.quickPerSession)} | ${Math.round(f.rssBefore / 1048576)} → ${Math.round(f.rssAfter / 1048576)} MB | ${kb(f.pssPerSession)} |`;
}

export const IDLE_HEADER =
  '| server | RSS per session, all sessions from empty, KB | RSS per session, second half, KB | the same before malloc_trim, KB | V8 heap used per session, KB | native (RSS − heap committed) per session, KB | RSS 2 s after, no GC, KB | settled RSS A → B | PSS per session, second half, KB |\n|---|---|---|---|---|---|---|---|---|';
