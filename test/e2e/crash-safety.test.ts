import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startServerProcess, loginAdmin } from '../support/process-server.ts';

test('telemetry acknowledged with HTTP 200 survives SIGKILL and restart on the same file', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'fleetgate-crash-'));
  const env = { FLEETGATE_DATABASE: join(dir, 'fleetgate.db'), FLEETGATE_ADMIN_PASSWORD: 'crash-test-pw', FLEETGATE_LOG_LEVEL: 'warn' };
  try {
    const first = await startServerProcess(env);
    const token = await loginAdmin(first.httpUrl, 'admin@fleetgate.local', 'crash-test-pw');
    const headers = { 'content-type': 'application/json', 'x-authorization': `Bearer ${token}` };
    const created = await fetch(`${first.httpUrl}/api/device?accessToken=CRASH_TOKEN`, { method: 'POST', headers, body: JSON.stringify({ name: 'crash-dev' }) });
    assert.equal(created.status, 200);
    const deviceId = ((await created.json()) as { id: { id: string } }).id.id;

    const acknowledged: number[] = [];
    let next = 1;
    const MAX = 20_000;
    let killed = false;
    const worker = async () => {
      while (!killed && next <= MAX) {
        const ts = next++;
        try {
          const res = await fetch(`${first.httpUrl}/api/v1/CRASH_TOKEN/telemetry`, { method: 'POST', body: JSON.stringify({ ts, values: { seq: ts } }) });
          if (res.status === 200) acknowledged.push(ts);
        } catch {
          return; // the server is gone
        }
      }
    };
    const workers = Array.from({ length: 16 }, worker);
    // Kill once a good number of points were acknowledged, while requests are still in flight.
    while (acknowledged.length < 500 && next <= MAX) await new Promise((r) => setTimeout(r, 5));
    first.child.kill('SIGKILL');
    killed = true;
    await first.exited;
    await Promise.all(workers);
    assert.ok(acknowledged.length >= 500, `expected at least 500 acknowledged points, got ${acknowledged.length}`);

    const second = await startServerProcess(env);
    try {
      const token2 = await loginAdmin(second.httpUrl, 'admin@fleetgate.local', 'crash-test-pw');
      const res = await fetch(`${second.httpUrl}/api/plugins/telemetry/DEVICE/${deviceId}/values/timeseries?keys=seq&startTs=0&endTs=${MAX + 1}&limit=${MAX}`, {
        headers: { 'x-authorization': `Bearer ${token2}` },
      });
      assert.equal(res.status, 200);
      const body = (await res.json()) as { seq?: { ts: number }[] };
      const stored = new Set((body.seq ?? []).map((p) => p.ts));
      const lost = acknowledged.filter((ts) => !stored.has(ts));
      assert.deepEqual(lost, [], `${lost.length} acknowledged points were lost`);
    } finally {
      second.child.kill('SIGTERM');
      await second.exited;
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
