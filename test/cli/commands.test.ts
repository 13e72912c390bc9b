import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { ADMIN_EMAIL, ADMIN_PASSWORD, startTestServer, type TestServer } from '../support/harness.ts';
import { runCli } from './run-cli.ts';

let server: TestServer;
let env: Record<string, string>;
const json = <T = any>(text: string): T => JSON.parse(text) as T;

before(async () => {
  server = await startTestServer();
  env = { FLEETGATE_URL: server.httpUrl, FLEETGATE_ADMIN_USERNAME: ADMIN_EMAIL, FLEETGATE_ADMIN_PASSWORD: ADMIN_PASSWORD };
});
after(() => server.close());

describe('fleetgate profile', () => {
  test('create generates a key and secret, prints them once, and list/show find the profile', async () => {
    const created = await runCli(['profile', 'create', 'Meters', '--strategy', 'check-pre-provisioned'], env);
    assert.equal(created.code, 0, created.stderr);
    const key = /^key\s+(\S+)$/m.exec(created.stdout)?.[1];
    const secret = /^secret\s+(\S+)$/m.exec(created.stdout)?.[1];
    assert.ok(key && secret && key.length === 20 && secret.length === 20, created.stdout);
    assert.match(created.stderr, /shown only now/);

    const list = await runCli(['profile', 'list'], env);
    assert.equal(list.code, 0);
    assert.match(list.stdout, /^NAME\s+STRATEGY\s+KEY/m);
    assert.match(list.stdout, new RegExp(`Meters\\s+CHECK_PRE_PROVISIONED_DEVICES\\s+${key}`));

    const shown = await runCli(['profile', 'show', 'Meters'], env);
    assert.equal(shown.code, 0);
    assert.ok(!shown.stdout.includes(secret), 'show masks the secret');
    const revealed = await runCli(['profile', 'show', 'Meters', '--show-secret', '--json'], env);
    assert.equal(json(revealed.stdout).profileData.provisionConfiguration.provisionDeviceSecret, secret);
  });

  test('--json output is the ThingsBoard DeviceProfile JSON; given key and secret are kept', async () => {
    const res = await runCli(['profile', 'create', 'Gateways', '--strategy', 'allow-create', '--key', 'gw-key', '--secret', 'gw-secret', '--json'], env);
    assert.equal(res.code, 0, res.stderr);
    const body = json(res.stdout);
    assert.equal(body.provisionType, 'ALLOW_CREATE_NEW_DEVICES');
    assert.equal(body.provisionDeviceKey, 'gw-key');
    assert.equal(res.stderr, '');
    const list = json<any[]>((await runCli(['profile', 'list', '--json'], env)).stdout);
    assert.ok(list.some((p) => p.name === 'Gateways'));
    assert.ok(list.every((p) => p.profileData.provisionConfiguration?.provisionDeviceSecret !== 'gw-secret'), 'list masks secrets');
  });

  test('a duplicate key is an API error (exit 1) with the server message', async () => {
    const res = await runCli(['profile', 'create', 'Other', '--strategy', 'allow-create', '--key', 'gw-key'], env);
    assert.equal(res.code, 1);
    assert.match(res.stderr, /provision device key already exists/);
  });

  test('an unknown strategy is a usage error (exit 2)', async () => {
    const res = await runCli(['profile', 'create', 'X', '--strategy', 'sometimes'], env);
    assert.equal(res.code, 2);
    assert.match(res.stderr, /unknown --strategy/);
  });

  test('delete removes the profile; deleting it again is exit 1', async () => {
    assert.equal((await runCli(['profile', 'delete', 'Gateways'], env)).code, 0);
    const again = await runCli(['profile', 'delete', 'Gateways'], env);
    assert.equal(again.code, 1);
    assert.match(again.stderr, /no device profile named "Gateways"/);
  });
});

describe('fleetgate device', () => {
  test('create, show, list, credentials (show and set), delete', async () => {
    const created = await runCli(['device', 'create', 'meter-1', '--profile', 'Meters', '--label', 'hall', '--token', 'METER1TOKEN', '--json'], env);
    assert.equal(created.code, 0, created.stderr);
    const device = json(created.stdout);
    assert.equal(device.name, 'meter-1');
    assert.equal(device.type, 'Meters');
    assert.equal(device.credentials.credentialsId, 'METER1TOKEN');

    const shown = await runCli(['device', 'show', 'meter-1'], env);
    assert.equal(shown.code, 0);
    assert.match(shown.stdout, /^profile\s+Meters$/m);
    assert.match(shown.stdout, /^credentials\s+ACCESS_TOKEN$/m);
    const byId = await runCli(['device', 'show', device.id.id, '--json'], env);
    assert.equal(json(byId.stdout).name, 'meter-1');

    const list = await runCli(['device', 'list', '--profile', 'Meters'], env);
    assert.match(list.stdout, /^meter-1\s+Meters\s+hall/m);
    assert.equal(json<any[]>((await runCli(['device', 'list', '--search', 'meter', '--json'], env)).stdout).length, 1);

    const creds = await runCli(['device', 'credentials', 'meter-1'], env);
    assert.match(creds.stdout, /^accessToken\s+METER1TOKEN$/m);
    const set = await runCli(['device', 'credentials', 'meter-1', '--client-id', 'c1', '--mqtt-username', 'u1', '--mqtt-password', 'p1', '--json'], env);
    assert.equal(set.code, 0, set.stderr);
    assert.equal(json(set.stdout).credentialsType, 'MQTT_BASIC');
    const mixed = await runCli(['device', 'credentials', 'meter-1', '--token', 't', '--client-id', 'c'], env);
    assert.equal(mixed.code, 2);

    assert.equal((await runCli(['device', 'delete', 'meter-1'], env)).code, 0);
    const gone = await runCli(['device', 'show', 'meter-1'], env);
    assert.equal(gone.code, 1);
    assert.match(gone.stderr, /Device with name \[meter-1\] is not found/);
  });

  test('a device in the default profile gets a generated token', async () => {
    const res = await runCli(['device', 'create', 'plain-1'], env);
    assert.equal(res.code, 0, res.stderr);
    assert.match(res.stdout, /^accessToken\s+[A-Za-z0-9]{20}$/m);
  });
});

describe('fleetgate: errors and exit codes', () => {
  test('a wrong password is exit 1 and names the user', async () => {
    const res = await runCli(['device', 'list'], { ...env, FLEETGATE_ADMIN_PASSWORD: 'wrong-password' });
    assert.equal(res.code, 1);
    assert.match(res.stderr, /login as admin@test.local failed: Invalid username or password/);
  });
  test('no password is a usage error (exit 2)', async () => {
    const res = await runCli(['device', 'list', '--url', server.httpUrl]);
    assert.equal(res.code, 2);
    assert.match(res.stderr, /no administrator password/);
  });
  test('an unreachable server is exit 1', async () => {
    const res = await runCli(['device', 'list', '--url', 'http://127.0.0.1:9', '--password', 'x']);
    assert.equal(res.code, 1);
    assert.match(res.stderr, /cannot reach fleetgate at http:\/\/127.0.0.1:9/);
  });
  test('unknown commands and options are exit 2', async () => {
    assert.equal((await runCli(['device', 'frobnicate'], env)).code, 2);
    assert.equal((await runCli(['device', 'list', '--bogus'], env)).code, 2);
    assert.equal((await runCli(['device', 'list', '--limit', '0'], env)).code, 2);
  });
  test('--help is exit 0', async () => {
    const res = await runCli(['device', 'import', '--help']);
    assert.equal(res.code, 0);
    assert.match(res.stdout, /--profile <profile>/);
  });
});

describe('fleetgate admin password', () => {
  test('resets the password in the database while the server runs; the reset is audited', async () => {
    const dbEnv = { FLEETGATE_DATABASE: server.config.database, FLEETGATE_ADMIN_USERNAME: ADMIN_EMAIL };
    const res = await runCli(['admin', 'password', '--password-stdin'], dbEnv, 'brand-new-pw\n');
    assert.equal(res.code, 0, res.stderr);
    assert.match(res.stdout, /password of admin@test.local changed/);
    const login = await fetch(`${server.httpUrl}/api/auth/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ username: ADMIN_EMAIL, password: 'brand-new-pw' }) });
    assert.equal(login.status, 200);
    const generated = await runCli(['admin', 'password', '--json'], dbEnv);
    const password = json(generated.stdout).password as string;
    assert.equal(password.length, 20);
    const audit = await server.core.audit.list((await server.store.findUserByEmail(ADMIN_EMAIL))!.tenantId, { pageSize: 10, page: 0 });
    const reset = audit.data.find((e) => e.actionType === 'PASSWORD_RESET');
    assert.ok(reset && reset.source?.startsWith('cli:'), JSON.stringify(audit.data[0]));
    assert.ok(!JSON.stringify(audit.data).includes(password) && !JSON.stringify(audit.data).includes('brand-new-pw'));
    // put the harness password back for the other tests
    assert.equal((await runCli(['admin', 'password', '--new-password', ADMIN_PASSWORD], dbEnv)).code, 0);
  });
  test('a too-short password is exit 2; an unknown user or a missing database is exit 1', async () => {
    const dbEnv = { FLEETGATE_DATABASE: server.config.database };
    assert.equal((await runCli(['admin', 'password', '--username', ADMIN_EMAIL, '--new-password', 'abc'], dbEnv)).code, 2);
    const unknown = await runCli(['admin', 'password', '--username', 'nobody@x', '--new-password', 'abcdefg'], dbEnv);
    assert.equal(unknown.code, 1);
    assert.match(unknown.stderr, /User nobody@x not found/);
    assert.equal((await runCli(['admin', 'password', '--database', '/nonexistent/db'], {})).code, 1);
  });
});
