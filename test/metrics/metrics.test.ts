import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import mqtt from 'mqtt';
import { startTestServer, type TestServer } from '../support/harness.ts';

/** The value of a sample whose labels include `labels`; 0 when there is none. */
function sample(text: string, name: string, labels: Record<string, string> = {}): number {
  for (const line of text.split('\n')) {
    const m = /^([a-zA-Z_:][\w:]*)(\{(.*)\})? (\S+)$/.exec(line);
    if (!m || m[1] !== name) continue;
    const found = Object.fromEntries([...(m[3] ?? '').matchAll(/(\w+)="([^"]*)"/g)].map((l) => [l[1], l[2]]));
    if (Object.entries(labels).every(([k, v]) => found[k] === v)) return Number(m[4]);
  }
  return 0;
}

describe('GET /metrics', () => {
  let server: TestServer;
  const scrape = async () => {
    const res = await fetch(`${server.httpUrl}/metrics`);
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-type') ?? '', /^text\/plain; version=0.0.4/);
    return res.text();
  };

  before(async () => {
    server = await startTestServer();
    const headers = { 'x-authorization': `Bearer ${await server.adminToken()}`, 'content-type': 'application/json' };
    await fetch(`${server.httpUrl}/api/deviceProfile`, {
      method: 'POST',
      headers,
      body: JSON.stringify({ name: 'M', provisionType: 'ALLOW_CREATE_NEW_DEVICES', provisionDeviceKey: 'm-key', profileData: { provisionConfiguration: { type: 'ALLOW_CREATE_NEW_DEVICES', provisionDeviceSecret: 'm-secret' } } }),
    });
  });
  after(() => server.close());

  test('is open by default and has process metrics and every fleetgate family', async () => {
    const text = await scrape();
    for (const name of ['process_cpu_user_seconds_total', 'nodejs_heap_size_used_bytes', 'fleetgate_sessions_open', 'fleetgate_connections_open', 'fleetgate_provisioning_requests_total', 'fleetgate_telemetry_messages_total', 'fleetgate_telemetry_data_points_total', 'fleetgate_batch_commit_seconds', 'fleetgate_rejected_connections_total']) {
      assert.match(text, new RegExp(`^# TYPE ${name} `, 'm'), name);
    }
  });

  test('provisioning outcomes, telemetry, commits and rejected requests move with traffic', async () => {
    const before = await scrape();
    const provision = (secret: string, name: string) =>
      fetch(`${server.httpUrl}/api/v1/provision`, { method: 'POST', body: JSON.stringify({ deviceName: name, provisionDeviceKey: 'm-key', provisionDeviceSecret: secret }) }).then((r) => r.json() as Promise<{ credentialsValue: string }>);
    const { credentialsValue: token } = await provision('m-secret', 'metered-1');
    await provision('wrong', 'metered-2');
    await provision('m-secret', 'metered-1'); // DEVICE_EXISTS (too soon for a lost-response retry)
    assert.equal((await fetch(`${server.httpUrl}/api/v1/${token}/telemetry`, { method: 'POST', body: '{"a":1,"b":2}' })).status, 200);
    assert.equal((await fetch(`${server.httpUrl}/api/v1/${token}/telemetry`, { method: 'POST', body: '[{"ts":1,"values":{"c":3}}]' })).status, 200);
    assert.equal((await fetch(`${server.httpUrl}/api/v1/no-such-token/telemetry`, { method: 'POST', body: '{"a":1}' })).status, 401);
    const after = await scrape();
    const delta = (name: string, labels?: Record<string, string>) => sample(after, name, labels) - sample(before, name, labels);
    assert.equal(delta('fleetgate_provisioning_requests_total', { transport: 'http', status: 'SUCCESS' }), 1);
    assert.equal(delta('fleetgate_provisioning_requests_total', { transport: 'http', status: 'NOT_FOUND', reason: 'BAD_KEY_OR_SECRET' }), 1);
    assert.equal(delta('fleetgate_provisioning_requests_total', { transport: 'http', status: 'FAILURE', reason: 'DEVICE_EXISTS' }), 1);
    assert.equal(delta('fleetgate_telemetry_messages_total'), 2);
    assert.equal(delta('fleetgate_telemetry_data_points_total'), 3);
    assert.ok(delta('fleetgate_batch_commit_seconds_count') >= 1);
    assert.ok(delta('fleetgate_batch_commit_rows_total') >= 3);
    assert.equal(delta('fleetgate_rejected_connections_total', { transport: 'http', reason: 'UNAUTHORIZED' }), 1);
    assert.ok(!after.includes(token), 'no token in the metrics');
  });

  test('open sessions and MQTT connections follow a connected client', async () => {
    const { credentialsValue: token } = (await (
      await fetch(`${server.httpUrl}/api/v1/provision`, { method: 'POST', body: JSON.stringify({ deviceName: 'mqtt-metered', provisionDeviceKey: 'm-key', provisionDeviceSecret: 'm-secret' }) })
    ).json()) as { credentialsValue: string };
    const client = await mqtt.connectAsync(`mqtt://127.0.0.1:${server.mqttPort}`, { username: token, reconnectPeriod: 0 });
    try {
      const text = await scrape();
      assert.equal(sample(text, 'fleetgate_sessions_open'), 1);
      assert.equal(sample(text, 'fleetgate_connections_open', { transport: 'mqtt' }), 1);
      assert.ok(sample(text, 'fleetgate_connections_open', { transport: 'http' }) >= 1);
    } finally {
      await client.endAsync();
    }
    let open = 1;
    for (let i = 0; i < 100 && open !== 0; i++) {
      open = sample(await scrape(), 'fleetgate_sessions_open');
      if (open !== 0) await new Promise((r) => setTimeout(r, 20));
    }
    assert.equal(open, 0);
  });
});

describe('GET /metrics configuration', () => {
  test('with metricsToken it requires that bearer token', async () => {
    const server = await startTestServer({ metricsToken: 'scrape-secret' });
    try {
      assert.equal((await fetch(`${server.httpUrl}/metrics`)).status, 401);
      assert.equal((await fetch(`${server.httpUrl}/metrics`, { headers: { authorization: 'Bearer wrong' } })).status, 401);
      assert.equal((await fetch(`${server.httpUrl}/metrics`, { headers: { authorization: 'Bearer scrape-secret' } })).status, 200);
    } finally {
      await server.close();
    }
  });
  test('metrics off: no /metrics route', async () => {
    const server = await startTestServer({ metrics: 'off' });
    try {
      assert.equal((await fetch(`${server.httpUrl}/metrics`)).status, 404);
    } finally {
      await server.close();
    }
  });
});
