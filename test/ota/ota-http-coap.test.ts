/**
 * The SDK flow over HTTP (spec thingsboard-ota §4.2) with fetch, and over CoAP (§4.3) with libcoap's block-wise GET
 * (`coap-client-notls -b`), plus the answers each gives to wrong or missing requests.
 */
import assert from 'node:assert/strict';
import { readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { coapClient, coapClientSkip } from '../transports/coap/support.ts';
import { loggablePath } from '../../src/transports/coap/requests.ts';
import { latest, otaDevice, otaFixture, sha256, type OtaFixture } from './ota-setup.ts';

describe('OTA over HTTP (the SDK flow with fetch)', () => {
  let f: OtaFixture;
  let device: { id: string; token: string };
  before(async () => {
    f = await otaFixture('http');
    device = await otaDevice(f, 'http-device');
  });
  after(() => f.server.close());

  const url = (path: string, query: Record<string, string | number>) => `${f.server.httpUrl}/api/v1/${device.token}/${path}?${new URLSearchParams(Object.entries(query).map(([k, v]) => [k, String(v)]))}`;

  for (const [path, prefix] of [['firmware', 'fw'], ['software', 'sw']] as const) {
    it(`${path}: chunks 0..ceil(size/chunk) inclusive (the SDK relies on the empty 200 past the end), checksum verified, states reported`, async () => {
      const attrs = await (await fetch(`${f.server.httpUrl}/api/v1/${device.token}/attributes?sharedKeys=${prefix}_title,${prefix}_version,${prefix}_size,${prefix}_checksum`)).json();
      const shared = (attrs as { shared: Record<string, any> }).shared;
      const size = 65536;
      const parts: Buffer[] = [];
      const last = Math.ceil(shared[`${prefix}_size`] / size);
      for (let chunk = 0; chunk <= last; chunk++) {
        const res = await fetch(url(path, { title: shared[`${prefix}_title`], version: shared[`${prefix}_version`], size, chunk }));
        assert.equal(res.status, 200);
        const body = Buffer.from(await res.arrayBuffer());
        if (chunk === last) assert.equal(body.length, 0);
        else assert.equal(res.headers.get('content-disposition'), `attachment;filename=${shared[`${prefix}_title`]}.bin`);
        parts.push(body);
      }
      assert.equal(sha256(Buffer.concat(parts)), shared[`${prefix}_checksum`]);
      for (const state of ['DOWNLOADED', 'VERIFIED', 'UPDATING', 'UPDATED']) {
        const r = await fetch(`${f.server.httpUrl}/api/v1/${device.token}/telemetry`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ [`${prefix}_state`]: state }) });
        assert.equal(r.status, 200);
      }
      assert.equal((await latest(f, device.id, `${prefix}_state`))[`${prefix}_state`], 'UPDATED');
    });
  }

  it('size 0 (or absent) is the whole package, streamed; /metrics counts what devices got', async () => {
    const served = async () => Number(/^fleetgate_ota_bytes_served_total (\d+)/m.exec(await (await fetch(`${f.server.httpUrl}/metrics`)).text())?.[1]);
    const before = await served();
    const res = await fetch(url('firmware', { title: f.firmware.title, version: f.firmware.version }));
    assert.equal(res.status, 200);
    assert.equal(res.headers.get('content-length'), String(f.firmware.data.length));
    assert.ok(Buffer.from(await res.arrayBuffer()).equals(f.firmware.data));
    assert.equal((await served()) - before, f.firmware.data.length);
  });

  it("wrong title or version -> 400; bad token -> 401; nothing assigned -> 404; bad numbers -> 400 (ThingsBoard's statuses)", async () => {
    assert.equal((await fetch(url('firmware', { title: 'other', version: f.firmware.version, size: 10 }))).status, 400);
    assert.equal((await fetch(url('firmware', { title: f.firmware.title, version: '9.9', size: 10 }))).status, 400);
    assert.equal((await fetch(`${f.server.httpUrl}/api/v1/${device.token}/firmware?size=10`)).status, 400);
    assert.equal((await fetch(url('firmware', { title: f.firmware.title, version: f.firmware.version, size: 'ten' }))).status, 400);
    assert.equal((await fetch(url('firmware', { title: f.firmware.title, version: f.firmware.version, size: 10, chunk: -1 }))).status, 400);
    assert.equal((await fetch(`${f.server.httpUrl}/api/v1/not-a-token/firmware?title=a&version=b`)).status, 401);
    const other = await f.api('POST', '/api/deviceProfile', { name: 'http nothing assigned', type: 'DEFAULT', transportType: 'DEFAULT' });
    await f.api('POST', '/api/device?accessToken=http-bare', { name: 'http-bare', deviceProfileId: other.json.id });
    assert.equal((await fetch(`${f.server.httpUrl}/api/v1/http-bare/firmware?title=a&version=b`)).status, 404);
  });
});

describe('OTA over CoAP (coap-client-notls, block-wise GET)', { skip: coapClientSkip() }, () => {
  let f: OtaFixture;
  let device: { id: string; token: string };
  const out = join(tmpdir(), `fleetgate-ota-coap-${process.pid}`);
  before(async () => {
    f = await otaFixture('coap', { firmware: 100_000, software: 3000 });
    device = await otaDevice(f, 'coap-device');
  });
  after(async () => {
    rmSync(`${out}-fw`, { force: true });
    rmSync(`${out}-sw`, { force: true });
    await f.server.close();
  });

  const base = () => `coap://127.0.0.1:${f.server.coapPort}`;

  for (const prefix of ['fw', 'sw'] as const) {
    it(`${prefix}: the whole package with Block2 (-b 1024) at /${prefix}/{token}, checksum verified`, async () => {
      const pkg = prefix === 'fw' ? f.firmware : f.software;
      const result = await coapClient(['-m', 'get', '-b', '1024', '-o', `${out}-${prefix}`, `${base()}/${prefix}/${device.token}?title=${pkg.title}&version=${pkg.version}`], 60_000);
      assert.equal(result.code, 0, result.stderr);
      const bytes = readFileSync(`${out}-${prefix}`);
      assert.equal(bytes.length, pkg.data.length);
      assert.equal(sha256(bytes), sha256(pkg.data));
    });
  }

  it('one chunk by size and chunk, smaller blocks when asked (-b 256)', async () => {
    const result = await coapClient(['-m', 'get', '-b', '256', '-o', `${out}-fw`, `${base()}/fw/${device.token}?size=4096&chunk=2`]);
    assert.equal(result.code, 0, result.stderr);
    assert.ok(readFileSync(`${out}-fw`).equals(f.firmware.data.subarray(8192, 12288)));
  });

  it('wrong version -> 4.00; bad token -> 4.01; a path of three segments -> 4.01; past the end -> 4.00; POST -> 4.05; nothing assigned -> 4.04', async () => {
    const code = async (args: string[]) => {
      const r = await coapClient(['-v', '5', ...args]);
      return r.stdout + r.stderr;
    };
    assert.match(await code(['-m', 'get', `${base()}/fw/${device.token}?version=0.0.1`]), /4\.00/);
    assert.match(await code(['-m', 'get', `${base()}/fw/no-such-token`]), /4\.01/);
    assert.match(await code(['-m', 'get', `${base()}/fw/${device.token}/extra`]), /4\.01/);
    assert.match(await code(['-m', 'get', `${base()}/fw/${device.token}?size=1024&chunk=5000`]), /4\.00/);
    assert.match(await code(['-m', 'post', `${base()}/fw/${device.token}`]), /4\.05/);
    const other = await f.api('POST', '/api/deviceProfile', { name: 'coap nothing assigned', type: 'DEFAULT', transportType: 'DEFAULT' });
    await f.api('POST', '/api/device?accessToken=coap-bare', { name: 'coap-bare', deviceProfileId: other.json.id });
    assert.match(await code(['-m', 'get', `${base()}/sw/coap-bare`]), /4\.04/, 'nothing assigned');
  });
});

describe('OTA over CoAP: logs', () => {
  it('the access token of /fw/{token} and /sw/{token} never reaches a log line', () => {
    assert.equal(loggablePath(['fw', 'secret-token']), '/fw/{token}');
    assert.equal(loggablePath(['sw', 'secret-token', 'extra']), '/sw/{token}/...');
  });
});
