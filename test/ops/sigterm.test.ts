import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import mqtt from 'mqtt';
import { startServerProcess, loginAdmin } from '../support/process-server.ts';

test('SIGTERM under load: exit 0, every acknowledged point is stored, MQTT 5 clients get DISCONNECT 0x8B', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'fleetgate-sigterm-'));
  const env = { FLEETGATE_DATABASE: join(dir, 'fleetgate.db'), FLEETGATE_ADMIN_PASSWORD: 'sigterm-test-pw', FLEETGATE_LOG_FORMAT: 'json' };
  try {
    const first = await startServerProcess(env);
    const token = await loginAdmin(first.httpUrl, 'admin@fleetgate.local', 'sigterm-test-pw');
    const headers = { 'content-type': 'application/json', 'x-authorization': `Bearer ${token}` };
    const created = await fetch(`${first.httpUrl}/api/device?accessToken=TERM_TOKEN`, { method: 'POST', headers, body: JSON.stringify({ name: 'term-dev' }) });
    assert.equal(created.status, 200);
    const deviceId = ((await created.json()) as { id: { id: string } }).id.id;

    const client = await mqtt.connectAsync(`mqtt://127.0.0.1:${first.mqttPort}`, { username: 'TERM_TOKEN', protocolVersion: 5, reconnectPeriod: 0 });
    const disconnect = new Promise<number | undefined>((resolve) => {
      client.on('disconnect', (packet) => resolve(packet.reasonCode));
      client.on('close', () => resolve(undefined));
    });

    const acknowledged: number[] = [];
    let next = 1;
    const MAX = 20_000;
    let signalled = false;
    const worker = async () => {
      while (next <= MAX) {
        const ts = next++;
        try {
          const res = await fetch(`${first.httpUrl}/api/v1/TERM_TOKEN/telemetry`, { method: 'POST', body: JSON.stringify({ ts, values: { seq: ts } }) });
          if (res.status === 200) acknowledged.push(ts);
          else if (signalled) return;
        } catch {
          return; // the server stopped accepting
        }
      }
    };
    const workers = Array.from({ length: 16 }, worker);
    while (acknowledged.length < 500 && next <= MAX) await new Promise((r) => setTimeout(r, 5));
    first.child.kill('SIGTERM');
    signalled = true;
    assert.equal(await first.exited, 0, first.stderr());
    await Promise.all(workers);
    assert.equal(await disconnect, 0x8b, 'MQTT 5 client told: server shutting down');
    client.end(true);
    assert.ok(acknowledged.length >= 500, `expected at least 500 acknowledged points, got ${acknowledged.length}`);
    const events = first.stdout().split('\n').filter(Boolean).map((l) => JSON.parse(l).event);
    assert.ok(events.includes('signal') && events.includes('stopped'), 'the stop is logged');

    const second = await startServerProcess(env);
    try {
      const token2 = await loginAdmin(second.httpUrl, 'admin@fleetgate.local', 'sigterm-test-pw');
      const res = await fetch(`${second.httpUrl}/api/plugins/telemetry/DEVICE/${deviceId}/values/timeseries?keys=seq&startTs=0&endTs=${MAX + 1}&limit=${MAX}`, {
        headers: { 'x-authorization': `Bearer ${token2}` },
      });
      const body = (await res.json()) as { seq?: { ts: number }[] };
      const stored = new Set((body.seq ?? []).map((p) => p.ts));
      const lost = acknowledged.filter((ts) => !stored.has(ts));
      assert.deepEqual(lost, [], `${lost.length} acknowledged points were lost`);
    } finally {
      second.child.kill('SIGTERM');
      assert.equal(await second.exited, 0);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
