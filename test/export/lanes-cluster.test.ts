/**
 * Export lanes per rule in a two-node cluster (PostgreSQL + Redis): devices post telemetry to both nodes while the
 * rule's lane count is changed on one of them (16 -> 3, then, once the old lanes are delivered, 3 -> 1). The other
 * node learns of the change through the bus a little later, so for a moment it still writes rows to the old lanes;
 * every acknowledged point must still reach the receiver, each device's points in the order they were acknowledged.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { ADMIN_EMAIL, ADMIN_PASSWORD, startTestServer, type TestServer } from '../support/harness.ts';
import { skipUnlessPostgres, startPostgres, type TestPostgres } from '../support/postgres.ts';
import { loginAdmin, startServerProcess, type ServerProcess } from '../support/process-server.ts';
import { skipUnlessRedis, startRedis, type TestRedis } from '../support/redis.ts';
import { createTokenDevice, startTelemetryLoad, type TelemetryLoad } from '../support/telemetry-load.ts';
import { adminApi, type ApiResponse } from '../cluster/cluster-support.ts';
import { eventually, startReceiver, type Receiver } from './receiver.ts';

const DEVICES = 6;
/** Points each device sends (its load ends then). */
const POINTS = 240;

describe('changing an export rule\'s lanes in a two-node cluster', { skip: skipUnlessPostgres() || skipUnlessRedis() }, () => {
  let pg: TestPostgres | undefined;
  let redis: TestRedis | undefined;
  let a: TestServer | undefined;
  let b: ServerProcess | undefined;
  let receiver: Receiver | undefined;
  let api: (method: 'GET' | 'POST' | 'DELETE', path: string, body?: unknown) => Promise<ApiResponse>;
  const killB = () => b?.child.kill('SIGKILL');

  before(async () => {
    [pg, redis] = await Promise.all([startPostgres(), startRedis()]);
    const database = await pg.createDatabase();
    a = await startTestServer({ database, bus: redis.url, logLevel: 'warn', exportLeaseMs: 4000 });
    b = await startServerProcess({
      FLEETGATE_DATABASE: database,
      FLEETGATE_BUS: redis.url,
      FLEETGATE_ADMIN_USERNAME: ADMIN_EMAIL,
      FLEETGATE_ADMIN_PASSWORD: ADMIN_PASSWORD,
      FLEETGATE_LOG_LEVEL: 'warn',
      FLEETGATE_EXPORT_LEASE_MS: '4000',
    });
    process.once('exit', killB);
    api = adminApi(a.httpUrl, await loginAdmin(a.httpUrl, ADMIN_EMAIL, ADMIN_PASSWORD));
    receiver = await startReceiver();
  });

  after(async () => {
    if (b && b.child.exitCode === null && b.child.signalCode === null) {
      b.child.kill('SIGTERM');
      const timer = setTimeout(killB, 15_000);
      await b.exited;
      clearTimeout(timer);
    }
    process.removeListener('exit', killB);
    await a?.close();
    await receiver?.close();
    await Promise.allSettled([pg?.stop(), redis?.stop()]);
  });

  it('delivers every acknowledged point once the lanes change under load, each device in order', async (t) => {
    const rule = await api('POST', '/api/export/rule', { name: 'relane', kinds: ['telemetry'], lanes: 16, destination: { type: 'webhook', url: receiver!.url, batchSize: 50 } });
    assert.equal(rule.status, 200, rule.text);
    const ruleId = rule.json.id.id as string;
    const adminToken = await loginAdmin(a!.httpUrl, ADMIN_EMAIL, ADMIN_PASSWORD);
    const deviceIds: string[] = [];
    for (let d = 0; d < DEVICES; d++) deviceIds.push(await createTokenDevice(a!.httpUrl, adminToken, `relane-${d}`, `relane-dev-${d}`));
    // One sender a device (each point acknowledged before the next is sent: the order to keep), half on each node.
    const loads: TelemetryLoad[] = deviceIds.map((_, d) => startTelemetryLoad(d % 2 === 0 ? a!.httpUrl : b!.httpUrl, `relane-${d}`, POINTS, 1));
    const atLeast = async (n: number) => {
      for (const load of loads) await load.untilAcknowledged(n);
    };
    try {
      await atLeast(60);
      const first = await api('POST', '/api/export/rule', { id: ruleId, lanes: 3 });
      assert.equal(first.status, 200, first.text);
      await atLeast(120);
      // Taken once the rows of the 16 lanes are delivered (400 until then).
      let refused = 0;
      await eventually('the second change taken', async () => {
        const second = await api('POST', '/api/export/rule', { id: ruleId, lanes: 1 });
        if (second.status === 400) {
          assert.match(second.json.message, /cannot change yet/);
          refused++;
        }
        return second.status === 200;
      });
      t.diagnostic(`second change refused ${refused} times before it was taken`);
      const lanes = await api('GET', `/api/export/rule/${ruleId}`);
      assert.equal(lanes.json.lanes, 1);
    } finally {
      await Promise.all(loads.map((l) => l.finished));
    }
    for (const load of loads) assert.equal(load.acknowledged.length, POINTS, 'every point acknowledged');
    let lost = 0;
    await eventually('every acknowledged point delivered', () => {
      const delivered = new Map(deviceIds.map((id) => [id, new Set<number>()]));
      for (const m of receiver!.accepted) for (const p of m.data.telemetry) delivered.get(m.deviceId!)?.add(p.ts);
      lost = loads.reduce((sum, load, d) => sum + load.acknowledged.filter((ts) => !delivered.get(deviceIds[d])!.has(ts)).length, 0);
      return lost === 0;
    }, 60_000);
    deviceIds.forEach((id, d) => {
      // First arrival of each point, in arrival order: the order they were acknowledged in (ts = sequence number).
      const seen = new Set<number>();
      const order: number[] = [];
      for (const m of receiver!.accepted) if (m.deviceId === id) for (const p of m.data.telemetry) if (!seen.has(p.ts)) (seen.add(p.ts), order.push(p.ts));
      const acked = new Set(loads[d].acknowledged);
      assert.deepEqual(order.filter((ts) => acked.has(ts)), loads[d].acknowledged, `device ${d} in the order acknowledged`);
    });
    const points = loads.reduce((sum, l) => sum + l.acknowledged.length, 0);
    t.diagnostic(`acknowledged ${points}, lost ${lost}, duplicates ${receiver!.duplicates()}`);
  });
});
