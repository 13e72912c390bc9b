/**
 * Data out survives a SIGKILL: fleetgate runs as a child process under HTTP telemetry load with a rule exporting to a
 * real receiver, is killed mid-delivery, and comes back (on SQLite: the same file; on PostgreSQL + Redis: the other
 * node takes the dead node's lanes over once their leases expire). Every acknowledged point must reach the receiver
 * at least once; duplicates are counted and reported. (Order per device is checked in webhook.test.ts with one sender:
 * here eight concurrent senders commit their points in no particular order of `ts`.)
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it, type TestContext } from 'node:test';
import { ADMIN_EMAIL, ADMIN_PASSWORD } from '../support/harness.ts';
import { skipUnlessPostgres, startPostgres, type TestPostgres } from '../support/postgres.ts';
import { loginAdmin, startServerProcess, type ServerProcess } from '../support/process-server.ts';
import { skipUnlessRedis, startRedis, type TestRedis } from '../support/redis.ts';
import { createTokenDevice, startTelemetryLoad } from '../support/telemetry-load.ts';
import { acceptedPoints, eventually, startReceiver, type Receiver } from './receiver.ts';

const MAX = 4000;

function nodeEnv(database: string, extra: Record<string, string> = {}): Record<string, string> {
  return {
    FLEETGATE_DATABASE: database,
    FLEETGATE_ADMIN_USERNAME: ADMIN_EMAIL,
    FLEETGATE_ADMIN_PASSWORD: ADMIN_PASSWORD,
    FLEETGATE_LOG_LEVEL: 'warn',
    FLEETGATE_EXPORT_LEASE_MS: '2000',
    FLEETGATE_EXPORT_RETRY_BASE_MS: '100',
    ...extra,
  };
}

async function createRule(httpUrl: string, receiver: Receiver): Promise<void> {
  const token = await loginAdmin(httpUrl, ADMIN_EMAIL, ADMIN_PASSWORD);
  const res = await fetch(`${httpUrl}/api/export/rule`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'x-authorization': `Bearer ${token}` },
    // Two lanes (fewer than a node delivers at once): on PostgreSQL the two nodes still share them and the survivor
    // takes the dead node's over.
    body: JSON.stringify({ name: 'crash', kinds: ['telemetry'], lanes: 2, destination: { type: 'webhook', url: receiver.url, batchSize: 20 } }),
  });
  assert.equal(res.status, 200, await res.text());
}

/** Sends load to `node` until enough is acknowledged and delivered, kills it, and returns what was acknowledged. */
async function loadAndKill(node: ServerProcess, deviceToken: string, receiver: Receiver): Promise<number[]> {
  const load = startTelemetryLoad(node.httpUrl, deviceToken, MAX, 8);
  await load.untilAcknowledged(800);
  await eventually('some deliveries before the kill', () => receiver.accepted.length > 0);
  node.child.kill('SIGKILL');
  await node.exited;
  load.stop();
  await load.finished;
  return [...load.acknowledged];
}

function report(t: TestContext, receiver: Receiver, acknowledged: number[], deviceId: string): void {
  const delivered = new Set(acceptedPoints(receiver, deviceId));
  const lost = acknowledged.filter((ts) => !delivered.has(ts));
  t.diagnostic(`acknowledged ${acknowledged.length}, delivered ${delivered.size} distinct, duplicates ${receiver.duplicates()}, lost ${lost.length}`);
  assert.deepEqual(lost, [], 'every acknowledged point was delivered');
}

describe('export after a SIGKILL', () => {
  const cleanup: (() => Promise<unknown> | unknown)[] = [];
  after(async () => {
    for (const c of cleanup.reverse()) await c();
  });

  it('on SQLite: the restarted server delivers everything it acknowledged', async (t) => {
    const dir = mkdtempSync(join(tmpdir(), 'fleetgate-export-crash-'));
    cleanup.push(() => rmSync(dir, { recursive: true, force: true }));
    const receiver = await startReceiver();
    cleanup.push(() => receiver.close());
    receiver.answer = () => ({ status: 200, delayMs: 5 });
    const env = nodeEnv(join(dir, 'fleetgate.db'));
    const first = await startServerProcess(env);
    cleanup.push(() => first.child.kill('SIGKILL'));
    await createRule(first.httpUrl, receiver);
    const deviceId = await createTokenDevice(first.httpUrl, await loginAdmin(first.httpUrl, ADMIN_EMAIL, ADMIN_PASSWORD), 'crash-token', 'crash-device');
    const acknowledged = await loadAndKill(first, 'crash-token', receiver);
    const second = await startServerProcess(env);
    cleanup.push(() => second.child.kill('SIGKILL'));
    await eventually('every acknowledged point delivered after the restart', () => {
      const delivered = new Set(acceptedPoints(receiver, deviceId));
      return acknowledged.every((ts) => delivered.has(ts));
    }, 120_000).catch(() => {});
    report(t, receiver, acknowledged, deviceId);
  });

  it('on PostgreSQL with two nodes: the survivor takes the dead node\'s lanes over', { skip: skipUnlessPostgres() || skipUnlessRedis() }, async (t) => {
    const [pg, redis]: [TestPostgres, TestRedis] = await Promise.all([startPostgres(), startRedis()]);
    cleanup.push(() => pg.stop(), () => redis.stop());
    const receiver = await startReceiver();
    cleanup.push(() => receiver.close());
    receiver.answer = () => ({ status: 200, delayMs: 5 });
    const database = await pg.createDatabase();
    const env = nodeEnv(database, { FLEETGATE_BUS: redis.url });
    const a = await startServerProcess(env);
    cleanup.push(() => a.child.kill('SIGKILL'));
    const b = await startServerProcess(env);
    cleanup.push(() => b.child.kill('SIGKILL'));
    await createRule(a.httpUrl, receiver);
    const token = await loginAdmin(a.httpUrl, ADMIN_EMAIL, ADMIN_PASSWORD);
    const deviceA = await createTokenDevice(a.httpUrl, token, 'pg-crash-a', 'pg-crash-a');
    const deviceB = await createTokenDevice(a.httpUrl, token, 'pg-crash-b', 'pg-crash-b');
    const loadB = startTelemetryLoad(b.httpUrl, 'pg-crash-b', 1000, 4);
    const acknowledgedA = await loadAndKill(a, 'pg-crash-a', receiver);
    await loadB.finished;
    await eventually('node B delivered everything both nodes acknowledged', () => {
      const deliveredA = new Set(acceptedPoints(receiver, deviceA));
      const deliveredB = new Set(acceptedPoints(receiver, deviceB));
      return acknowledgedA.every((ts) => deliveredA.has(ts)) && loadB.acknowledged.every((ts) => deliveredB.has(ts));
    }, 120_000).catch(() => {});
    report(t, receiver, acknowledgedA, deviceA);
    const deliveredB = new Set(acceptedPoints(receiver, deviceB));
    assert.deepEqual(loadB.acknowledged.filter((ts) => !deliveredB.has(ts)), []);
  });
});
