/**
 * Time-series history with ThingsBoard's parameters over real HTTP (spec §4.1, §4.3, §4.4; §7 items 30-37): raw reads,
 * aggregation computed by the database checked against values computed here, calendar buckets in a time zone,
 * deletion, server-side writes, and the keys of a profile's devices. Runs on SQLite (staging included) and, when
 * PostgreSQL is installed, on PostgreSQL.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { startTestServer, type TestServer } from '../support/harness.ts';
import { skipUnlessPostgres, startPostgres, type TestPostgres } from '../support/postgres.ts';
import { adminClient, tbError, type AdminClient } from './admin-client.ts';

const T0 = 1_700_000_000_000;
const POINTS = 200;
const STEP = 137;

/** Deterministic data: `num` mixes longs and quarter doubles, `ints` longs, `txt` strings, `flag` booleans. */
function dataAt(i: number): Record<string, unknown> {
  return { num: i % 3 === 0 ? i * 0.25 : i, ints: (i * 7) % 50, txt: `s${(i * 13) % 97}`, flag: i % 2 === 0 };
}

type Agg = 'AVG' | 'MIN' | 'MAX' | 'SUM' | 'COUNT';

/** What ThingsBoard answers, computed here from the data for fixed buckets from startTs. */
function expected(key: string, agg: Agg, startTs: number, endTs: number, interval: number): { ts: number; value: unknown }[] {
  const buckets = new Map<number, unknown[]>();
  for (let i = 0; i < POINTS; i++) {
    const ts = T0 + i * STEP;
    if (ts < startTs || ts >= endTs) continue;
    const b = Math.floor((ts - startTs) / interval);
    if (!buckets.has(b)) buckets.set(b, []);
    buckets.get(b)!.push(dataAt(i)[key]);
  }
  const out: { ts: number; value: unknown }[] = [];
  for (const [b, values] of [...buckets].sort((x, y) => x[0] - y[0])) {
    const s = startTs + b * interval;
    const e = Math.min(s + interval, endTs);
    const nums = values.filter((v): v is number => typeof v === 'number');
    const strs = values.filter((v): v is string => typeof v === 'string');
    const bools = values.filter((v) => typeof v === 'boolean');
    let value: unknown;
    if (agg === 'COUNT') value = bools.length || strs.length || nums.length;
    else if (agg === 'SUM') value = nums.reduce((a, n) => a + n, 0);
    else if (agg === 'AVG') value = nums.length ? nums.reduce((a, n) => a + n, 0) / nums.length : 0;
    else if (nums.length) value = agg === 'MIN' ? Math.min(...nums) : Math.max(...nums);
    else if (strs.length) value = [...strs].sort()[agg === 'MIN' ? 0 : strs.length - 1];
    else continue;
    out.push({ ts: s + Math.floor((e - s) / 2), value });
  }
  return out;
}

function suite(name: string, start: () => Promise<{ server: TestServer; stop?: () => Promise<void> }>, skip: string | false = false) {
  describe(name, { skip }, () => {
    let server: TestServer;
    let stop: (() => Promise<void>) | undefined;
    let api: AdminClient;
    let base: string;
    let deviceId: string;

    before(async () => {
      ({ server, stop } = await start());
      api = await adminClient(server);
      const profile = (await api.post('/api/deviceProfile', { name: 'Aggregated' })).json;
      const device = (await api.post('/api/device?accessToken=agg-token', { name: 'agg-device', deviceProfileId: profile.id })).json;
      deviceId = device.id.id;
      base = `/api/plugins/telemetry/DEVICE/${deviceId}`;
      // Half through the admin API as the server, half as the device itself (SQLite stages these sparse batches).
      const half = POINTS / 2;
      const batch = Array.from({ length: half }, (_, i) => ({ ts: T0 + i * STEP, values: dataAt(i) }));
      const saved = await api.post(`${base}/timeseries/ANY?scope=ANY`, batch);
      assert.equal(saved.status, 200, saved.text);
      for (let i = half; i < POINTS; i++) {
        const res = await fetch(`${server.httpUrl}/api/v1/agg-token/telemetry`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ ts: T0 + i * STEP, values: dataAt(i) }) });
        assert.equal(res.status, 200);
      }
      await api.post(`/api/plugins/telemetry/DEVICE/${deviceId}/SERVER_SCOPE`, { serverAttr: 1 });
    });
    after(async () => {
      await server.close();
      await stop?.();
    });

    it('aggregates AVG, MIN, MAX, SUM and COUNT per fixed interval exactly as computed here', async () => {
      const startTs = T0 + 100;
      const endTs = T0 + POINTS * STEP - 50;
      for (const interval of [5000, 1000, 30_000]) {
        for (const agg of ['AVG', 'MIN', 'MAX', 'SUM', 'COUNT'] as Agg[]) {
          const res = await api.get(`${base}/values/timeseries?keys=num,ints,txt,flag&startTs=${startTs}&endTs=${endTs}&interval=${interval}&agg=${agg}&useStrictDataTypes=true&limit=1`);
          assert.equal(res.status, 200, res.text);
          for (const key of ['num', 'ints', 'txt', 'flag']) {
            const want = expected(key, agg, startTs, endTs, interval);
            if (want.length === 0) assert.equal(res.json[key], undefined, `${agg} ${key}`);
            else assert.deepEqual(res.json[key], want, `${agg} ${key} every ${interval} ms`);
          }
        }
      }
    });

    it('renders aggregates as strings in Java form unless useStrictDataTypes', async () => {
      const res = await api.get(`${base}/values/timeseries?keys=ints,num&startTs=${T0}&endTs=${T0 + 4 * STEP}&interval=100000&agg=AVG`);
      const ints = [0, 7, 14, 21];
      assert.deepEqual(res.json.ints, [{ ts: T0 + Math.floor((4 * STEP) / 2), value: `${ints.reduce((a, b) => a + b) / 4}` }]);
      assert.equal(res.json.ints[0].value, '10.5');
      const sum = await api.get(`${base}/values/timeseries?keys=ints&startTs=${T0}&endTs=${T0 + 4 * STEP}&interval=100000&agg=SUM`);
      assert.equal(sum.json.ints[0].value, '42', 'a sum of longs is a long');
      const strict = await api.get(`${base}/values/timeseries?keys=ints&startTs=${T0}&endTs=${T0 + 4 * STEP}&interval=100000&agg=AVG&useStrictDataTypes=True`);
      assert.equal(strict.json.ints[0].value, 10.5);
      assert.match(strict.text, /"value":10\.5/);
    });

    it('reads raw points in [startTs, endTs) with limit and orderBy; agg with interval 0 is raw too', async () => {
      const desc = await api.get(`${base}/values/timeseries?keys=ints&startTs=${T0}&endTs=${T0 + 3 * STEP}`);
      assert.deepEqual(desc.json.ints.map((p: any) => p.ts), [T0 + 2 * STEP, T0 + STEP, T0], 'endTs is exclusive');
      const asc = await api.get(`${base}/values/timeseries?key=ints&key=num&startTs=${T0}&endTs=${T0 + 10 * STEP}&orderBy=asc&limit=2`);
      assert.deepEqual(asc.json.ints.map((p: any) => p.ts), [T0, T0 + STEP]);
      assert.deepEqual(Object.keys(asc.json).sort(), ['ints', 'num']);
      const rawAgg = await api.get(`${base}/values/timeseries?keys=ints&startTs=${T0}&endTs=${T0 + 3 * STEP}&agg=SUM&interval=0`);
      assert.equal(rawAgg.json.ints.length, 3);
      const keysWins = await api.get(`${base}/values/timeseries?keys=num&key=ints&startTs=${T0}&endTs=${T0 + STEP}`);
      assert.deepEqual(Object.keys(keysWins.json), ['ints'], 'repeated key wins over keys');
    });

    it('rejects bad parameters with 400 and ThingsBoard messages', async () => {
      const range = `startTs=${T0}&endTs=${T0 + 100_000_000}`;
      const tooMany = await api.get(`${base}/values/timeseries?keys=ints&${range}&interval=1000&agg=AVG`);
      assert.equal(tooMany.status, 400);
      assert.match(tbError(tooMany).message, /^Incorrect TsKvQuery\. Number of intervals is to high - 100000\./);
      const badAgg = await api.get(`${base}/values/timeseries?keys=ints&${range}&agg=MEDIAN`);
      assert.equal(tbError(badAgg).message, 'No enum constant org.thingsboard.server.common.data.kv.Aggregation.MEDIAN');
      const badType = await api.get(`${base}/values/timeseries?keys=ints&${range}&agg=SUM&intervalType=month`);
      assert.equal(badType.status, 400);
      const negative = await api.get(`${base}/values/timeseries?keys=ints&startTs=${T0}&endTs=${T0 + 1000}&agg=SUM&interval=-5`);
      assert.equal(negative.status, 400);
      assert.equal((await api.get(`${base}/values/timeseries?keys=ints&${range}&limit=0`)).status, 400);
      assert.equal((await api.get(`${base}/values/timeseries?keys=ints&startTs=abc&endTs=1`)).status, 400);
      assert.equal((await api.get(`${base}/values/timeseries?keys=ints&${range}&useStrictDataTypes=perhaps`)).status, 400);
    });

    // spec §7 item 30 testTelemetryRequests: SUM by WEEK_ISO and MONTH in Europe/Kyiv
    it('sums by calendar weeks and months in a time zone', async () => {
      const kyiv = (iso: string) => Date.parse(iso); // ISO strings below carry Kyiv's winter offset, +02:00
      const cal = (await api.post('/api/device', { name: 'calendar-device' })).json;
      const calBase = `/api/plugins/telemetry/DEVICE/${cal.id.id}`;
      const points = [
        { ts: kyiv('2024-01-02T10:00:00+02:00'), values: { v: 1 } },
        { ts: kyiv('2024-01-03T10:00:00+02:00'), values: { v: 3 } },
        { ts: kyiv('2024-01-08T00:30:00+02:00'), values: { v: 7 } }, // Monday in Kyiv, still Sunday in UTC
        { ts: kyiv('2024-01-16T12:00:00+02:00'), values: { v: 11 } },
      ];
      assert.equal((await api.post(`${calBase}/timeseries/ANY`, points)).status, 200);
      const startTs = kyiv('2024-01-01T00:00:00+02:00');
      const endTs = kyiv('2024-01-22T00:00:00+02:00');
      const week = 7 * 86_400_000;
      const weeks = await api.get(`${calBase}/values/timeseries?keys=v&startTs=${startTs}&endTs=${endTs}&agg=SUM&intervalType=WEEK_ISO&timeZone=Europe/Kyiv&useStrictDataTypes=true`);
      assert.equal(weeks.status, 200, weeks.text);
      assert.deepEqual(weeks.json.v, [
        { ts: startTs + week / 2, value: 4 },
        { ts: startTs + week + week / 2, value: 7 },
        { ts: startTs + 2 * week + week / 2, value: 11 },
      ]);
      const month = await api.get(`${calBase}/values/timeseries?key=v&startTs=${startTs}&endTs=${endTs}&agg=SUM&intervalType=MONTH&timeZone=Europe/Kyiv&useStrictDataTypes=true`);
      assert.deepEqual(month.json.v, [{ ts: startTs + Math.floor((endTs - startTs) / 2), value: 22 }]);
      const sundayWeeks = await api.get(`${calBase}/values/timeseries?keys=v&startTs=${startTs}&endTs=${endTs}&agg=SUM&intervalType=WEEK&timeZone=Europe/Kyiv&useStrictDataTypes=true`);
      // Sunday-Saturday: [Jan 1, Jan 7), [Jan 7, Jan 14), [Jan 14, Jan 21), [Jan 21, Jan 22)
      assert.deepEqual(sundayWeeks.json.v.map((p: any) => p.value), [4, 7, 11]);
      assert.equal(sundayWeeks.json.v[0].ts, startTs + (6 * 86_400_000) / 2);
    });

    // spec §7 items 31, 32, 36
    it('deletes by range, all data with or without the latest value, and rewrites the latest when asked', async () => {
      const d = (await api.post('/api/device', { name: 'delete-device' })).json;
      const dBase = `/api/plugins/telemetry/DEVICE/${d.id.id}`;
      const pts = [1000, 2000, 3000, 4000].map((ts) => ({ ts, values: { a: ts / 1000, b: ts / 1000, 'c,d': 1 } }));
      assert.equal((await api.post(`${dBase}/timeseries/ANY`, pts)).status, 200);
      assert.equal((await api.call('DELETE', `${dBase}/timeseries/delete?keys=a&startTs=3500&endTs=5000&rewriteLatestIfDeleted=true`)).status, 200);
      const a = await api.get(`${dBase}/values/timeseries?keys=a&startTs=0&endTs=10000`);
      assert.deepEqual(a.json.a.map((p: any) => p.ts), [3000, 2000, 1000]);
      assert.deepEqual((await api.get(`${dBase}/values/timeseries?keys=a`)).json.a, [{ ts: 3000, value: '3' }], 'latest rewritten to the newest point left');
      assert.equal((await api.call('DELETE', `${dBase}/timeseries/delete?keys=b&deleteAllDataForKeys=true&deleteLatest=false`)).status, 200);
      assert.deepEqual((await api.get(`${dBase}/values/timeseries?keys=b&startTs=0&endTs=10000`)).json, {});
      assert.deepEqual((await api.get(`${dBase}/values/timeseries?keys=b`)).json.b, [{ ts: 4000, value: '4' }], 'latest kept');
      assert.equal((await api.call('DELETE', `${dBase}/timeseries/delete?key=a&key=c,d&deleteAllDataForKeys=true`)).status, 200);
      const latest = await api.get(`${dBase}/values/timeseries?key=a&key=c,d`);
      assert.equal(latest.json.a[0].value, null, 'latest gone');
      assert.equal(latest.json['c,d'][0].value, null, 'a key with a comma, given as a repeated key');
      const empty = await api.call('DELETE', `${dBase}/timeseries/delete?keys=`);
      assert.equal(empty.status, 400);
      assert.equal(tbError(empty).message, 'Empty keys: []');
      const noRange = await api.call('DELETE', `${dBase}/timeseries/delete?keys=a`);
      assert.equal(tbError(noRange).message, "When deleteAllDataForKeys is false, start and end timestamp values shouldn't be empty");
      const audit = (await api.get('/api/audit/logs?pageSize=1000&page=0')).json.data;
      assert.ok(audit.some((e: any) => e.actionType === 'TIMESERIES_DELETED' && e.entityId?.id === d.id.id));
      assert.ok(audit.some((e: any) => e.actionType === 'TIMESERIES_UPDATED' && e.entityId?.id === d.id.id));
    });

    it('server-side writes accept every telemetry form, the TTL route, and reject bad bodies', async () => {
      const w = (await api.post('/api/device', { name: 'write-device' })).json;
      const wBase = `/api/plugins/telemetry/DEVICE/${w.id.id}`;
      assert.equal((await api.post(`${wBase}/timeseries/ANY`, { plain: 5 })).status, 200);
      assert.equal((await api.post(`${wBase}/timeseries/ANY/0`, { ts: '1234', values: { withTtl: 2.5 } })).status, 200);
      const latest = await api.get(`${wBase}/values/timeseries?keys=plain,withTtl&useStrictDataTypes=true`);
      assert.equal(latest.json.plain[0].value, 5);
      assert.deepEqual(latest.json.withTtl, [{ ts: 1234, value: 2.5 }]);
      const bad = await api.call('POST', `${wBase}/timeseries/ANY`, { raw: '"text"', contentType: 'application/json' });
      assert.equal(bad.status, 400);
    });

    it('lists the time-series and attribute keys of a profile\'s devices', async () => {
      const profileId = (await api.get(`/api/device/${deviceId}`)).json.deviceProfileId.id;
      const ts = await api.get(`/api/deviceProfile/devices/keys/timeseries?deviceProfileId=${profileId}`);
      assert.deepEqual(ts.json, ['flag', 'ints', 'num', 'txt']);
      const attrs = await api.get(`/api/deviceProfile/devices/keys/attributes?deviceProfileId=${profileId}`);
      assert.deepEqual(attrs.json, ['serverAttr']);
      const all = await api.get('/api/deviceProfile/devices/keys/timeseries');
      assert.ok(all.json.includes('v') && all.json.includes('num'));
      assert.equal((await api.get('/api/deviceProfile/devices/keys/timeseries?deviceProfileId=bad')).status, 400);
      assert.equal((await api.get('/api/deviceProfile/devices/keys/attributes?deviceProfileId=5a0d6f4e-1111-4222-8333-444455556666')).status, 404);
    });
  });
}

suite('time-series history and aggregation (SQLite)', async () => ({ server: await startTestServer() }));

let pg: TestPostgres | undefined;
suite(
  'time-series history and aggregation (PostgreSQL)',
  async () => {
    pg = await startPostgres();
    const database = await pg.createDatabase();
    return { server: await startTestServer({ database }), stop: () => pg!.stop() };
  },
  skipUnlessPostgres(),
);
