import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import mqtt from 'mqtt';
import { startServerProcess, loginAdmin } from '../support/process-server.ts';
import { createTokenDevice, lostPoints, startTelemetryLoad } from '../support/telemetry-load.ts';

const MAX = 20_000;

test('SIGTERM under load: exit 0, every acknowledged point is stored, MQTT 5 clients get DISCONNECT 0x8B', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'fleetgate-sigterm-'));
  const env = { FLEETGATE_DATABASE: join(dir, 'fleetgate.db'), FLEETGATE_ADMIN_PASSWORD: 'sigterm-test-pw', FLEETGATE_LOG_FORMAT: 'json' };
  try {
    const first = await startServerProcess(env);
    const deviceId = await createTokenDevice(first.httpUrl, await loginAdmin(first.httpUrl, 'admin@fleetgate.local', 'sigterm-test-pw'), 'TERM_TOKEN', 'term-dev');

    const client = await mqtt.connectAsync(`mqtt://127.0.0.1:${first.mqttPort}`, { username: 'TERM_TOKEN', protocolVersion: 5, reconnectPeriod: 0 });
    const disconnect = new Promise<number | undefined>((resolve) => {
      client.on('disconnect', (packet) => resolve(packet.reasonCode));
      client.on('close', () => resolve(undefined));
    });

    const load = startTelemetryLoad(first.httpUrl, 'TERM_TOKEN', MAX);
    await load.untilAcknowledged(500);
    first.child.kill('SIGTERM');
    load.stop();
    assert.equal(await first.exited, 0, first.stderr());
    await load.finished;
    assert.equal(await disconnect, 0x8b, 'MQTT 5 client told: server shutting down');
    client.end(true);
    assert.ok(load.acknowledged.length >= 500, `expected at least 500 acknowledged points, got ${load.acknowledged.length}`);
    const events = first.stdout().split('\n').filter(Boolean).map((l) => JSON.parse(l).event);
    assert.ok(events.includes('signal') && events.includes('stopped'), 'the stop is logged');

    const second = await startServerProcess(env);
    try {
      const lost = await lostPoints(second.httpUrl, await loginAdmin(second.httpUrl, 'admin@fleetgate.local', 'sigterm-test-pw'), deviceId, load.acknowledged, MAX);
      assert.deepEqual(lost, [], `${lost.length} acknowledged points were lost`);
    } finally {
      second.child.kill('SIGTERM');
      assert.equal(await second.exited, 0);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
