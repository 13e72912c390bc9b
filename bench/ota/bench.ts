/**
 * OTA download throughput and memory. Starts fleetgate (bin/fleetgate.js start, SQLite, the node flags of `npm start`)
 * and a bare node:http server (bare-server.mjs) serving the same file, then for 1 and for N concurrent devices each
 * device fetches the package chunk after chunk (64 KiB) for a fixed time: over HTTP from both servers, over MQTT
 * (MQTT.js, `v2/fw/request/{id}/chunk/{n}`) from fleetgate. Then the server's RSS while one device downloads a large
 * package (default 1 GiB) whole over HTTP.
 *
 *   node --import tsx bench/ota/bench.ts [--seconds 5] [--devices 200] [--package-mb 32] [--big-mb 1024]
 */
import { createHash, randomBytes } from 'node:crypto';
import { Agent, get } from 'node:http';
import { createWriteStream, mkdtempSync, openAsBlob, readFileSync, rmSync } from 'node:fs';
import { once } from 'node:events';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import mqtt, { type MqttClient } from 'mqtt';
import { freePort, startProcess, stopProcess, waitForHttp } from '../support/processes.ts';

const { values } = parseArgs({ options: { seconds: { type: 'string', default: '5' }, devices: { type: 'string', default: '200' }, 'package-mb': { type: 'string', default: '32' }, 'big-mb': { type: 'string', default: '1024' } } });
// Each of 1 and N devices is measured twice, alternating, so a burst of other work on the shared machine shows.
const SECONDS = Number(values.seconds);
const DEVICES = Number(values.devices);
const CHUNK = 65536;
const ROOT = join(import.meta.dirname, '..', '..');
const dir = mkdtempSync(join(tmpdir(), 'fleetgate-ota-bench-'));

async function writeRandomFile(path: string, bytes: number): Promise<string> {
  const hash = createHash('sha256');
  const out = createWriteStream(path);
  for (let n = 0; n < bytes; n += 1 << 20) {
    const block = randomBytes(Math.min(1 << 20, bytes - n));
    hash.update(block);
    if (!out.write(block)) await once(out, 'drain');
  }
  out.end();
  await once(out, 'finish');
  return hash.digest('hex');
}

/** Keep-alive HTTP GET with node:http (lighter than fetch, so the load generator takes less of the shared CPU). */
const agent = new Agent({ keepAlive: true, maxSockets: Infinity });
function httpGet(url: string): Promise<number> {
  return new Promise((resolve, reject) => {
    get(url, { agent }, (res) => {
      let n = 0;
      res.on('data', (d: Buffer) => (n += d.length));
      res.on('end', () => resolve(n));
      res.on('error', reject);
    }).on('error', reject);
  });
}

const rss = (pid: number) => Number(/VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))![1]) / 1024;

/** Runs `devices` loops of `fetchChunk(device, chunk)` for SECONDS; returns MB/s (10^6 bytes). */
async function run(devices: number, chunks: number, fetchChunk: (device: number, chunk: number) => Promise<number>): Promise<number> {
  const end = Date.now() + SECONDS * 1000;
  let bytes = 0;
  const started = Date.now();
  await Promise.all(
    Array.from({ length: devices }, async (_, d) => {
      for (let c = d % chunks; Date.now() < end; c = (c + 1) % chunks) {
        const n = await fetchChunk(d, c); // not `bytes += await ...`: that reads `bytes` before the await
        bytes += n;
      }
    }),
  );
  return bytes / 1e6 / ((Date.now() - started) / 1000);
}

async function main(): Promise<void> {
  const file = join(dir, 'package.bin');
  const packageBytes = Number(values['package-mb']) * 1024 * 1024;
  const sha = await writeRandomFile(file, packageBytes);
  const chunks = Math.ceil(packageBytes / CHUNK);
  const [http, mqttPort, coap, barePort] = await Promise.all([freePort(), freePort(), freePort(), freePort()]);
  const fleet = startProcess(process.execPath, ['--max-semi-space-size=64', join(ROOT, 'bin', 'fleetgate.js'), 'start'], {
    FLEETGATE_HOST: '127.0.0.1',
    FLEETGATE_HTTP_PORT: String(http),
    FLEETGATE_MQTT_PORT: String(mqttPort),
    FLEETGATE_COAP_PORT: String(coap),
    FLEETGATE_DATABASE: join(dir, 'fleetgate.db'),
    FLEETGATE_ADMIN_PASSWORD: 'bench-password',
    FLEETGATE_LOG_LEVEL: 'warn',
    FLEETGATE_HTTP_REQUEST_TIMEOUT_MS: '600000',
    FLEETGATE_OTA_ROLLOUT_GROUP_SIZE: '1000',
    FLEETGATE_OTA_ROLLOUT_INTERVAL_MS: '100',
  });
  const bare = startProcess(process.execPath, [join(import.meta.dirname, 'bare-server.mjs'), String(barePort), file]);
  try {
    const base = `http://127.0.0.1:${http}`;
    await waitForHttp(`${base}/healthz`, 60_000);
    await waitForHttp(`http://127.0.0.1:${barePort}/chunk?size=1&chunk=0`);
    const login = await fetch(`${base}/api/auth/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ username: 'admin@fleetgate.local', password: 'bench-password' }) });
    const token = ((await login.json()) as { token: string }).token;
    const api = async (method: string, path: string, body?: unknown) => {
      const res = await fetch(`${base}${path}`, { method, headers: { 'x-authorization': `Bearer ${token}`, 'content-type': 'application/json' }, body: body === undefined ? undefined : JSON.stringify(body) });
      if (res.status !== 200) throw new Error(`${method} ${path}: ${res.status} ${await res.text()}`);
      return res.json() as Promise<any>;
    };
    const upload = async (title: string, path: string, checksum: string) => {
      const profile = await api('POST', '/api/deviceProfile', { name: `${title} profile` });
      const pkg = await api('POST', '/api/otaPackage', { title, version: '1', type: 'FIRMWARE', deviceProfileId: profile.id });
      const form = new FormData();
      form.append('file', await openAsBlob(path), 'package.bin');
      const t0 = Date.now();
      const res = await fetch(`${base}/api/otaPackage/${pkg.id.id}?checksumAlgorithm=SHA256&checksum=${checksum}`, { method: 'POST', headers: { 'x-authorization': `Bearer ${token}` }, body: form });
      if (res.status !== 200) throw new Error(`upload: ${res.status} ${await res.text()}`);
      const seconds = (Date.now() - t0) / 1000;
      await api('POST', '/api/deviceProfile', { ...profile, firmwareId: pkg.id });
      return { profile, seconds };
    };
    const { profile, seconds } = await upload('bench-fw', file, sha);
    for (let d = 0; d < DEVICES; d++) await api('POST', `/api/device?accessToken=bench-${d}`, { name: `bench-${d}`, deviceProfileId: profile.id });
    const lines: string[] = [];
    const say = (line: string) => {
      lines.push(line);
      console.log(line);
    };
    say(`# OTA benchmark ${new Date().toISOString()} — ${cpus().length} cores (${cpus()[0]?.model.trim()}), node ${process.version}, SQLite, package ${values['package-mb']} MiB, 64 KiB chunks, ${SECONDS} s per phase`);
    say(`upload (multipart, SHA256 verified while streaming): ${(packageBytes / 1e6 / seconds).toFixed(1)} MB/s`);
    const fleetHttp = (d: number, c: number) => httpGet(`${base}/api/v1/bench-${d}/firmware?title=bench-fw&version=1&size=${CHUNK}&chunk=${c}`);
    const bareHttp = (_d: number, c: number) => httpGet(`http://127.0.0.1:${barePort}/chunk?size=${CHUNK}&chunk=${c}`);
    for (const devices of [1, DEVICES, 1, DEVICES]) {
      say(`bare node:http, ${devices} device(s):        ${(await run(devices, chunks, bareHttp)).toFixed(1)} MB/s`);
      say(`fleetgate HTTP, ${devices} device(s):        ${(await run(devices, chunks, fleetHttp)).toFixed(1)} MB/s`);
      const clients: MqttClient[] = [];
      const waiting = new Map<string, (n: number) => void>();
      for (let d = 0; d < devices; d++) {
        const client = await mqtt.connectAsync(`mqtt://127.0.0.1:${mqttPort}`, { username: `bench-${d}`, reconnectPeriod: 0 });
        // MQTT.js leaves Nagle on: its PUBACK and the next request would wait for the server's delayed ACK (40 ms).
        (client.stream as unknown as { setNoDelay(on: boolean): void }).setNoDelay(true);
        client.on('message', (topic, payload) => {
          const key = `${d}|${topic.split('/').pop()}`;
          waiting.get(key)?.(payload.length);
          waiting.delete(key);
        });
        clients.push(client);
      }
      const fleetMqtt = (d: number, c: number) =>
        new Promise<number>((resolve) => {
          waiting.set(`${d}|${c}`, resolve);
          clients[d].publish(`v2/fw/request/1/chunk/${c}`, String(CHUNK), { qos: 1 });
        });
      say(`fleetgate MQTT, ${devices} device(s):        ${(await run(devices, chunks, fleetMqtt)).toFixed(1)} MB/s`);
      await Promise.all(clients.map((c) => c.endAsync()));
    }
    const bigMb = Number(values['big-mb']);
    if (bigMb > 0) {
      const big = join(dir, 'big.bin');
      const bigSha = await writeRandomFile(big, bigMb * 1024 * 1024);
      const before = rss(fleet.pid!);
      let peak = before;
      const timer = setInterval(() => (peak = Math.max(peak, rss(fleet.pid!))), 100);
      const up = await upload('bench-big', big, bigSha);
      clearInterval(timer);
      rmSync(big);
      const uploadPeak = peak;
      await api('POST', '/api/device?accessToken=bench-big', { name: 'bench-big', deviceProfileId: up.profile.id });
      const idle = rss(fleet.pid!);
      peak = idle;
      const sampling = setInterval(() => (peak = Math.max(peak, rss(fleet.pid!))), 100);
      const t0 = Date.now();
      const res = await fetch(`${base}/api/v1/bench-big/firmware?title=bench-big&version=1`);
      const hash = createHash('sha256');
      for await (const part of res.body as unknown as AsyncIterable<Uint8Array>) hash.update(part);
      clearInterval(sampling);
      if (hash.digest('hex') !== bigSha) throw new Error('big download: checksum mismatch');
      say(`${bigMb} MiB package: upload ${(bigMb * 1.048576 / up.seconds).toFixed(1)} MB/s, server RSS ${before.toFixed(0)} -> peak ${uploadPeak.toFixed(0)} MiB during upload`);
      say(`${bigMb} MiB whole download over HTTP: ${(bigMb * 1.048576 / ((Date.now() - t0) / 1000)).toFixed(1)} MB/s, server RSS ${idle.toFixed(0)} MiB before, peak ${peak.toFixed(0)} MiB during`);
    }
  } finally {
    await Promise.all([stopProcess(fleet), stopProcess(bare)]);
    rmSync(dir, { recursive: true, force: true });
  }
}

await main();
