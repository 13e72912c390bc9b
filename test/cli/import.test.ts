import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseCsv, CsvError, toCsv } from '../../src/admin/csv.ts';
import { csvToImportRows, ImportFileError } from '../../src/admin/import.ts';
import { ADMIN_EMAIL, ADMIN_PASSWORD, startTestServer, type TestServer } from '../support/harness.ts';
import { runCli } from './run-cli.ts';

describe('CSV reading', () => {
  test('quotes, commas and line breaks in quotes, doubled quotes, CRLF, a BOM, blank lines', () => {
    const text = '\ufeffname,label\r\n"a,b","say ""hi"""\r\n\r\nplain,"two\nlines"\nlast,\n';
    assert.deepEqual(parseCsv(text), [
      { line: 1, fields: ['name', 'label'] },
      { line: 2, fields: ['a,b', 'say "hi"'] },
      { line: 4, fields: ['plain', 'two\nlines'] },
      { line: 6, fields: ['last', ''] },
    ]);
  });
  test('an unterminated quote is an error naming its line', () => {
    assert.throws(() => parseCsv('name\n"open\n'), (err: unknown) => err instanceof CsvError && err.line === 2);
  });
  test('writing quotes what needs it and reads back the same', () => {
    const rows = [{ name: 'x,y', label: 'q"uote' }, { name: ' pad', label: 'multi\nline' }];
    const back = parseCsv(toCsv(['name', 'label'], rows)).slice(1).map((r) => ({ name: r.fields[0], label: r.fields[1] }));
    assert.deepEqual(back, rows);
  });
  test('device columns: aliases, wrong field counts rejected by line, unknown columns and a missing name refused', () => {
    const { rows, rejected } = csvToImportRows('Name,ACCESS_TOKEN,mqtt_client_id\nd1,t1,\nd2,t2\n');
    assert.deepEqual(rows, [{ line: 2, name: 'd1', accessToken: 't1', clientId: '' }]);
    assert.deepEqual(rejected, [{ line: 3, name: 'd2', error: 'expected 3 fields, found 2' }]);
    assert.throws(() => csvToImportRows('name,colour\n'), ImportFileError);
    assert.throws(() => csvToImportRows('label\n'), /no "name" column/);
    assert.throws(() => csvToImportRows(''), /empty/);
  });
});

describe('fleetgate device import / export', () => {
  let server: TestServer;
  let env: Record<string, string>;
  let headers: Record<string, string>;
  let profileId: string;

  before(async () => {
    server = await startTestServer();
    env = { FLEETGATE_URL: server.httpUrl, FLEETGATE_ADMIN_USERNAME: ADMIN_EMAIL, FLEETGATE_ADMIN_PASSWORD: ADMIN_PASSWORD };
    headers = { 'x-authorization': `Bearer ${await server.adminToken()}` };
    await fetch(`${server.httpUrl}/api/deviceProfileInfo/default`, { headers }); // so Factory is not the default profile
    const res = await fetch(`${server.httpUrl}/api/deviceProfile`, {
      method: 'POST',
      headers: { ...headers, 'content-type': 'application/json' },
      body: JSON.stringify({ name: 'Factory', provisionType: 'CHECK_PRE_PROVISIONED_DEVICES', provisionDeviceKey: 'fac-key', profileData: { provisionConfiguration: { type: 'CHECK_PRE_PROVISIONED_DEVICES', provisionDeviceSecret: 'fac-secret' } } }),
    });
    profileId = ((await res.json()) as { id: { id: string } }).id.id;
    await fetch(`${server.httpUrl}/api/device?accessToken=TAKEN`, { method: 'POST', headers: { ...headers, 'content-type': 'application/json' }, body: JSON.stringify({ name: 'elsewhere' }) });
  });
  after(() => server.close());

  test('good, duplicate and bad rows: a summary with line numbers, exit 3, and no partial rows', async () => {
    const csv = [
      'name,label,accessToken,clientId,username,password',
      'dev-1,"Hall, north",TOKEN1,,,',
      'dev-2,,,cid-2,user-2,pw-2',
      'dev-1,,TOKEN9,,,', // duplicate name (in the same file)
      ',,TOKEN3,,,', // no name
      'dev-4,,TAKEN,,,', // credentials of another device
      'dev-5,,bad token,,,', // white space in a token
      'dev-6,,', // too few fields
      'dev-7,,,,,', // no credentials: a token is generated
    ].join('\r\n');
    const file = join(server.dataDir, 'devices.csv');
    writeFileSync(file, '\ufeff' + csv);
    const res = await runCli(['device', 'import', file, '--profile', 'Factory', '--chunk', '3', '--json'], env);
    assert.equal(res.code, 3, res.stderr);
    const summary = JSON.parse(res.stdout);
    assert.equal(summary.created, 3);
    assert.deepEqual(summary.duplicates, [{ line: 4, name: 'dev-1' }]);
    assert.deepEqual(summary.errors.map((e: { line: number }) => e.line), [5, 6, 7, 8]);
    assert.match(summary.errors[1].error, /already assigned to another device/);
    assert.match(summary.errors[2].error, /white space/);

    const byName = async (name: string) => fetch(`${server.httpUrl}/api/tenant/devices?deviceName=${name}`, { headers });
    assert.equal((await byName('dev-4')).status, 404, 'a rejected row leaves no device behind');
    const dev1 = (await (await byName('dev-1')).json()) as { id: { id: string }; label: string };
    assert.equal(dev1.label, 'Hall, north');
    const creds = (await (await fetch(`${server.httpUrl}/api/device/${dev1.id.id}/credentials`, { headers })).json()) as { credentialsId: string };
    assert.equal(creds.credentialsId, 'TOKEN1');

    // An imported device provisions itself with the profile key and secret and gets its imported credentials.
    const provision = await fetch(`${server.httpUrl}/api/v1/provision`, { method: 'POST', body: JSON.stringify({ deviceName: 'dev-2', provisionDeviceKey: 'fac-key', provisionDeviceSecret: 'fac-secret' }) });
    const body = (await provision.json()) as { status: string; credentialsType: string; credentialsValue: { clientId: string } };
    assert.equal(body.status, 'SUCCESS');
    assert.equal(body.credentialsType, 'MQTT_BASIC');
    assert.equal(body.credentialsValue.clientId, 'cid-2');

    // Running the same import again creates nothing and skips every good row.
    const again = await runCli(['device', 'import', file, '--profile', 'Factory'], env);
    assert.equal(again.code, 3);
    assert.match(again.stdout, /^created 0, skipped 4 as duplicates, rejected 4$/m);
    assert.match(again.stdout, /line 6 \(dev-4\): Device credentials are already assigned/);
  });

  test('export writes names and credentials as CSV that imports again', async () => {
    const res = await runCli(['device', 'export', '--profile', 'Factory'], env);
    assert.equal(res.code, 0, res.stderr);
    const records = parseCsv(res.stdout);
    assert.deepEqual(records[0].fields, ['name', 'type', 'label', 'credentialsType', 'accessToken', 'clientId', 'username', 'password', 'certificate', 'provisionDeviceSecret']);
    assert.deepEqual(records.slice(1).map((r) => r.fields[0]).sort(), ['dev-1', 'dev-2', 'dev-7']);
    assert.deepEqual(records.find((r) => r.fields[0] === 'dev-1')!.fields.slice(2, 5), ['Hall, north', 'ACCESS_TOKEN', 'TOKEN1']);
    const { rows, rejected } = csvToImportRows(res.stdout);
    assert.equal(rows.length, 3);
    assert.deepEqual(rejected, []);
    const asJson = JSON.parse((await runCli(['device', 'export', '--profile', 'Factory', '--json'], env)).stdout) as { name: string; password?: string }[];
    assert.equal(asJson.find((d) => d.name === 'dev-2')!.password, 'pw-2');
  });

  test('the admin API imports text/csv and JSON rows, and refuses a profile that does not check pre-provisioned devices', async () => {
    const csvRes = await fetch(`${server.httpUrl}/api/devices/import?deviceProfileId=${profileId}`, { method: 'POST', headers: { ...headers, 'content-type': 'text/csv' }, body: 'name,token\nrest-1,REST1\nrest-2\n' });
    assert.equal(csvRes.status, 200);
    const csvBody = (await csvRes.json()) as { created: number; rejected: number; errors: { line: number }[] };
    assert.equal(csvBody.created, 1);
    assert.deepEqual(csvBody.errors.map((e) => e.line), [3]);
    const jsonRes = await fetch(`${server.httpUrl}/api/devices/import?deviceProfileId=${profileId}`, { method: 'POST', headers: { ...headers, 'content-type': 'application/json' }, body: JSON.stringify({ rows: [{ name: 'rest-3' }, { name: 'rest-1' }] }) });
    assert.deepEqual(await jsonRes.json(), { created: 1, skipped: 1, rejected: 0, duplicates: [{ line: 2, name: 'rest-1' }], errors: [] });
    const badCsv = await fetch(`${server.httpUrl}/api/devices/import?deviceProfileId=${profileId}`, { method: 'POST', headers: { ...headers, 'content-type': 'text/csv' }, body: 'colour\nred\n' });
    assert.equal(badCsv.status, 400);
    const defaultProfile = (await (await fetch(`${server.httpUrl}/api/deviceProfileInfo/default`, { headers })).json()) as { id: { id: string } };
    const wrong = await fetch(`${server.httpUrl}/api/devices/import?deviceProfileId=${defaultProfile.id.id}`, { method: 'POST', headers: { ...headers, 'content-type': 'application/json' }, body: JSON.stringify({ rows: [{ name: 'x' }] }) });
    assert.equal(wrong.status, 400);
    assert.match(((await wrong.json()) as { message: string }).message, /does not check pre-provisioned devices/);
    const audit = (await (await fetch(`${server.httpUrl}/api/audit/logs?pageSize=100&page=0`, { headers })).json()) as { data: Record<string, any>[] };
    const imports = audit.data.filter((r) => r.actionType === 'DEVICES_IMPORTED');
    assert.deepEqual(imports[0].actionData, { rows: 2, created: 1, duplicates: 1, rejected: 0 });
    assert.deepEqual([imports[0].userName, imports[0].entityName, imports[0].source], [ADMIN_EMAIL, 'Factory', 'admin:127.0.0.1']);
    assert.ok(audit.data.some((r) => r.actionType === 'DEVICES_EXPORTED' && r.actionData.devices === 3));
    assert.ok(!JSON.stringify(audit.data).includes('TOKEN1') && !JSON.stringify(audit.data).includes('pw-2'), 'no credentials in the audit log');
    const unauth = await fetch(`${server.httpUrl}/api/devices/import?deviceProfileId=${profileId}`, { method: 'POST', headers: { 'content-type': 'text/csv' }, body: 'name\nx\n' });
    assert.equal(unauth.status, 401);
  });

  test('a file of many chunks is streamed: line numbers hold across chunks and quoted line breaks', async () => {
    const lines = ['name,label'];
    for (let i = 0; i < 25; i++) lines.push(i === 12 ? `stream-${i},"first\r\nsecond"` : `stream-${i},`);
    lines.push('stream-bad,a,b'); // too many fields
    lines.push('stream-0,again'); // a duplicate of a row 2 chunks earlier
    const file = join(server.dataDir, 'stream.csv');
    writeFileSync(file, lines.join('\n') + '\n');
    const res = await runCli(['device', 'import', file, '--profile', 'Factory', '--chunk', '10', '--json'], env);
    assert.equal(res.code, 3, res.stderr);
    const summary = JSON.parse(res.stdout);
    assert.equal(summary.created, 25);
    // The label of stream-12 spans lines 14-15, so stream-bad is on line 28 and the duplicate on 29.
    assert.deepEqual(summary.errors, [{ line: 28, name: 'stream-bad', error: 'expected 2 fields, found 3' }]);
    assert.deepEqual(summary.duplicates, [{ line: 29, name: 'stream-0' }]);
    const dev = (await (await fetch(`${server.httpUrl}/api/tenant/devices?deviceName=stream-12`, { headers })).json()) as { label: string };
    assert.equal(dev.label, 'first\r\nsecond');
  });

  test('a file whose quoting breaks near its end imports nothing and names the line', async () => {
    const lines = ['name'];
    for (let i = 0; i < 30; i++) lines.push(`unquoted-${i}`);
    lines.push('"never closed');
    const file = join(server.dataDir, 'broken.csv');
    writeFileSync(file, lines.join('\n') + '\n');
    const res = await runCli(['device', 'import', file, '--profile', 'Factory', '--chunk', '5'], env);
    assert.equal(res.code, 2);
    assert.match(res.stderr, /line 32: unterminated quoted field/);
    assert.equal((await fetch(`${server.httpUrl}/api/tenant/devices?deviceName=unquoted-0`, { headers })).status, 404);
  });

  test('a file that cannot be read or has no name column is a usage error (exit 2)', async () => {
    assert.equal((await runCli(['device', 'import', '/nonexistent.csv', '--profile', 'Factory'], env)).code, 2);
    const file = join(server.dataDir, 'bad.csv');
    writeFileSync(file, 'label\nx\n');
    const res = await runCli(['device', 'import', file, '--profile', 'Factory'], env);
    assert.equal(res.code, 2);
    assert.match(res.stderr, /no "name" column/);
  });
});
