/**
 * Issue 18, SQLite: the database file on a small tmpfs (mounted by the test; it runs as root) is filled up by MQTT
 * QoS 1 telemetry, several times, each time after a filler file took all but ~1 MB of the space. The server process
 * never exits, /healthz says the database is DOWN because the disk is full (SQLITE_FULL), devices get "not now"
 * (MQTT 5 PUBACK 0x83, HTTP 503 + Retry-After), the log says so plainly a few times instead of once per failed commit
 * (and never "cannot rollback - no transaction is active"), and when the filler is deleted service resumes by itself:
 * UP, new acknowledgements, every acknowledged message stored exactly once.
 */
import { strict as assert } from 'node:assert';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, statfsSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { loginAdmin, startServerProcess, type ServerProcess } from '../support/process-server.ts';
import { createTokenDevice } from '../support/telemetry-load.ts';
import { skipSuiteForMissingTool } from '../support/tools.ts';
import { exitCode, health, notStoredOnce, startMqttLoad, until, untilDown, untilUp, type MqttLoad } from './support.ts';

const PASSWORD = 'sqlite-full-test-password';
const TOKEN = 'sqlite-full-device-token';
const ROUNDS = 3;
const SIZE_MB = 24;

/** Mounts a tmpfs of SIZE_MB at a new directory; undefined with the reason when this sandbox does not allow it. */
function mountSmallFilesystem(): { dir: string } | { missing: string } {
  const dir = mkdtempSync(join(tmpdir(), 'fleetgate-full-'));
  const result = spawnSync('mount', ['-t', 'tmpfs', '-o', `size=${SIZE_MB}m`, 'tmpfs', dir], { encoding: 'utf8' });
  if (result.status !== 0) {
    rmSync(dir, { recursive: true, force: true });
    return { missing: `cannot mount a tmpfs here (${(result.stderr || result.error?.message || '').trim()}); run as root` };
  }
  return { dir };
}

const mounted = mountSmallFilesystem();

describe(`SQLite on a full ${SIZE_MB} MB tmpfs under MQTT QoS 1 load`, { skip: skipSuiteForMissingTool('missing' in mounted ? mounted.missing : undefined) }, () => {
  const dir = 'dir' in mounted ? mounted.dir : '';
  const filler = join(dir, 'filler');
  let server: ServerProcess;
  let adminToken: string;
  let deviceId: string;
  let load: MqttLoad;

  /** Takes all but `leaveBytes` of the free space with a filler file. */
  const fill = (leaveBytes: number) => {
    const { bavail, bsize } = statfsSync(dir);
    const size = Math.max(0, bavail * bsize - leaveBytes);
    writeFileSync(filler, Buffer.alloc(size));
  };

  before(async () => {
    server = await startServerProcess({ FLEETGATE_DATABASE: join(dir, 'fleetgate.db'), FLEETGATE_ADMIN_PASSWORD: PASSWORD });
    adminToken = await loginAdmin(server.httpUrl, 'admin@fleetgate.local', PASSWORD);
    deviceId = await createTokenDevice(server.httpUrl, adminToken, TOKEN, 'sqlite-full-device');
    load = startMqttLoad(server.mqttPort, TOKEN, 4, 8, 400);
    await load.ackAfter(0);
  });

  after(async () => {
    await load?.stop(1000);
    server?.child.kill('SIGKILL');
    await server?.exited;
    rmSync(filler, { force: true });
    if (dir) {
      spawnSync('umount', ['-l', dir]);
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('says the disk is full, tells devices "not now", and resumes when space returns', async () => {
    for (let round = 1; round <= ROUNDS; round++) {
      fill(1024 * 1024);
      const down = await untilDown(server, 'database');
      assert.match(down.reasons?.database ?? '', /full \(SQLITE_FULL\)/, `round ${round}: the reason says the disk is full`);
      // A small write may still fit now and then (SQLite reuses WAL space), so ask until one is refused.
      const telemetry = await until('an HTTP 503', async () => {
        const res = await fetch(`${server.httpUrl}/api/v1/${TOKEN}/telemetry`, { method: 'POST', body: `{"ts":${999_000_000 + round},"values":{"x":1}}`, signal: AbortSignal.timeout(30_000) });
        return res.status === 503 ? res : (assert.equal(res.status, 200), undefined);
      });
      assert.ok(Number(telemetry.headers.get('retry-after')) > 0, 'Retry-After on the 503');
      rmSync(filler);
      const returned = Date.now();
      await untilUp(server);
      await load.ackAfter(returned);
      assert.equal(exitCode(server), undefined, `round ${round}: the process is still running`);
    }
    assert.ok(load.refusals.pubackErrors > 0, 'MQTT 5 clients got PUBACKs with an error reason');
    for (const code of load.refusals.reasonCodes) assert.equal(code, 0x83);
  });

  it('stored every acknowledged message exactly once and logged the full disk plainly', async () => {
    await load.stop();
    const max = Math.max(...load.acked.keys());
    assert.deepEqual(await notStoredOnce(server.httpUrl, adminToken, deviceId, load.acked.keys(), max), []);
    assert.equal((await health(server.httpUrl)).status, 200);
    const log = server.stdout();
    assert.doesNotMatch(log, /cannot rollback/);
    const outages = log.split('\n').filter((l) => l.includes('"event":"outage"'));
    assert.ok(outages.length >= ROUNDS, 'each full disk logged');
    assert.ok(outages.length <= 4 * ROUNDS, `logged once per outage, not per commit: ${outages.length} lines`);
    assert.match(outages[0], /SQLITE_FULL/);
    assert.match(outages[0], /free space/);
    const metrics = await (await fetch(`${server.httpUrl}/metrics`)).text();
    assert.match(metrics, /fleetgate_dependency_failures_total\{part="database"\} [1-9]/);
    assert.match(metrics, /fleetgate_dependency_up\{part="database"\} 1/);
    assert.equal(exitCode(server), undefined);
  });
});
