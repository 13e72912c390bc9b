/**
 * The admin OTA routes, ported from ThingsBoard's OtaPackageControllerTest, OtaPackageApiClientTest,
 * OtaPackageServiceTest and the device/profile assignment tests (spec thingsboard-ota §6 items 1-19).
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { startTestServer, type TestServer } from '../support/harness.ts';
import { assignToProfile, createDevice, createPackage, createProfile, otaApi, uploadPackage, type Api } from '../support/ota.ts';

const SHA256_OF_01 = '4bf5122f344554c53bde2ebb8cd2b7e3d1600ad631c385a5d7cce23c7785459a';

describe('OTA package admin API', () => {
  let server: TestServer;
  let api: Api;
  let token: string;
  let profileId: string;
  before(async () => {
    server = await startTestServer({ otaRolloutGroupSize: 50, otaRolloutIntervalMs: 100 });
    token = await server.adminToken();
    api = otaApi(server.httpUrl, token);
    profileId = await createProfile(api, 'admin-ota');
  });
  after(() => server.close());

  const profileRef = () => ({ entityType: 'DEVICE_PROFILE', id: profileId });

  it('testSaveFirmware: create returns id, createdTime, tenant, title and version, hasData false; additionalInfo can be updated', async () => {
    const res = await api('POST', '/api/otaPackage', { title: 'My firmware', version: 'v1.0', type: 'FIRMWARE', deviceProfileId: profileRef(), tag: 'My firmware v1.0' });
    assert.equal(res.status, 200, res.text);
    assert.equal(res.json.id.entityType, 'OTA_PACKAGE');
    assert.ok(res.json.createdTime > 0);
    assert.equal(res.json.tenantId.entityType, 'TENANT');
    assert.equal(res.json.hasData, false);
    const updated = await api('POST', '/api/otaPackage', { ...res.json, additionalInfo: { description: 'updated' } });
    assert.equal(updated.status, 200, updated.text);
    assert.equal(updated.json.id.id, res.json.id.id);
    const info = await api('GET', `/api/otaPackage/info/${res.json.id.id}`);
    assert.equal(info.json.title, 'My firmware');
    assert.deepEqual(info.json.additionalInfo, { description: 'updated' });
  });

  it('saveOtaPackageInfoWithViolationOfLengthValidation: 300-char title, version or url -> 400', async () => {
    const long = 'a'.repeat(300);
    for (const [field, body] of [
      ['title', { title: long, version: 'v', type: 'FIRMWARE', deviceProfileId: profileRef() }],
      ['version', { title: 't-len', version: long, type: 'FIRMWARE', deviceProfileId: profileRef() }],
      ['url', { title: 't-len', version: 'v', type: 'FIRMWARE', deviceProfileId: profileRef(), usesUrl: true, url: long }],
    ] as const) {
      const res = await api('POST', '/api/otaPackage', body);
      assert.equal(res.status, 400);
      assert.match(res.json.message, new RegExp(`${field} length must be equal or less than 255`));
    }
  });

  it("R1 rules: blank URL with usesUrl, missing title, type, version, unknown profile, duplicate title+version, prohibited updates", async () => {
    const cases: [Record<string, unknown>, string][] = [
      [{ title: 'u', version: '1', type: 'FIRMWARE', usesUrl: true, url: '   ' }, 'Ota package URL should be specified!'],
      [{ version: '1', type: 'FIRMWARE' }, 'OtaPackage title should be specified!'],
      [{ title: 'no type', version: '1' }, 'Type should be specified!'],
      [{ title: 'no version', type: 'FIRMWARE' }, 'OtaPackage version should be specified!'],
      [{ title: 'bad profile', version: '1', type: 'FIRMWARE', deviceProfileId: { entityType: 'DEVICE_PROFILE', id: '00000000-0000-4000-8000-00000000dead' } }, 'OtaPackage is referencing to non-existent device profile!'],
    ];
    for (const [body, message] of cases) {
      const res = await api('POST', '/api/otaPackage', body);
      assert.equal(res.status, 400, res.text);
      assert.equal(res.json.message, message);
    }
    const first = await createPackage(api, profileId, 'dup', '1.0');
    const dup = await api('POST', '/api/otaPackage', { title: 'dup', version: '1.0', type: 'SOFTWARE', deviceProfileId: profileRef() });
    assert.equal(dup.json.message, 'OtaPackage with such title and version already exists!');
    const stored = (await api('GET', `/api/otaPackage/info/${first}`)).json;
    for (const [change, message] of [
      [{ type: 'SOFTWARE' }, 'Updating type is prohibited!'],
      [{ title: 'other' }, 'Updating otaPackage title is prohibited!'],
      [{ version: '2.0' }, 'Updating otaPackage version is prohibited!'],
      [{ tag: 'x' }, 'Updating otaPackage tag is prohibited!'],
      [{ deviceProfileId: null }, 'Updating otaPackage deviceProfile is prohibited!'],
    ] as const) {
      const res = await api('POST', '/api/otaPackage', { ...stored, ...change });
      assert.equal(res.json.message, message);
    }
  });

  it('testSaveFirmwareData: part `file`, filename.txt, text/plain, byte 0x01, SHA256 -> echoed; R3 data is "AQ=="; R5 streams the bytes', async () => {
    const id = await createPackage(api, profileId, 'with data', '1.0');
    const res = await uploadPackage(server.httpUrl, token, id, Buffer.from([1]), { algorithm: 'SHA256', checksum: SHA256_OF_01, fileName: 'filename.txt', contentType: 'text/plain' });
    assert.equal(res.status, 200, res.text);
    assert.equal(res.json.fileName, 'filename.txt');
    assert.equal(res.json.contentType, 'text/plain');
    assert.equal(res.json.checksumAlgorithm, 'SHA256');
    assert.equal(res.json.checksum, SHA256_OF_01);
    assert.equal(res.json.dataSize, 1);
    assert.equal(res.json.hasData, true);
    assert.equal((await api('GET', `/api/otaPackage/${id}`)).json.data, 'AQ==');
    const download = await fetch(`${server.httpUrl}/api/otaPackage/${id}/download`, { headers: { 'x-authorization': `Bearer ${token}` } });
    assert.equal(download.headers.get('content-disposition'), 'attachment;filename=filename.txt');
    assert.equal(download.headers.get('x-filename'), 'filename.txt');
    assert.deepEqual([...Buffer.from(await download.arrayBuffer())], [1]);
  });

  it('testSaveOtaPackageData: MD5 with no checksum is computed; every algorithm formats as ThingsBoard (Guava byte order)', async () => {
    const expected: Record<string, string> = {
      MD5: '55a54008ad1ba589aa210d2629c1df41',
      CRC32: '1bdf05a5',
      MURMUR3_32: 'abd15ae4',
      MURMUR3_128: '16fe7483905cce7a85670e43e4678877',
      sha256: SHA256_OF_01, // the algorithm name is case-insensitive
    };
    for (const [algorithm, checksum] of Object.entries(expected)) {
      const id = await createPackage(api, profileId, `alg-${algorithm}`, '1');
      const res = await uploadPackage(server.httpUrl, token, id, Buffer.from([1]), { algorithm });
      assert.equal(res.status, 200, res.text);
      assert.equal(res.json.checksum, checksum, algorithm);
      assert.equal(res.json.checksumAlgorithm, algorithm.toUpperCase());
    }
  });

  it('a checksum mismatch is 400 "Wrong otaPackage file!" and nothing is kept (uppercase hex never matches)', async () => {
    const id = await createPackage(api, profileId, 'mismatch', '1');
    for (const checksum of ['00'.repeat(32), SHA256_OF_01.toUpperCase()]) {
      const res = await uploadPackage(server.httpUrl, token, id, Buffer.from([1]), { algorithm: 'SHA256', checksum });
      assert.equal(res.status, 400);
      assert.equal(res.json.message, 'Wrong otaPackage file!');
    }
    const info = (await api('GET', `/api/otaPackage/info/${id}`)).json;
    assert.equal(info.hasData, false);
    assert.equal(info.dataSize, null);
    const pieces = await server.store.ota.sweepOrphanBlobs(Date.now() + 1);
    assert.equal(pieces, 0, 'no blob was left behind');
  });

  it('R2 refusals: empty algorithm, unknown algorithm, empty file, unknown package, second upload with other bytes', async () => {
    const id = await createPackage(api, profileId, 'refusals', '1');
    const raw = (query: string) => fetch(`${server.httpUrl}/api/otaPackage/${id}?${query}`, { method: 'POST', headers: { 'x-authorization': `Bearer ${token}` }, body: new FormData() });
    assert.equal((await (await raw('checksumAlgorithm=')).json()).message, "Parameter 'checksumAlgorithm' can't be empty!");
    assert.equal((await uploadPackage(server.httpUrl, token, id, Buffer.from([1]), { algorithm: 'SHA1' })).json.message, 'No enum constant org.thingsboard.server.common.data.ota.ChecksumAlgorithm.SHA1');
    assert.equal((await uploadPackage(server.httpUrl, token, id, Buffer.alloc(0))).json.message, 'OtaPackage data should be specified!');
    const missing = await uploadPackage(server.httpUrl, token, '00000000-0000-4000-8000-00000000beef', Buffer.from([1]));
    assert.equal(missing.status, 404);
    assert.equal(missing.json.message, 'Ota package with id [00000000-0000-4000-8000-00000000beef] is not found');
    assert.equal((await uploadPackage(server.httpUrl, token, id, Buffer.from([1]))).status, 200);
    assert.equal((await uploadPackage(server.httpUrl, token, id, Buffer.from([1]))).status, 200, 'the same bytes again change nothing');
    assert.equal((await uploadPackage(server.httpUrl, token, id, Buffer.from([2]))).json.message, 'Updating otaPackage content type is prohibited!');
    const noPart = await raw('checksumAlgorithm=SHA256');
    assert.equal(noPart.status, 400);
  });

  it('URL packages: saved without bytes, hasData on R4/R6 and R7; R5 answers 400; uploading to one is prohibited', async () => {
    const res = await api('POST', '/api/otaPackage', { title: 'url fw', version: '1', type: 'FIRMWARE', deviceProfileId: profileRef(), usesUrl: true, url: 'test.url' });
    assert.equal(res.status, 200);
    const id = res.json.id.id;
    assert.equal((await api('GET', `/api/otaPackage/info/${id}`)).json.hasData, true);
    assert.equal((await api('GET', `/api/otaPackage/${id}`)).json.data, null);
    const dl = await fetch(`${server.httpUrl}/api/otaPackage/${id}/download`, { headers: { 'x-authorization': `Bearer ${token}` } });
    assert.equal(dl.status, 400);
    assert.equal((await uploadPackage(server.httpUrl, token, id, Buffer.from([1]))).json.message, 'Updating otaPackage URL is prohibited!');
    const byProfile = await api('GET', `/api/otaPackages/${profileId}/FIRMWARE?pageSize=100&page=0`);
    assert.ok(byProfile.json.data.some((p: any) => p.id.id === id && p.hasData === true));
  });

  it('testFindTenantFirmwares / ByHasData: paging with pageSize 24 sees every package; R7 only assignable ones', async () => {
    const profile = await createProfile(api, 'paging');
    const withData: string[] = [];
    const all: string[] = [];
    for (let i = 0; i < 40; i++) {
      const id = await createPackage(api, profile, `page-${i}`, '1');
      all.push(id);
      if (i % 3 === 0) {
        assert.equal((await uploadPackage(server.httpUrl, token, id, Buffer.from([i]))).status, 200);
        withData.push(id);
      }
    }
    const seen: string[] = [];
    for (let page = 0; ; page++) {
      const res = await api('GET', `/api/otaPackages?pageSize=24&page=${page}&textSearch=page-`);
      seen.push(...res.json.data.map((p: any) => p.id.id));
      if (!res.json.hasNext) break;
    }
    assert.deepEqual(seen.sort(), [...all].sort());
    const assignable = await api('GET', `/api/otaPackages/${profile}/FIRMWARE?pageSize=100&page=0`);
    assert.deepEqual(assignable.json.data.map((p: any) => p.id.id).sort(), [...withData].sort());
    assert.equal((await api('GET', `/api/otaPackages/${profile}/SOFTWARE?pageSize=100&page=0`)).json.totalElements, 0);
    const pages = await api('GET', `/api/otaPackages?pageSize=2&page=0&textSearch=page-1&sortProperty=title&sortOrder=desc`);
    assert.equal(pages.json.data[0].title, 'page-19');
    for (const [query, message] of [
      ['pageSize=0&page=0', "Incorrect page link page size '0'. Page size must be greater than zero."],
      ['pageSize=1&page=-1', "Incorrect page link page '-1'. Page must be positive integer."],
      ['pageSize=1&page=0&sortOrder=up', "Unsupported sort order 'up'! Only 'ASC' or 'DESC' types are allowed."],
      ['pageSize=1&page=0&sortProperty=title;drop', 'Invalid sort property'],
    ]) {
      const res = await api('GET', `/api/otaPackages?${query}`);
      assert.equal(res.status, 400);
      assert.equal(res.json.message, message);
    }
    assert.equal((await api('GET', `/api/otaPackages/${profile}/firmware?pageSize=1&page=0`)).status, 400);
  });

  it('assignment: the device wins over its profile; validation texts; delete refused while assigned; R9 counts followers', async () => {
    const profile = await createProfile(api, 'assign');
    const fw = await createPackage(api, profile, 'assign-fw', '1');
    const fw2 = await createPackage(api, profile, 'assign-fw', '2');
    const sw = await createPackage(api, profile, 'assign-sw', '1', 'SOFTWARE');
    const empty = await createPackage(api, profile, 'assign-empty', '1');
    const foreign = await createPackage(api, profileId, 'assign-foreign', '1');
    for (const id of [fw, fw2, sw, foreign]) assert.equal((await uploadPackage(server.httpUrl, token, id, Buffer.from('data'))).status, 200);
    const ref = (id: string) => ({ entityType: 'OTA_PACKAGE', id });
    for (const [firmwareId, message] of [
      ['00000000-0000-4000-8000-00000000dead', "Can't assign non-existent firmware!"],
      [sw, "Can't assign firmware with type: SOFTWARE"],
      [empty, "Can't assign firmware with empty data!"],
      [foreign, "Can't assign firmware with different deviceProfile!"],
    ]) {
      const res = await api('POST', '/api/device', { name: `bad-${message}`, deviceProfileId: { entityType: 'DEVICE_PROFILE', id: profile }, firmwareId: ref(firmwareId) });
      assert.equal(res.status, 400);
      assert.equal(res.json.message, message);
      assert.equal((await api('GET', `/api/tenant/devices?deviceName=${encodeURIComponent(`bad-${message}`)}`)).status, 404, 'nothing saved');
    }
    assert.equal((await assignToProfile(api, profile, 'FIRMWARE', fw)).status, 200);
    const follower = await createDevice(api, 'follower', profile, 'follower-token');
    const own = await createDevice(api, 'own', profile, 'own-token', { firmwareId: ref(fw2) });
    assert.equal(own.firmwareId.id, fw2);
    assert.equal(follower.firmwareId, null);
    assert.equal((await api('GET', `/api/devices/count/FIRMWARE/${profile}`)).json, 1);
    const lookup = (deviceId: string) => server.core.ota.lookup(deviceId, 'FIRMWARE');
    assert.equal(((await lookup(own.id.id)) as any).pkg.id, fw2);
    assert.equal(((await lookup(follower.id.id)) as any).pkg.id, fw);
    const del = await api('DELETE', `/api/otaPackage/${fw}`);
    assert.equal(del.json.message, 'The otaPackage referenced by the device profile cannot be deleted!');
    assert.equal((await api('DELETE', `/api/otaPackage/${fw2}`)).json.message, 'The otaPackage referenced by the devices cannot be deleted!');
    const cleared = await api('POST', '/api/device', { ...own, firmwareId: null });
    assert.equal(cleared.json.firmwareId, null);
    assert.equal((await api('DELETE', `/api/otaPackage/${fw2}`)).status, 200);
    assert.equal((await api('GET', `/api/otaPackage/info/${fw2}`)).json.message, "Requested item wasn't found!");
  });
});
