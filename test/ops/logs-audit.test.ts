import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { formatLogLine } from '../../src/log-pretty.ts';
import { createLogger } from '../../src/log.ts';
import { ADMIN_EMAIL, ADMIN_PASSWORD, startTestServer, type TestServer } from '../support/harness.ts';

const PROFILE_SECRET = 'profile-secret-5c1e';
const WRONG_SECRET = 'wrong-secret-77aa';
const WRONG_PASSWORD = 'wrong-password-91bb';
const DEVICE_TOKEN = 'DEVICETOKEN3f0d';
const BAD_TOKEN = 'BADTOKEN8e2c';
const ADMIN_SET_TOKEN = 'ADMINSETTOKEN6d1a'; // an admin sets a device's token in the query string

describe('logs and the audit log after provisioning, logins and admin changes', () => {
  let server: TestServer;
  let jwt: string;
  const secrets = () => [PROFILE_SECRET, WRONG_SECRET, ADMIN_PASSWORD, WRONG_PASSWORD, DEVICE_TOKEN, BAD_TOKEN, ADMIN_SET_TOKEN, jwt];

  before(async () => {
    server = await startTestServer({ logLevel: 'trace' }); // the most verbose level must still hide secrets
    const post = (path: string, body: unknown, headers: Record<string, string> = {}) =>
      fetch(`${server.httpUrl}${path}`, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: JSON.stringify(body) });
    assert.equal((await post('/api/auth/login', { username: ADMIN_EMAIL, password: WRONG_PASSWORD })).status, 401);
    jwt = await server.adminToken();
    const auth = { 'x-authorization': `Bearer ${jwt}` };
    const profile = (await (
      await post('/api/deviceProfile', { name: 'Logged', provisionType: 'ALLOW_CREATE_NEW_DEVICES', provisionDeviceKey: 'log-key', profileData: { provisionConfiguration: { type: 'ALLOW_CREATE_NEW_DEVICES', provisionDeviceSecret: PROFILE_SECRET } } }, auth)
    ).json()) as { id: { id: string } };
    const ok = (await (await post('/api/v1/provision', { deviceName: 'logged-1', provisionDeviceKey: 'log-key', provisionDeviceSecret: PROFILE_SECRET, credentialsType: 'ACCESS_TOKEN', token: DEVICE_TOKEN })).json()) as { status: string };
    assert.equal(ok.status, 'SUCCESS');
    await post('/api/v1/provision', { deviceName: 'logged-2', provisionDeviceKey: 'log-key', provisionDeviceSecret: WRONG_SECRET });
    await post('/api/v1/provision', { deviceName: 'logged-1', provisionDeviceKey: 'log-key', provisionDeviceSecret: PROFILE_SECRET, credentialsType: 'ACCESS_TOKEN', token: DEVICE_TOKEN });
    assert.equal((await fetch(`${server.httpUrl}/api/v1/${DEVICE_TOKEN}/telemetry`, { method: 'POST', body: '{"t":1}' })).status, 200);
    assert.equal((await fetch(`${server.httpUrl}/api/v1/${BAD_TOKEN}/telemetry`, { method: 'POST', body: '{"t":1}' })).status, 401);
    const device = (await (await post(`/api/device?accessToken=${ADMIN_SET_TOKEN}`, { name: 'admin-made' }, auth)).json()) as { id: { id: string } };
    await fetch(`${server.httpUrl}/api/device/${device.id.id}`, { method: 'DELETE', headers: auth });
    const csv = await fetch(`${server.httpUrl}/api/devices/import?deviceProfileId=${profile.id.id}`, { method: 'POST', headers: { ...auth, 'content-type': 'text/csv' }, body: 'name\nx\n' });
    assert.equal(csv.status, 400); // an ALLOW_CREATE profile: refused, and nothing is audited
  });
  after(() => server.close());

  test('no token, secret, password or JWT appears in any log line', () => {
    assert.ok(server.logLines.length > 10);
    for (const secret of secrets()) {
      const leaked = server.logLines.filter((line) => line.includes(secret));
      assert.deepEqual(leaked, [], `"${secret}" leaked`);
    }
  });

  test('one line per notable event: start, listen, provisioning outcomes with reasons, auth failures', () => {
    const entries = server.logLines.filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as Record<string, unknown>);
    const events = (event: string) => entries.filter((e) => e.event === event);
    assert.equal(events('start').length, 1);
    assert.equal(events('listen').filter((e) => typeof e.http === 'number').length, 1);
    assert.deepEqual(events('provision').map((e) => [e.status, e.reason ?? null]), [['SUCCESS', null], ['NOT_FOUND', 'BAD_KEY_OR_SECRET'], ['FAILURE', 'DEVICE_EXISTS']]);
    const failures = events('auth_failure').map((e) => [e.transport, e.url]);
    assert.deepEqual(failures, [['admin', '/api/auth/login'], ['http', '/api/v1/[token]/telemetry']]);
  });

  test('GET /api/audit/logs has logins, admin changes and provisioning with who, what, when and where, and no secret', async () => {
    const res = await fetch(`${server.httpUrl}/api/audit/logs?pageSize=100&page=0`, { headers: { 'x-authorization': `Bearer ${jwt}` } });
    assert.equal(res.status, 200);
    const text = await res.text();
    for (const secret of secrets()) assert.ok(!text.includes(secret), `"${secret}" in the audit log`);
    const rows = (JSON.parse(text) as { data: Record<string, any>[] }).data;
    const find = (type: string, status = 'SUCCESS') => rows.find((r) => r.actionType === type && r.actionStatus === status);
    const loginFailed = find('LOGIN', 'FAILURE')!;
    assert.equal(loginFailed.source, 'admin:127.0.0.1');
    assert.equal(find('LOGIN')!.userName, ADMIN_EMAIL);
    const added = rows.filter((r) => r.actionType === 'ADDED').map((r) => [r.entityId.entityType, r.entityName, r.userName, r.source]);
    assert.deepEqual(added.sort(), [['DEVICE', 'admin-made', ADMIN_EMAIL, 'admin:127.0.0.1'], ['DEVICE_PROFILE', 'Logged', ADMIN_EMAIL, 'admin:127.0.0.1']]);
    assert.deepEqual([find('DELETED')!.entityName, find('DELETED')!.userName], ['admin-made', ADMIN_EMAIL]);
    assert.equal(find('PROVISION_SUCCESS')!.source, 'http:127.0.0.1');
    assert.equal(find('PROVISION_FAILURE', 'FAILURE')!.actionData.reason, 'DEVICE_EXISTS');
    for (const r of rows) assert.equal(typeof r.createdTime, 'number');
  });
});

describe('readable logs for a terminal', () => {
  test('a JSON line becomes time, level, message and key=value fields', () => {
    const line = JSON.stringify({ level: 40, time: Date.UTC(2025, 0, 2, 3, 4, 5, 6), pid: 1, hostname: 'h', name: 'fleetgate', msg: 'authentication failed', event: 'auth_failure', url: '/api/v1/[token]/telemetry' });
    assert.equal(formatLogLine(line, false), '03:04:05.006 WARN  authentication failed  event=auth_failure url=/api/v1/[token]/telemetry');
    assert.equal(formatLogLine('not json', false), 'not json');
  });
  test('the pretty format is redacted too', () => {
    let out = '';
    const sink = new Writable({ write: (chunk, _e, cb) => ((out += String(chunk)), cb()) });
    createLogger('info', sink, 'pretty').info({ password: 'hunter2', req: { token: 'abc' } }, 'hello');
    assert.match(out, /INFO  hello  password=\[redacted\] req=\{"token":"\[redacted\]"\}/);
    assert.ok(!out.includes('hunter2'));
  });
});
