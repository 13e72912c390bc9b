import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startServerProcess, loginAdmin } from '../support/process-server.ts';
import { createTokenDevice, lostPoints, startTelemetryLoad } from '../support/telemetry-load.ts';

const MAX = 20_000;

test('telemetry acknowledged with HTTP 200 survives SIGKILL and restart on the same file', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'fleetgate-crash-'));
  const env = { FLEETGATE_DATABASE: join(dir, 'fleetgate.db'), FLEETGATE_ADMIN_PASSWORD: 'crash-test-pw', FLEETGATE_LOG_LEVEL: 'warn' };
  try {
    const first = await startServerProcess(env);
    const deviceId = await createTokenDevice(first.httpUrl, await loginAdmin(first.httpUrl, 'admin@fleetgate.local', 'crash-test-pw'), 'CRASH_TOKEN', 'crash-dev');
    const load = startTelemetryLoad(first.httpUrl, 'CRASH_TOKEN', MAX);
    // Kill once a good number of points were acknowledged, while requests are still in flight.
    await load.untilAcknowledged(500);
    first.child.kill('SIGKILL');
    load.stop();
    await first.exited;
    await load.finished;
    assert.ok(load.acknowledged.length >= 500, `expected at least 500 acknowledged points, got ${load.acknowledged.length}`);

    const second = await startServerProcess(env);
    try {
      const lost = await lostPoints(second.httpUrl, await loginAdmin(second.httpUrl, 'admin@fleetgate.local', 'crash-test-pw'), deviceId, load.acknowledged, MAX);
      assert.deepEqual(lost, [], `${lost.length} acknowledged points were lost`);
    } finally {
      second.child.kill('SIGTERM');
      await second.exited;
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
