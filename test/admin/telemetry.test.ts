import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { DeviceIdentity } from '../../src/core/api.ts';
import { startTestServer, type TestServer } from '../support/harness.ts';
import { adminClient, tbError, type AdminClient, deviceWithIdentity } from './admin-client.ts';

describe('time series over the admin API', () => {
  let server: TestServer;
  let api: AdminClient;
  let deviceId: string;
  let identity: DeviceIdentity;
  let base: string;

  before(async () => {
    server = await startTestServer();
    api = await adminClient(server);
    ({ deviceId, base, identity } = await deviceWithIdentity(server, api, 'telemetry-device-token', 'Telemetry device'));
    await server.core.telemetry.ingestJson(identity, '{"temperature":21.5,"count":3,"on":true,"label":"abc","cfg":{"a":1},"whole":1.0,"big":9007199254740993,"bigInJson":{"n":12345678901234567890}}');
    await server.core.telemetry.ingestJson(
      identity,
      '[{"ts":1000,"values":{"series":1}},{"ts":2000,"values":{"series":2}},{"ts":3000,"values":{"series":3,"other":"x"}}]',
    );
  });
  after(() => server.close());

  it('returns latest values as strings by default, as ThingsBoard does', async () => {
    const res = await api.get(`${base}/values/timeseries?keys=temperature,count,on,label,cfg,whole`);
    assert.equal(res.status, 200);
    const values = Object.fromEntries(Object.entries(res.json as Record<string, { ts: number; value: unknown }[]>).map(([k, v]) => [k, v[0].value]));
    assert.deepEqual(values, { temperature: '21.5', count: '3', on: 'true', label: 'abc', cfg: '{"a":1}', whole: '1.0' });
    assert.equal(typeof res.json.temperature[0].ts, 'number');
    assert.equal(res.json.temperature.length, 1);
  });

  it('returns typed values with useStrictDataTypes=true, doubles as Java prints them, big numbers in JSON exact', async () => {
    const res = await api.get(`${base}/values/timeseries?keys=temperature,count,on,label,cfg,whole,bigInJson&useStrictDataTypes=true`);
    assert.equal(res.status, 200);
    assert.equal(res.json.temperature[0].value, 21.5);
    assert.equal(res.json.count[0].value, 3);
    assert.equal(res.json.on[0].value, true);
    assert.equal(res.json.label[0].value, 'abc');
    assert.deepEqual(res.json.cfg[0].value, { a: 1 });
    assert.match(res.text, /"whole":\[\{"ts":\d+,"value":1\.0\}\]/);
    assert.match(res.text, /"value":\{"n":12345678901234567890\}/);
  });

  it('keeps a LONG beyond 2^53 exact', async () => {
    const res = await api.get(`${base}/values/timeseries?keys=big&useStrictDataTypes=true`);
    assert.match(res.text, /"value":9007199254740993\b/);
    assert.equal((await api.get(`${base}/values/timeseries?keys=big`)).json.big[0].value, '9007199254740993');
  });

  it('answers a requested key without data with a null value', async () => {
    const res = await api.get(`${base}/values/timeseries?keys=temperature,nothing`);
    assert.equal(res.status, 200);
    assert.equal(res.json.nothing.length, 1);
    assert.equal(res.json.nothing[0].value, null);
    assert.equal(res.json.temperature[0].value, '21.5');
  });

  it('returns every latest value when no keys are given', async () => {
    const res = await api.get(`${base}/values/timeseries`);
    assert.equal(res.status, 200);
    for (const key of ['temperature', 'count', 'series', 'other']) assert.ok(res.json[key], key);
    assert.equal(res.json.series[0].ts, 3000);
    assert.equal(res.json.series[0].value, '3');
  });

  it('lists the time series keys', async () => {
    const res = await api.get(`${base}/keys/timeseries`);
    assert.equal(res.status, 200);
    assert.deepEqual([...res.json].sort(), ['big', 'bigInJson', 'cfg', 'count', 'label', 'on', 'other', 'series', 'temperature', 'whole']);
  });

  it('reads a range newest first by default, honouring orderBy and limit', async () => {
    const desc = await api.get(`${base}/values/timeseries?keys=series&startTs=0&endTs=5000`);
    assert.equal(desc.status, 200);
    assert.deepEqual(desc.json, { series: [{ ts: 3000, value: '3' }, { ts: 2000, value: '2' }, { ts: 1000, value: '1' }] });
    const asc = await api.get(`${base}/values/timeseries?keys=series&startTs=0&endTs=5000&orderBy=ASC&limit=2`);
    assert.deepEqual(asc.json, { series: [{ ts: 1000, value: '1' }, { ts: 2000, value: '2' }] });
    const strict = await api.get(`${base}/values/timeseries?keys=series&startTs=1500&endTs=2500&useStrictDataTypes=true`);
    assert.deepEqual(strict.json, { series: [{ ts: 2000, value: 2 }] });
  });

  it('leaves out keys without data in the range', async () => {
    const res = await api.get(`${base}/values/timeseries?keys=series,other,temperature&startTs=0&endTs=2500`);
    assert.deepEqual(Object.keys(res.json), ['series']);
  });

  it('answers {} to a range without keys (TB testTelemetryRequests) and 400 to bad parameters', async () => {
    const noKeys = await api.get(`${base}/values/timeseries?startTs=0&endTs=5000`);
    assert.equal(noKeys.status, 200);
    assert.deepEqual(noKeys.json, {});
    assert.equal((await api.get(`${base}/values/timeseries?keys=series&startTs=0&endTs=5000&interval=1000&agg=avg`)).status, 400);
    assert.equal((await api.get(`${base}/values/timeseries?keys=series&startTs=zero&endTs=5000`)).status, 400);
    assert.equal((await api.get(`${base}/values/timeseries?keys=series&startTs=0&endTs=5000&orderBy=UP`)).status, 400);
  });

  it('answers 404 for an unknown device', async () => {
    const res = await api.get('/api/plugins/telemetry/DEVICE/00000000-0000-4000-8000-00000000dead/values/timeseries');
    assert.equal(res.status, 404);
    assert.equal(tbError(res).errorCode, 32);
  });

  it('saves telemetry posted by the admin, keeping 1.0 a double', async () => {
    const res = await api.call('POST', `${base}/timeseries/ANY`, { raw: '{"ts":5000,"values":{"adminKey":1.0}}' });
    assert.equal(res.status, 200, res.text);
    const read = await api.get(`${base}/values/timeseries?keys=adminKey`);
    assert.deepEqual(read.json, { adminKey: [{ ts: 5000, value: '1.0' }] });
    assert.equal((await api.call('POST', `${base}/timeseries/ANY`, { raw: '42' })).status, 400);
    assert.equal((await api.call('POST', `${base}/timeseries/ANY`, { raw: '{"a":' })).status, 400);
  });

  it('needs a token', async () => {
    assert.equal((await api.get(`${base}/values/timeseries`, { token: null })).status, 401);
  });
});
