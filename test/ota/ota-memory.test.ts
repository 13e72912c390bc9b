/**
 * A 200 MB package through a real server process (bin/fleetgate.js): uploaded as multipart, downloaded whole over
 * HTTP and (its first 64 MiB) in 64 KiB chunks over MQTT, while the server's resident memory is sampled from /proc. The package is never
 * held whole, so the growth stays far below its size (the bound is generous: SQLite's page cache alone may take
 * 64 MiB, and the garbage collector runs when it likes).
 */
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { createWriteStream, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { once } from 'node:events';
import { after, before, describe, it } from 'node:test';
import mqtt from 'mqtt';
import { loginAdmin, startServerProcess, type ServerProcess } from '../support/process-server.ts';
import { assignToProfile, createDevice, createPackage, createProfile, eventually, otaApi, uploadPackage, type Api } from '../support/ota.ts';

const SIZE = 200 * 1024 * 1024;
/** Most the server's RSS may grow during a download (the package is 200 MiB). */
const MAX_GROWTH = 64 * 1024 * 1024;
/** Most it may grow during the upload: SQLite's page cache (64 MiB) fills as the pieces are written. */
const MAX_UPLOAD_GROWTH = 150 * 1024 * 1024;
/** The MQTT part downloads this much of the package in 64 KiB chunks (keeps the test short). */
const MQTT_BYTES = 64 * 1024 * 1024;

const rssOf = (pid: number) => Number(/VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))![1]) * 1024;

/** Samples the process's RSS every 50 ms until stopped; returns the peak. */
function sampler(pid: number): { stop(): number } {
  let peak = rssOf(pid);
  const timer = setInterval(() => (peak = Math.max(peak, rssOf(pid))), 50);
  return {
    stop() {
      clearInterval(timer);
      return Math.max(peak, rssOf(pid));
    },
  };
}

describe('a 200 MB package with flat server memory', () => {
  const dir = mkdtempSync(join(tmpdir(), 'fleetgate-ota-200mb-'));
  const file = join(dir, 'package.bin');
  let server: ServerProcess;
  let api: Api;
  let token: string;
  let sha = '';
  let mqttSha = '';
  before(async () => {
    const hash = createHash('sha256');
    const prefix = createHash('sha256');
    const out = createWriteStream(file);
    for (let written = 0; written < SIZE; written += 1 << 20) {
      const block = randomBytes(1 << 20);
      hash.update(block);
      if (written < MQTT_BYTES) prefix.update(block);
      if (!out.write(block)) await once(out, 'drain');
    }
    out.end();
    await once(out, 'finish');
    sha = hash.digest('hex');
    mqttSha = prefix.digest('hex');
    server = await startServerProcess({
      FLEETGATE_DATABASE: join(dir, 'fleetgate.db'),
      FLEETGATE_ADMIN_USERNAME: 'admin@mem.test',
      FLEETGATE_ADMIN_PASSWORD: 'mem-test-password',
      FLEETGATE_HTTP_REQUEST_TIMEOUT_MS: '300000',
      FLEETGATE_OTA_ROLLOUT_INTERVAL_MS: '100',
    });
    token = await loginAdmin(server.httpUrl, 'admin@mem.test', 'mem-test-password');
    api = otaApi(server.httpUrl, token);
  });
  after(async () => {
    server?.child.kill('SIGTERM');
    await server?.exited;
    rmSync(dir, { recursive: true, force: true });
  });

  it('uploads (checksum verified while streaming), then serves it whole over HTTP and in chunks over MQTT', async () => {
    const profile = await createProfile(api, 'big');
    const pkg = await createPackage(api, profile, 'big-fw', '1.0');
    const before = rssOf(server.child.pid!);
    const upload = sampler(server.child.pid!);
    const up = await uploadPackage(server.httpUrl, token, pkg, { path: file }, { algorithm: 'SHA256', checksum: sha });
    const uploadPeak = upload.stop();
    assert.equal(up.status, 200, up.text);
    assert.equal(up.json.dataSize, SIZE);
    assert.ok(uploadPeak - before < MAX_UPLOAD_GROWTH, `upload grew RSS by ${((uploadPeak - before) / 2 ** 20).toFixed(0)} MiB`);
    await assignToProfile(api, profile, 'FIRMWARE', pkg);
    await createDevice(api, 'big-device', profile, 'big-token');

    const baseline = rssOf(server.child.pid!);
    const http = sampler(server.child.pid!);
    const res = await fetch(`${server.httpUrl}/api/v1/big-token/firmware?title=big-fw&version=1.0`);
    assert.equal(res.status, 200);
    const hash = createHash('sha256');
    let received = 0;
    for await (const part of res.body as unknown as AsyncIterable<Uint8Array>) {
      hash.update(part);
      received += part.length;
    }
    const httpPeak = http.stop();
    assert.equal(received, SIZE);
    assert.equal(hash.digest('hex'), sha);
    assert.ok(httpPeak - baseline < MAX_GROWTH, `HTTP download grew RSS by ${((httpPeak - baseline) / 2 ** 20).toFixed(0)} MiB`);

    const client = await mqtt.connectAsync(`mqtt://127.0.0.1:${server.mqttPort}`, { username: 'big-token', reconnectPeriod: 0 });
    try {
      const mqttBaseline = rssOf(server.child.pid!);
      const sampling = sampler(server.child.pid!);
      const chunks = new Map<number, Buffer>();
      client.on('message', (topic, payload) => chunks.set(Number(topic.split('/').pop()), payload));
      const mqttHash = createHash('sha256');
      const total = MQTT_BYTES / 65536;
      // A window of 8 requests in flight, consumed in order.
      let next = 0;
      for (; next < 8; next++) client.publish(`v2/fw/request/1/chunk/${next}`, '65536', { qos: 1 });
      for (let chunk = 0; chunk < total; chunk++) {
        const data = await eventually(`chunk ${chunk}`, async () => chunks.get(chunk));
        chunks.delete(chunk);
        mqttHash.update(data);
        if (next < total) client.publish(`v2/fw/request/1/chunk/${next++}`, '65536', { qos: 1 });
      }
      const mqttPeak = sampling.stop();
      assert.equal(mqttHash.digest('hex'), mqttSha);
      assert.ok(mqttPeak - mqttBaseline < MAX_GROWTH, `MQTT download grew RSS by ${((mqttPeak - mqttBaseline) / 2 ** 20).toFixed(0)} MiB`);
      process.stdout.write(`# RSS MiB: before upload ${(before / 2 ** 20).toFixed(0)}, upload peak ${(uploadPeak / 2 ** 20).toFixed(0)}, HTTP ${(baseline / 2 ** 20).toFixed(0)} -> ${(httpPeak / 2 ** 20).toFixed(0)}, MQTT ${(mqttBaseline / 2 ** 20).toFixed(0)} -> ${(mqttPeak / 2 ** 20).toFixed(0)}\n`);
    } finally {
      await client.endAsync();
    }
  });
});
