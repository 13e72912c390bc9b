/**
 * Issue 18, SQLite: the database file on a small tmpfs (mounted by the test; it runs as root) is filled up by MQTT
 * QoS 1 telemetry, several times, each time after a filler file took all but ~1 MB of the space. Where mounting is not
 * permitted (a container without CAP_SYS_ADMIN), or with FLEETGATE_TEST_FULL_DISK=max-size, the same real SQLITE_FULL
 * comes from SQLite's own size limit instead (sqliteMaxSizeMb, PRAGMA max_page_count), filled by a ballast device
 * whose deletion gives the space back; the test says which one ran. The server process
 * never exits, /healthz says the database is DOWN because the disk is full (SQLITE_FULL), devices get "not now"
 * (MQTT 5 PUBACK 0x83, HTTP 503 + Retry-After), the log says so plainly a few times instead of once per failed commit
 * (and never "cannot rollback - no transaction is active"), and when the filler is deleted service resumes by itself:
 * UP, new acknowledgements, every acknowledged message stored exactly once.
 */
import { strict as assert } from 'node:assert';
import { spawnSync } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, rmSync, truncateSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { loginAdmin, startServerProcess, type ServerProcess } from '../support/process-server.ts';
import { createTokenDevice } from '../support/telemetry-load.ts';
import { exitCode, notStoredOnce, startMqttLoad, until, untilDown, untilUp, type MqttLoad } from './support.ts';

const PASSWORD = 'sqlite-full-test-password';
const TOKEN = 'sqlite-full-device-token';
const ROUNDS = 3;
const SIZE_MB = 24;

/** SQLite's own limit in the fallback, MiB. */
const MAX_SIZE_MB = 6;

/** Mounts a tmpfs of SIZE_MB at a new directory, or says why not (then the size-limit fallback runs). */
function mountSmallFilesystem(): { dir: string; tmpfs: boolean; why?: string } {
  const dir = mkdtempSync(join(tmpdir(), 'fleetgate-full-'));
  if (process.env.FLEETGATE_TEST_FULL_DISK === 'max-size') return { dir, tmpfs: false, why: 'FLEETGATE_TEST_FULL_DISK=max-size' };
  const result = spawnSync('mount', ['-t', 'tmpfs', '-o', `size=${SIZE_MB}m`, 'tmpfs', dir], { encoding: 'utf8' });
  if (result.status !== 0) return { dir, tmpfs: false, why: `cannot mount a tmpfs here: ${(result.stderr || result.error?.message || '').trim()}` };
  return { dir, tmpfs: true };
}

const mounted = mountSmallFilesystem();
const mode = mounted.tmpfs ? `a real ${SIZE_MB} MB tmpfs filled up` : `SQLite's own ${MAX_SIZE_MB} MiB limit (max_page_count) reached (${mounted.why})`;

describe(`SQLite full under MQTT QoS 1 load: ${mode}`, () => {
  const dir = mounted.dir;
  const filler = join(dir, 'filler');
  let ballast: { id: string; token: string } | undefined;
  let server: ServerProcess;
  let adminToken: string;
  let deviceId: string;
  let load: MqttLoad;

  /** tmpfs: a filler file takes all but 1 MB of the free space. Fallback: a ballast device's telemetry fills the limit. */
  const fill = async (round: number) => {
    if (mounted.tmpfs) {
      // Written up to ENOSPC, then 1 MB given back: the server keeps writing meanwhile, so a size read beforehand may not fit.
      const chunk = Buffer.alloc(1024 * 1024);
      const fd = openSync(filler, 'w');
      let size = 0;
      try {
        for (;;) size += writeSync(fd, chunk);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'ENOSPC') throw err;
      } finally {
        closeSync(fd);
      }
      truncateSync(filler, Math.max(0, size - chunk.length));
      return;
    }
    const token = `ballast-token-${round}`;
    ballast = { id: await createTokenDevice(server.httpUrl, adminToken, token, `ballast-${round}`), token };
    const big = 'b'.repeat(8000);
    for (let i = 0; i < 5000; i++) {
      const res = await fetch(`${server.httpUrl}/api/v1/${token}/telemetry`, { method: 'POST', body: JSON.stringify({ ts: i + 1, values: { big } }) });
      if (res.status === 503) return;
      assert.equal(res.status, 200);
    }
    assert.fail('the size limit was never reached');
  };

  /** tmpfs: the filler goes. Fallback: the ballast device is deleted (through the admin API), which frees its pages. */
  const makeRoom = async () => {
    if (mounted.tmpfs) return rmSync(filler);
    await until('the ballast device deleted', async () => {
      const res = await fetch(`${server.httpUrl}/api/device/${ballast!.id}`, { method: 'DELETE', headers: { 'x-authorization': `Bearer ${adminToken}` } });
      return res.status === 200 ? true : undefined;
    });
  };

  before(async () => {
    server = await startServerProcess({
      FLEETGATE_DATABASE: join(dir, 'fleetgate.db'),
      FLEETGATE_ADMIN_PASSWORD: PASSWORD,
      ...(mounted.tmpfs ? {} : { FLEETGATE_SQLITE_MAX_SIZE_MB: String(MAX_SIZE_MB) }),
    });
    adminToken = await loginAdmin(server.httpUrl, 'admin@fleetgate.local', PASSWORD);
    deviceId = await createTokenDevice(server.httpUrl, adminToken, TOKEN, 'sqlite-full-device');
    // Fallback: small messages, so the ballast holds most of the space and deleting it gives back enough.
    load = startMqttLoad(server.mqttPort, TOKEN, 4, 8, mounted.tmpfs ? 400 : 0);
    await load.ackAfter(0);
  });

  after(async () => {
    await load?.stop(1000);
    server?.child.kill('SIGKILL');
    await server?.exited;
    rmSync(filler, { force: true });
    if (mounted.tmpfs) spawnSync('umount', ['-l', dir]);
    rmSync(dir, { recursive: true, force: true });
  });

  it('says the disk is full, tells devices "not now", and resumes when space returns', async (t) => {
    t.diagnostic(`full disk: ${mode}`);
    for (let round = 1; round <= ROUNDS; round++) {
      await fill(round);
      await untilDown(server, 'database', { reason: /full \(SQLITE_FULL\)/ }); // the reason says the disk is full
      // A small write may still fit now and then (SQLite reuses WAL space), so ask until one is refused.
      const telemetry = await until('an HTTP 503', async () => {
        const res = await fetch(`${server.httpUrl}/api/v1/${TOKEN}/telemetry`, { method: 'POST', body: `{"ts":${999_000_000 + round},"values":{"x":1}}`, signal: AbortSignal.timeout(30_000) });
        return res.status === 503 ? res : (assert.equal(res.status, 200), undefined);
      });
      assert.ok(Number(telemetry.headers.get('retry-after')) > 0, 'Retry-After on the 503');
      await makeRoom();
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
    await untilUp(server);
    const log = server.stdout();
    assert.doesNotMatch(log, /cannot rollback/);
    const outages = log.split('\n').filter((l) => l.includes('"event":"outage"'));
    assert.ok(outages.length >= ROUNDS, 'each full disk logged');
    assert.ok(outages.length <= 4 * ROUNDS, `logged once per outage, not per commit: ${outages.length} lines`);
    assert.match(outages[0], /SQLITE_FULL/);
    if (!mounted.tmpfs) console.log(`# full disk simulated: ${mode}`);
    assert.match(outages[0], /free space/);
    const metrics = await (await fetch(`${server.httpUrl}/metrics`)).text();
    assert.match(metrics, /fleetgate_dependency_failures_total\{part="database"\} [1-9]/);
    assert.match(metrics, /fleetgate_dependency_up\{part="database"\} 1/);
    assert.equal(exitCode(server), undefined);
  });
});
