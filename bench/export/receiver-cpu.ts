/**
 * The bench receiver's own CPU (bench/export/receiver.ts) per exported telemetry message, parsing and scanning bodies:
 * POSTs shaped as the server sends them during bench/export/run.ts (rows of 25 entries per device, ~1,500 entries a
 * POST, ~100 KB), over a keep-alive connection, modes alternated.
 *   node --import tsx bench/export/receiver-cpu.ts [--posts 300] [--entries 1500]
 */
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import http from 'node:http';
import { createInterface } from 'node:readline';
import { parseArgs } from 'node:util';

const { values } = parseArgs({ options: { posts: { type: 'string', default: '300' }, entries: { type: 'string', default: '1500' } } });
const POSTS = Number(values.posts);
const ENTRIES_PER_MESSAGE = 25;
const MESSAGES = Math.max(1, Math.round(Number(values.entries) / ENTRIES_PER_MESSAGE));
let ts = 1_700_000_000_000;
const messages: string[] = [];
for (let d = 0; d < MESSAGES; d++) {
  const entries: string[] = [];
  for (let i = 0; i < ENTRIES_PER_MESSAGE; i++) entries.push(`{"ts":${++ts},"values":{"temperature":21.5,"humidity":40}}`);
  const deviceId = `0d1e2f30-4a5b-4c6d-8e9f-${String(d % 100).padStart(12, '0')}`;
  messages.push(`{"id":"${1000 + d}.${d % 6}","rule":"bench","kind":"telemetry","deviceId":"${deviceId}","ts":${ts},"data":{"deviceName":"bench-device-${d % 100}","profileId":"7f000000-0000-4000-8000-000000000001","telemetry":[${entries.join(',')}]}}`);
}
const body = Buffer.from(`[${messages.join(',')}]`);
const entries = MESSAGES * ENTRIES_PER_MESSAGE;

const cpuOf = (pid: number) => {
  const f = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
  return (Number(f[11]) + Number(f[12])) / 100;
};

async function measure(mode: 'parse' | 'scan'): Promise<number> {
  const c = spawn(process.execPath, ['--import', 'tsx', 'bench/export/receiver.ts'], { env: { ...process.env, RECEIVER_MODE: mode }, stdio: ['ignore', 'pipe', 'inherit'] });
  const [line] = (await once(createInterface({ input: c.stdout! }), 'line')) as [string];
  const { port } = JSON.parse(line) as { port: number };
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  const post = () =>
    new Promise<void>((resolve, reject) => {
      const req = http.request(`http://127.0.0.1:${port}/hook`, { method: 'POST', agent, headers: { 'content-type': 'application/json', 'content-length': body.length } }, (res) => {
        res.resume();
        res.on('end', resolve);
      });
      req.on('error', reject);
      req.end(body);
    });
  for (let i = 0; i < 20; i++) await post(); // warm-up (and the scan's checked bodies)
  const before = cpuOf(c.pid!);
  for (let i = 0; i < POSTS; i++) await post();
  const cpu = cpuOf(c.pid!) - before;
  const stats = (await (await fetch(`http://127.0.0.1:${port}/stats`)).json()) as { points: number };
  if (stats.points !== (POSTS + 20) * entries * 2) throw new Error(`${mode}: counted ${stats.points} points, sent ${(POSTS + 20) * entries * 2}`);
  agent.destroy();
  c.kill();
  await once(c, 'exit');
  return (cpu * 1e6) / (POSTS * entries);
}

const results: Record<string, number[]> = { parse: [], scan: [] };
for (let i = 0; i < 3; i++) for (const mode of ['parse', 'scan'] as const) results[mode].push(await measure(mode));
console.log(`| body | ${MESSAGES} messages, ${entries} entries (MQTT messages), ${(body.length / 1024).toFixed(0)} KB; ${POSTS} POSTs a run |`);
for (const mode of ['parse', 'scan'] as const) console.log(`| receiver CPU per exported MQTT message, ${mode} | ${results[mode].map((x) => x.toFixed(3)).join(', ')} µs |`);
