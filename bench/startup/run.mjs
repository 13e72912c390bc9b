#!/usr/bin/env node
/**
 * Start-up benchmark: how long `fleetgate start` takes to a healthy /healthz, the CPU it spent getting there, and the
 * idle RSS a few seconds later. Each round starts a fresh server on a fresh SQLite file (loopback, random ports).
 * Usage: node bench/startup/run.mjs [--rounds 5] [--idle-ms 3000] [-- command args...]
 * Default command: node <NODE_FLAGS> bin/fleetgate.js start (what `npm start` runs). `fleetgate --help` is measured
 * with hyperfine (see bench/RESULTS.md).
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { once } from 'node:events';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { NODE_FLAGS } from '../../bin/node-flags.js';

const root = join(import.meta.dirname, '..', '..');
const { values, positionals } = parseArgs({
  options: { rounds: { type: 'string', default: '5' }, 'idle-ms': { type: 'string', default: '3000' } },
  allowPositionals: true,
});
const command = positionals.length > 0 ? positionals : [process.execPath, ...NODE_FLAGS, join(root, 'bin', 'fleetgate.js'), 'start'];
const TICKS = 100; // USER_HZ on Linux

async function freePort() {
  const s = createServer().listen(0, '127.0.0.1');
  await once(s, 'listening');
  const { port } = s.address();
  await new Promise((r) => s.close(r));
  return port;
}

/** utime + stime of a process in ms, and its RSS in KB, from /proc. */
function procStats(pid) {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const cpuMs = ((Number(fields[11]) + Number(fields[12])) * 1000) / TICKS;
  const rss = /VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return { cpuMs, rssKb: rss ? Number(rss[1]) : 0 };
}

async function round() {
  const dir = mkdtempSync(join(tmpdir(), 'fleetgate-bench-startup-'));
  const http = await freePort();
  const env = {
    ...process.env,
    FLEETGATE_HOST: '127.0.0.1',
    FLEETGATE_HTTP_PORT: String(http),
    FLEETGATE_MQTT_PORT: String(await freePort()),
    FLEETGATE_COAP_PORT: String(await freePort()),
    FLEETGATE_DATABASE: join(dir, 'fleetgate.db'),
    FLEETGATE_ADMIN_PASSWORD: 'bench-startup-pw',
  };
  const started = performance.now();
  const child = spawn(command[0], command.slice(1), { env, stdio: ['ignore', 'ignore', 'inherit'] });
  let healthyMs = 0;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`server exited with ${child.exitCode}`);
    try {
      if ((await fetch(`http://127.0.0.1:${http}/healthz`)).status === 200) {
        healthyMs = performance.now() - started;
        break;
      }
    } catch {
      /* not listening yet */
    }
    if (performance.now() - started > 60_000) throw new Error('not healthy within 60 s');
    await new Promise((r) => setTimeout(r, 5));
  }
  const atHealthy = procStats(child.pid);
  await new Promise((r) => setTimeout(r, Number(values['idle-ms'])));
  const idle = procStats(child.pid);
  child.kill('SIGTERM');
  await once(child, 'exit');
  rmSync(dir, { recursive: true, force: true });
  return { healthyMs, cpuMs: atHealthy.cpuMs, rssKb: idle.rssKb };
}

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const rounds = [];
for (let i = 0; i < Number(values.rounds); i++) {
  const r = await round();
  rounds.push(r);
  console.log(`round ${i + 1}: healthy after ${r.healthyMs.toFixed(0)} ms, ${r.cpuMs.toFixed(0)} ms CPU to healthy, idle RSS ${(r.rssKb / 1024).toFixed(1)} MB`);
}
console.log(`command: ${command.map((a) => a.replace(root + '/', '')).join(' ')}`);
console.log(`median: healthy after ${median(rounds.map((r) => r.healthyMs)).toFixed(0)} ms, CPU to healthy ${median(rounds.map((r) => r.cpuMs)).toFixed(0)} ms, idle RSS ${(median(rounds.map((r) => r.rssKb)) / 1024).toFixed(1)} MB`);
