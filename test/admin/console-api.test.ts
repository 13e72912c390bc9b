/**
 * The console's own endpoints, as a script uses them: GET /api/fleetgate/info (the ports the transports listen on)
 * and GET /api/fleetgate/overview (devices, provisioning outcomes by status and reason, this node's connections and
 * telemetry counter, health), on SQLite and on PostgreSQL.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import mqtt from 'mqtt';
import { startTestServer, type TestServer } from '../support/harness.ts';
import { skipUnlessPostgres, startPostgres, type TestPostgres } from '../support/postgres.ts';
import { countOutcomes, hourlyOutcomes } from '../../src/admin/console-overview.ts';
import type { AuditEntry } from '../../src/core/model.ts';

async function call<T>(server: TestServer, path: string, init: RequestInit = {}): Promise<{ status: number; body: T }> {
  const res = await fetch(`${server.httpUrl}${path}`, { ...init, headers: { 'x-authorization': `Bearer ${await server.adminToken()}`, 'content-type': 'application/json', ...init.headers } });
  return { status: res.status, body: (await res.json()) as T };
}

interface Overview {
  devices: { total: number; active: number };
  provisionedLast24h: number;
  provisioning: { lastHour: { status: string; reason: string | null; count: number }[]; lastDay: unknown[]; hourly: { start: number; success: number; failure: number }[]; truncated: boolean };
  node: { connections: Record<string, number>; sessions: number; telemetryMessages: number; provisioning: { status: string; reason: string | null; count: number }[] } | null;
  health: { database: string; bus: string };
}

function overviewSuite(name: string, database: () => string | undefined) {
  describe(name, () => {
    let server: TestServer;
    before(async () => {
      const db = database();
      server = await startTestServer(db ? { database: db } : {});
      await call(server, '/api/deviceProfile', {
        method: 'POST',
        body: JSON.stringify({ name: 'Open', provisionType: 'ALLOW_CREATE_NEW_DEVICES', provisionDeviceKey: 'ov-key', profileData: { provisionConfiguration: { type: 'ALLOW_CREATE_NEW_DEVICES', provisionDeviceSecret: 'ov-secret' } } }),
      });
    });
    after(async () => server?.close());

    test('GET /api/fleetgate/info answers the ports the transports really listen on; it needs a token', async () => {
      const info = await call<{ httpPort: number; mqttPort: number; coapPort: number; tls: boolean; mqttTlsPort: number | null }>(server, '/api/fleetgate/info');
      assert.deepEqual(info.body, { tls: false, httpPort: server.ports.http, mqttPort: server.mqttPort, mqttTlsPort: null, coapPort: server.coapPort });
      assert.equal((await fetch(`${server.httpUrl}/api/fleetgate/info`)).status, 401);
    });

    test('GET /api/fleetgate/overview counts devices, provisioning outcomes by status and reason, connections and telemetry', async () => {
      const provision = (deviceName: string, secret: string) =>
        fetch(`${server.httpUrl}/api/v1/provision`, { method: 'POST', body: JSON.stringify({ deviceName, provisionDeviceKey: 'ov-key', provisionDeviceSecret: secret }) }).then((r) => r.json() as Promise<{ credentialsValue: string }>);
      const first = await provision('ov-1', 'ov-secret');
      await provision('ov-2', 'ov-secret');
      await provision('ov-3', 'wrong');
      await provision('ov-1', 'ov-secret'); // a repeat: answered again (DESIGN 3) or refused; either way audited
      const client = await mqtt.connectAsync(`mqtt://127.0.0.1:${server.mqttPort}`, { username: first.credentialsValue, reconnectPeriod: 0 });
      try {
        for (let i = 0; i < 5; i++) await client.publishAsync('v1/devices/me/telemetry', JSON.stringify({ t: i }), { qos: 1 });
        const { status, body } = await call<Overview>(server, '/api/fleetgate/overview');
        assert.equal(status, 200);
        assert.equal(body.devices.total, 2);
        assert.ok(body.devices.active >= 1);
        assert.ok(body.provisionedLast24h >= 2);
        // From the audit log: requests that reached a profile (a wrong secret names none, so it is not audited).
        const hour = body.provisioning.lastHour;
        assert.equal(hour.find((o) => o.status === 'SUCCESS')?.count, hour.some((o) => o.status === 'FAILURE') ? 2 : 3, JSON.stringify(hour));
        assert.ok(hour.filter((o) => o.status === 'FAILURE').every((o) => typeof o.reason === 'string' && o.reason !== ''));
        // From this node's metrics: every request, the wrong secret included.
        assert.equal(body.node!.provisioning.find((o) => o.status === 'NOT_FOUND' && o.reason === 'BAD_KEY_OR_SECRET')?.count, 1, JSON.stringify(body.node!.provisioning));
        assert.equal(body.provisioning.hourly.length, 24);
        assert.equal(body.provisioning.hourly.reduce((n, b) => n + b.success + b.failure, 0), 3);
        assert.equal(body.provisioning.truncated, false);
        assert.ok(body.node!.connections.mqtt >= 1);
        assert.ok(body.node!.telemetryMessages >= 5);
        assert.deepEqual(body.health, { database: 'UP', bus: 'UP' });

        // The console's device table: provisioning time and transport, credentials type, the provision-state filter.
        await call(server, '/api/device?accessToken=admin-made-token', { method: 'POST', body: JSON.stringify({ name: 'ov-admin' }) });
        type Row = { name: string; credentialsType: string; provisioned: { time: number; transport: string } | null; active: boolean; deviceProfileName: string };
        const all = await call<{ data: Row[]; totalElements: number }>(server, '/api/fleetgate/devices?pageSize=10&page=0&sortProperty=name&sortOrder=ASC');
        assert.equal(all.status, 200);
        assert.deepEqual(all.body.data.map((d) => d.name), ['ov-1', 'ov-2', 'ov-admin']);
        const [ov1, , admin] = all.body.data;
        assert.equal(ov1.provisioned?.transport, 'http');
        assert.ok(ov1.provisioned!.time > Date.now() - 60_000);
        assert.equal(ov1.credentialsType, 'ACCESS_TOKEN');
        assert.equal(ov1.active, true);
        assert.equal(admin.provisioned, null);
        assert.equal(admin.deviceProfileName, 'default');
        const notProvisioned = await call<{ data: Row[] }>(server, '/api/fleetgate/devices?pageSize=10&page=0&provisioned=false');
        assert.deepEqual(notProvisioned.body.data.map((d) => d.name), ['ov-admin']);
        const provisioned = await call<{ data: Row[]; totalElements: number }>(server, '/api/fleetgate/devices?pageSize=1&page=1&provisioned=true&sortOrder=DESC');
        assert.equal(provisioned.body.totalElements, 2);
        assert.deepEqual(provisioned.body.data.map((d) => d.name), ['ov-1']);
        const active = await call<{ data: Row[] }>(server, '/api/fleetgate/devices?pageSize=10&page=0&active=true');
        assert.deepEqual(active.body.data.map((d) => d.name), ['ov-1']);
        const searched = await call<{ data: Row[]; totalElements: number }>(server, '/api/fleetgate/devices?pageSize=10&page=0&textSearch=OV-AD');
        assert.deepEqual([searched.body.totalElements, searched.body.data.map((d) => d.name)], [1, ['ov-admin']]);
        const beyond = await call<{ data: Row[]; totalElements: number }>(server, '/api/fleetgate/devices?pageSize=10&page=5&textSearch=ov');
        assert.deepEqual([beyond.body.totalElements, beyond.body.data.length], [3, 0]);
        for (const bad of ['active=maybe', 'provisioned=1x', 'deviceProfileId=nope', 'sortProperty=secret', 'pageSize=0']) {
          const res = await call<{ message: string }>(server, `/api/fleetgate/devices?pageSize=10&page=0&${bad}`);
          assert.equal(res.status, 400, bad);
        }
      } finally {
        await client.endAsync();
      }
    });
  });
}

overviewSuite('console endpoints on SQLite', () => undefined);

describe('console endpoints on PostgreSQL', { skip: skipUnlessPostgres() }, () => {
  let pg: TestPostgres;
  let url = '';
  before(async () => {
    pg = await startPostgres();
    url = await pg.createDatabase();
  });
  after(async () => pg?.stop());
  overviewSuite('overview', () => url);
});

describe('overview grouping', () => {
  const entry = (actionType: string, createdTime: number, reason: string | null): AuditEntry =>
    ({ actionType, createdTime, actionData: { reason }, actionFailureDetails: reason }) as unknown as AuditEntry;
  test('outcomes are counted by status and reason, most frequent first', () => {
    const now = Date.UTC(2026, 0, 1, 12, 30);
    const rows = [entry('PROVISION_SUCCESS', now, null), entry('PROVISION_FAILURE', now, 'DEVICE_EXISTS'), entry('PROVISION_FAILURE', now, 'DEVICE_EXISTS')];
    assert.deepEqual(countOutcomes(rows), [
      { status: 'FAILURE', reason: 'DEVICE_EXISTS', count: 2 },
      { status: 'SUCCESS', reason: null, count: 1 },
    ]);
    const hourly = hourlyOutcomes([...rows, entry('PROVISION_SUCCESS', now - 25 * 3_600_000, null)], now);
    assert.equal(hourly[23].start, Date.UTC(2026, 0, 1, 12));
    assert.deepEqual(hourly[23], { start: Date.UTC(2026, 0, 1, 12), success: 1, failure: 2 });
    assert.equal(hourly.reduce((n, b) => n + b.success + b.failure, 0), 3);
  });
});
