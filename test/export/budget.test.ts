/**
 * The outbox's disk budget: past it, telemetry is still stored and acknowledged but no longer exported; the skipped
 * messages are counted in a metric, and once the outbox drains a `gap` message tells the receiver what it missed.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { startTestServer, type TestServer } from '../support/harness.ts';
import { adminClient, type AdminClient } from '../admin/admin-client.ts';
import { createTokenDevice } from '../support/telemetry-load.ts';
import { eventually, startReceiver, type Receiver } from './receiver.ts';

describe('export outbox budget', () => {
  let server: TestServer;
  let api: AdminClient;
  let receiver: Receiver;

  before(async () => {
    server = await startTestServer({ exportMaxOutboxBytes: 3000, exportRetryBaseMs: 100 });
    api = await adminClient(server);
    receiver = await startReceiver();
  });
  after(async () => {
    await server?.close();
    await receiver?.close();
  });

  const post = (i: number) => fetch(`${server.httpUrl}/api/v1/budget-token/telemetry`, { method: 'POST', body: JSON.stringify({ ts: i, values: { n: i } }) });
  const metric = async (name: string) => {
    const text = await (await fetch(`${server.httpUrl}/metrics`)).text();
    const line = text.split('\n').find((l) => l.startsWith(name));
    return line ? Number(line.split(' ').at(-1)) : 0;
  };

  it('skips export past the budget, keeps acknowledging, and reports the gap', async () => {
    receiver.answer = () => ({ status: 503 });
    assert.equal((await api.post('/api/export/rule', { name: 'budget', kinds: ['telemetry'], destination: { type: 'webhook', url: receiver.url } })).status, 200);
    await createTokenDevice(server.httpUrl, await server.adminToken(), 'budget-token', 'budget-dev');
    for (let i = 1; i <= 10; i++) assert.equal((await post(i)).status, 200);
    await eventually('the outbox counts as full', async () => (await metric('fleetgate_export_outbox_fill_ratio')) >= 1, 60_000);
    assert.ok(server.logLines.some((l) => l.includes('export_outbox_full')), 'a full outbox is logged');
    for (let i = 11; i <= 15; i++) assert.equal((await post(i)).status, 200, 'still acknowledged: the data is stored');
    assert.equal(await metric('fleetgate_export_skipped_total{rule="budget"}'), 5);
    receiver.answer = () => ({ status: 200 });
    await eventually('the gap message delivered', () => receiver.accepted.some((m) => m.kind === 'gap'), 60_000);
    const gap = receiver.accepted.find((m) => m.kind === 'gap')!;
    assert.equal(gap.data.skipped, 5);
    assert.ok(gap.data.from <= gap.data.to);
    const exported = receiver.accepted.filter((m) => m.kind === 'telemetry').map((m) => m.data.telemetry[0].ts);
    assert.deepEqual(exported.sort((a, b) => a - b), [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
    assert.equal((await post(16)).status, 200);
    await eventually('export resumed', () => receiver.accepted.some((m) => m.kind === 'telemetry' && m.data.telemetry[0].ts === 16));
    const stored = await api.get(`/api/plugins/telemetry/DEVICE/${receiver.accepted[0].deviceId}/values/timeseries?keys=n&startTs=0&endTs=100&limit=100`);
    assert.equal(stored.json.n.length, 16, 'every point is stored, exported or not');
  });
});
