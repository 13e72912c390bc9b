/**
 * Telemetry stored as ts_kv_chunk rows (SQLite) read through the admin API: raw history, aggregation and delete see
 * chunk points as rows; a damaged chunk answers 500 with a clear log line and the server keeps serving.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import BetterSqlite3 from 'better-sqlite3';
import { after, before, describe, it } from 'node:test';
import { startTestServer, type TestServer } from '../support/harness.ts';
import { adminClient, deviceWithIdentity, tbError, type AdminClient } from './admin-client.ts';
import { dbl, lng, writeChunk, writeRows } from '../store/chunk-fixtures.ts';

describe('chunked telemetry over the admin API (SQLite)', () => {
  let server: TestServer;
  let api: AdminClient;
  let deviceId: string;
  let base: string;
  let raw: BetterSqlite3.Database;

  before(async () => {
    server = await startTestServer();
    api = await adminClient(server);
    ({ deviceId, base } = await deviceWithIdentity(server, api, 'chunk-device-token', 'Chunk device'));
    raw = new BetterSqlite3(join(server.dataDir, 'fleetgate.db'));
    raw.pragma('busy_timeout = 5000');
    raw.defaultSafeIntegers(true);
    writeChunk(raw, deviceId, 'temp', [1000, 2000, 3000, 4000].map((ts) => ({ ts, value: dbl(ts / 100) })));
    writeChunk(raw, deviceId, 'temp', [3000, 5000].map((ts) => ({ ts, value: dbl(-ts / 100) })));
    writeRows(raw, deviceId, 'temp', [{ ts: 2000, value: dbl(0.5) }]);
    writeChunk(raw, deviceId, 'count', [1000, 2000].map((ts) => ({ ts, value: lng(ts / 1000) })));
  });
  after(async () => {
    raw.close();
    await server.close();
  });

  it('reads chunk points and rows together, newest first', async () => {
    const res = await api.get(`${base}/values/timeseries?keys=temp&startTs=0&endTs=10000&useStrictDataTypes=true`);
    assert.equal(res.status, 200);
    assert.deepEqual(res.json, { temp: [{ ts: 5000, value: -50 }, { ts: 4000, value: 40 }, { ts: 3000, value: -30 }, { ts: 2000, value: 0.5 }, { ts: 1000, value: 10 }] });
  });

  it('aggregates chunk points', async () => {
    const res = await api.get(`${base}/values/timeseries?keys=temp,count&startTs=0&endTs=6000&interval=6000&agg=SUM&useStrictDataTypes=true`);
    assert.equal(res.status, 200);
    assert.equal(res.json.temp[0].value, -50 + 40 - 30 + 0.5 + 10);
    assert.equal(res.json.count[0].value, 3);
  });

  it('deletes chunk points in a range', async () => {
    const res = await api.delete(`/api/plugins/telemetry/DEVICE/${deviceId}/timeseries/delete?keys=temp&startTs=2500&endTs=4500&deleteAllDataForKeys=false`);
    assert.equal(res.status, 200);
    const back = await api.get(`${base}/values/timeseries?keys=temp&startTs=0&endTs=10000&useStrictDataTypes=true`);
    assert.deepEqual(back.json.temp.map((p: { ts: number }) => p.ts), [5000, 2000, 1000]);
  });

  it('answers 500 for a damaged chunk, logs which row, and keeps serving', async () => {
    const seq = writeChunk(raw, deviceId, 'bad', [{ ts: 1000, value: dbl(1) }]);
    raw.prepare('update ts_kv_chunk set points = x\'0102\' where seq = ?').run(seq);
    const res = await api.get(`${base}/values/timeseries?keys=bad&startTs=0&endTs=10000`);
    assert.equal(res.status, 500);
    assert.equal(tbError(res).errorCode, 2);
    assert.ok(server.logLines.some((l) => l.includes(`ts_kv_chunk row ${seq}`) && l.includes('not a multiple of 16')), 'the log names the damaged row');
    const ok = await api.get(`${base}/values/timeseries?keys=count&startTs=0&endTs=10000`);
    assert.equal(ok.status, 200);
    assert.equal(ok.json.count.length, 2);
  });
});
