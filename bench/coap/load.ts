/**
 * CoAP load generator (coap-packet over dgram, bounded): provisioning and telemetry rates against fleetgate's CoAP
 * transport, and the same CON request loop against libcoap's coap-server-notls as the floor of protocol cost.
 *
 *   node --import tsx bench/coap/load.ts [--provision 20000] [--telemetry 100000] [--clients 32] [--window 16]
 *
 * Each client is one UDP socket with `window` CON requests outstanding; a request counts when its 2.01 (or 2.05)
 * arrives. Runs are bounded by request count and a 60 s deadline.
 */
import { spawn } from 'node:child_process';
import { createSocket } from 'node:dgram';
import { once } from 'node:events';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { parseArgs } from 'node:util';
import { generate, parse } from 'coap-packet';

const { values: args } = parseArgs({ options: { provision: { type: 'string', default: '20000' }, telemetry: { type: 'string', default: '100000' }, clients: { type: 'string', default: '32' }, window: { type: 'string', default: '16' } } });

/** Sends `total` requests built by `make(i)` over `clients` sockets, `window` in flight each; returns requests/s. */
async function run(port: number, total: number, clients: number, window: number, make: (i: number, mid: number, token: Buffer) => Buffer, ok: (code: string) => boolean): Promise<{ rate: number; failed: number; rate99: number; retransmitted: number }> {
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
      const outstanding = new Map<number, Buffer>();
      await new Promise<void>((resolve) => {
        const fire = () => {
          while (outstanding.size < window && next < total) {
            const i = next++;
            mid = (mid + 1) & 0xffff;
            const datagram = make(i, mid, Buffer.from([c, i >> 16, (i >> 8) & 0xff, i & 0xff]));
            outstanding.set(mid, datagram);
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
        // Retransmit what is lost (RFC 7252 §4.2, simplified: fixed 1 s) until the deadline.
        const retry = setInterval(() => {
          if (Date.now() > deadline) return resolve();
          for (const d of outstanding.values()) {
            retransmitted++;
            sock.send(d, port, '127.0.0.1');
          }
        }, 1000);
        fire();
        void new Promise<void>((r) => sock.once('close', r)).then(() => clearInterval(retry));
      });
      sock.close();
    }),
  );
  const rate99 = at99 > 0 ? Math.round(Math.ceil(total * 0.99) / ((at99 - started) / 1000)) : 0;
  return { rate: Math.round(done / ((performance.now() - started) / 1000)), failed, rate99, retransmitted };
}

const path = (...s: string[]) => s.map((v) => ({ name: 'Uri-Path' as const, value: Buffer.from(v) }));
const clients = Number(args.clients);
const window = Number(args.window);

// The server runs in its own process (bench/coap/fleetgate-server.ts), so generator and server do not share a loop.
const server = spawn(process.execPath, [...(process.env.BENCH_SERVER_NODE_ARGS?.split(' ').filter(Boolean) ?? []), '--import', 'tsx', join(import.meta.dirname, 'fleetgate-server.ts')], { stdio: ['ignore', 'pipe', 'inherit'] });
const [line] = (await once(createInterface({ input: server.stdout! }), 'line')) as [string];
const transport = { port: (JSON.parse(line) as { coapPort: number }).coapPort };
const tokens = Array.from({ length: 100 }, (_, d) => `bench-token-${d}`);

const provisionN = Number(args.provision);
const prov = await run(transport.port, provisionN, clients, window, (i, messageId, token) =>
  generate({ code: 'POST', messageId, token, confirmable: true, options: path('api', 'v1', 'provision'), payload: Buffer.from(JSON.stringify({ provisionDeviceKey: 'bench-key', provisionDeviceSecret: 'bench-secret', deviceName: `prov-${i}` })) }), (c) => c === '2.01');
console.log(`fleetgate CoAP provisioning: ${provisionN} devices, ${prov.rate}/s (first 99%: ${prov.rate99}/s), ${prov.failed} not 2.01, ${prov.retransmitted} retransmitted`);

const telemetryN = Number(args.telemetry);
const tel = await run(transport.port, telemetryN, clients, window, (i, messageId, token) =>
  generate({ code: 'POST', messageId, token, confirmable: true, options: path('api', 'v1', tokens[i % tokens.length], 'telemetry'), payload: Buffer.from(`{"ts":${1_600_000_000_000 + i},"values":{"t":${i % 100},"h":${i % 7}}}`) }), (c) => c === '2.01');
console.log(`fleetgate CoAP telemetry: ${telemetryN} requests, ${tel.rate}/s acknowledged after commit (first 99%: ${tel.rate99}/s), ${tel.failed} not 2.01, ${tel.retransmitted} retransmitted`);
const tel1 = await run(transport.port, telemetryN, clients, window, (i, messageId, token) =>
  generate({ code: 'POST', messageId, token, confirmable: true, options: path('api', 'v1', tokens[i % tokens.length], 'telemetry'), payload: Buffer.from(`{"temperature":${i % 100}}`) }), (c) => c === '2.01');
console.log(`fleetgate CoAP telemetry, one value per request ({"temperature":N}): ${telemetryN} requests, ${tel1.rate}/s acknowledged after commit (first 99%: ${tel1.rate99}/s), ${tel1.failed} not 2.01, ${tel1.retransmitted} retransmitted`);

server.kill('SIGTERM');
await once(server, 'exit');

if (existsSync('/usr/bin/coap-server-notls')) {
  const peerPort = 20000 + Math.floor(Math.random() * 20000);
  const peer = spawn('/usr/bin/coap-server-notls', ['-A', '127.0.0.1', '-p', String(peerPort)], { stdio: 'ignore' });
  await new Promise((r) => setTimeout(r, 500));
  const floor = await run(peerPort, telemetryN, clients, window, (_i, messageId, token) => generate({ code: 'GET', messageId, token, confirmable: true, options: path('time') }), (c) => c.startsWith('2.'));
  console.log(`libcoap coap-server-notls GET /time: ${telemetryN} requests, ${floor.rate}/s (first 99%: ${floor.rate99}/s; protocol floor, no storage)`);
  peer.kill();
} else {
  console.log('libcoap coap-server-notls not installed: no peer comparison');
}
