/**
 * CoAP load generator (coap-packet over dgram, bounded): provisioning and telemetry rates against fleetgate's CoAP
 * transport, and the same CON request loop against libcoap's coap-server-notls as the floor of protocol cost.
 *
 *   node --import tsx bench/coap/load.ts [--provision 20000] [--telemetry 100000] [--clients 32] [--window 16]
 *     [--phases provision,telemetry,telemetry1,libcoap]
 *
 * The server process gets bin/node-flags.js (as `npm start`) plus BENCH_SERVER_NODE_ARGS (e.g. "--cpu-prof").
 * Each line also gives the kernel's UDP receive-buffer drops during the run (RcvbufErrors in /proc/net/snmp,
 * machine-wide), and the server's rows per commit and CPU time (user + system) per request, which is steadier than
 * the rate on a shared machine.
 *
 * Each client is one UDP socket with `window` CON requests outstanding; a request counts when its 2.01 (or 2.05)
 * arrives; one unanswered for 1 s is sent again. Runs are bounded by request count and a 60 s deadline.
 */
import { spawn } from 'node:child_process';
import { createSocket } from 'node:dgram';
import { once } from 'node:events';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { parseArgs } from 'node:util';
import { generate, parse } from 'coap-packet';
import { NODE_FLAGS } from '../../bin/node-flags.js';

const { values: args } = parseArgs({ options: { provision: { type: 'string', default: '20000' }, telemetry: { type: 'string', default: '100000' }, clients: { type: 'string', default: '32' }, window: { type: 'string', default: '16' }, phases: { type: 'string', default: 'provision,telemetry,telemetry1,libcoap' } } });
const phases = new Set(args.phases.split(','));

/** Datagrams the kernel dropped because a UDP receive buffer was full, machine-wide (Linux; 0 elsewhere). */
function rcvbufErrors(): number {
  try {
    const [names, values] = readFileSync('/proc/net/snmp', 'utf8').split('\n').filter((l) => l.startsWith('Udp:'));
    return Number(values.split(/\s+/)[names.split(/\s+/).indexOf('RcvbufErrors')]) || 0;
  } catch {
    return 0;
  }
}

/** Sends `total` requests built by `make(i)` over `clients` sockets, `window` in flight each; returns requests/s. */
async function run(port: number, total: number, clients: number, window: number, make: (i: number, mid: number, token: Buffer) => Buffer, ok: (code: string) => boolean): Promise<{ rate: number; failed: number; rate99: number; retransmitted: number; dropped: number }> {
  const droppedBefore = rcvbufErrors();
  let next = 0;
  let done = 0;
  let failed = 0;
  let retransmitted = 0;
  let at99 = 0;
  const started = performance.now();
  const deadline = Date.now() + 60_000;
  await Promise.all(
    Array.from({ length: clients }, async (_, c) => {
      const sock = createSocket('udp4');
      await new Promise<void>((r) => sock.bind(0, '127.0.0.1', () => r()));
      let mid = c * 2000;
      const outstanding = new Map<number, { datagram: Buffer; sentAt: number }>();
      await new Promise<void>((resolve) => {
        const fire = () => {
          while (outstanding.size < window && next < total) {
            const i = next++;
            mid = (mid + 1) & 0xffff;
            const datagram = make(i, mid, Buffer.from([c, i >> 16, (i >> 8) & 0xff, i & 0xff]));
            outstanding.set(mid, { datagram, sentAt: performance.now() });
            sock.send(datagram, port, '127.0.0.1');
          }
          if (outstanding.size === 0 && next >= total) resolve();
        };
        sock.on('message', (m) => {
          const p = parse(m);
          if (!outstanding.delete(p.messageId)) return;
          done++;
          if (done === Math.ceil(total * 0.99)) at99 = performance.now();
          if (!ok(p.code)) failed++;
          fire();
        });
        // Retransmit a request unanswered for 1 s (RFC 7252 §4.2, simplified: a fixed timeout) until the deadline.
        const retry = setInterval(() => {
          if (Date.now() > deadline) return resolve();
          const now = performance.now();
          for (const o of outstanding.values()) {
            if (now - o.sentAt < 1000) continue;
            retransmitted++;
            o.sentAt = now;
            sock.send(o.datagram, port, '127.0.0.1');
          }
        }, 100);
        fire();
        void new Promise<void>((r) => sock.once('close', r)).then(() => clearInterval(retry));
      });
      sock.close();
    }),
  );
  const rate99 = at99 > 0 ? Math.round(Math.ceil(total * 0.99) / ((at99 - started) / 1000)) : 0;
  return { rate: Math.round(done / ((performance.now() - started) / 1000)), failed, rate99, retransmitted, dropped: rcvbufErrors() - droppedBefore };
}

const path = (...s: string[]) => s.map((v) => ({ name: 'Uri-Path' as const, value: Buffer.from(v) }));
const clients = Number(args.clients);
const window = Number(args.window);

// The server runs in its own process (bench/coap/fleetgate-server.ts), so generator and server do not share a loop.
const server = spawn(process.execPath, [...NODE_FLAGS, ...(process.env.BENCH_SERVER_NODE_ARGS?.split(' ').filter(Boolean) ?? []), '--import', 'tsx', join(import.meta.dirname, 'fleetgate-server.ts')], { stdio: ['ignore', 'pipe', 'inherit'] });
let stopping = false;
server.on('exit', (code, signal) => {
  if (stopping) return;
  console.error(`fleetgate server exited early (${signal ?? code})`);
  process.exit(1);
});
const serverLines = createInterface({ input: server.stdout! })[Symbol.asyncIterator]();
const nextLine = async () => ((await serverLines.next()).value as string | undefined) ?? '{}';
const ready = JSON.parse(await nextLine()) as { coapPort: number; receiveBufferBytes: number };
interface ServerTotals {
  batches: number;
  rows: number;
  cpuMicros: number;
}
/** The server's group-commit totals (transactions, rows) and CPU time (user + system) so far. */
async function totals(): Promise<ServerTotals> {
  server.kill('SIGUSR2');
  return JSON.parse(await nextLine()) as ServerTotals;
}
const transport = { port: ready.coapPort };
console.log(`server socket receive buffer: ${ready.receiveBufferBytes} bytes`);
const tokens = Array.from({ length: 100 }, (_, d) => `bench-token-${d}`);

const rowsPerCommit = (a: ServerTotals, b: ServerTotals) => (b.batches > a.batches ? ((b.rows - a.rows) / (b.batches - a.batches)).toFixed(1) : '-');

/** One phase: `total` CON POSTs built by `payload(i)` to `path`, counted when `ok`; prints one line. */
async function phase(label: string, total: number, uri: (i: number) => string[], payload: (i: number) => string, unit: string): Promise<void> {
  const before = await totals();
  const r = await run(transport.port, total, clients, window, (i, messageId, token) => generate({ code: 'POST', messageId, token, confirmable: true, options: path(...uri(i)), payload: Buffer.from(payload(i)) }), (c) => c === '2.01');
  const after = await totals();
  console.log(`${label}: ${total} ${unit}, ${r.rate}/s${unit === 'requests' ? ' acknowledged after commit' : ''} (first 99%: ${r.rate99}/s), ${r.failed} not 2.01, ${r.retransmitted} retransmitted, ${r.dropped} dropped by the kernel; server: ${rowsPerCommit(before, after)} rows per commit, ${((after.cpuMicros - before.cpuMicros) / total).toFixed(1)} us CPU per request`);
}

const provisionN = Number(args.provision);
const telemetryN = Number(args.telemetry);
const telemetryPath = (i: number) => ['api', 'v1', tokens[i % tokens.length], 'telemetry'];
if (phases.has('provision')) {
  await phase('fleetgate CoAP provisioning', provisionN, () => ['api', 'v1', 'provision'], (i) => JSON.stringify({ provisionDeviceKey: 'bench-key', provisionDeviceSecret: 'bench-secret', deviceName: `prov-${i}` }), 'devices');
}
if (phases.has('telemetry')) {
  await phase('fleetgate CoAP telemetry', telemetryN, telemetryPath, (i) => `{"ts":${1_600_000_000_000 + i},"values":{"t":${i % 100},"h":${i % 7}}}`, 'requests');
}
if (phases.has('telemetry1')) {
  await phase('fleetgate CoAP telemetry, one value per request ({"temperature":N})', telemetryN, telemetryPath, (i) => `{"temperature":${i % 100}}`, 'requests');
}

stopping = true;
server.kill('SIGTERM');
await once(server, 'exit');

if (phases.has('libcoap') && existsSync('/usr/bin/coap-server-notls')) {
  const peerPort = 20000 + Math.floor(Math.random() * 20000);
  const peer = spawn('/usr/bin/coap-server-notls', ['-A', '127.0.0.1', '-p', String(peerPort)], { stdio: 'ignore' });
  await new Promise((r) => setTimeout(r, 500));
  const floor = await run(peerPort, telemetryN, clients, window, (_i, messageId, token) => generate({ code: 'GET', messageId, token, confirmable: true, options: path('time') }), (c) => c.startsWith('2.'));
  console.log(`libcoap coap-server-notls GET /time: ${telemetryN} requests, ${floor.rate}/s (first 99%: ${floor.rate99}/s; protocol floor, no storage)`);
  peer.kill();
} else if (phases.has('libcoap')) {
  console.log('libcoap coap-server-notls not installed: no peer comparison');
}
