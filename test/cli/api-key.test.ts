import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { startTestServer, type TestServer } from '../support/harness.ts';
import { adminClient } from '../admin/admin-client.ts';
import { runCli } from './run-cli.ts';

describe('the CLI with an API key instead of a password', () => {
  let server: TestServer;
  let key: string;

  before(async () => {
    server = await startTestServer();
    const api = await adminClient(server);
    const userId = (await api.get('/api/auth/user')).json.id.id;
    key = (await api.post('/api/apiKey', { userId: { entityType: 'USER', id: userId }, description: 'cli', enabled: true })).json.value;
  });
  after(() => server.close());

  test('FLEETGATE_API_KEY and --api-key work without a password', async () => {
    const byEnv = await runCli(['profile', 'list', '--json'], { FLEETGATE_URL: server.httpUrl, FLEETGATE_API_KEY: key });
    assert.equal(byEnv.code, 0, byEnv.stderr);
    assert.ok((JSON.parse(byEnv.stdout) as { name: string }[]).some((p) => p.name === 'default'));
    const byFlag = await runCli(['device', 'create', 'cli-keyed', '--json', '--api-key', key, '--url', server.httpUrl]);
    assert.equal(byFlag.code, 0, byFlag.stderr);
    assert.ok(!byFlag.stdout.includes(key) && !byFlag.stderr.includes(key));
  });

  test('a wrong key is an API error; neither key nor password is a usage error naming both', async () => {
    const wrong = await runCli(['profile', 'list'], { FLEETGATE_URL: server.httpUrl, FLEETGATE_API_KEY: 'tb_nope' });
    assert.equal(wrong.code, 1);
    assert.match(wrong.stderr, /Invalid username or password \(HTTP 401\)/);
    const none = await runCli(['profile', 'list'], { FLEETGATE_URL: server.httpUrl });
    assert.equal(none.code, 2);
    assert.match(none.stderr, /--api-key/);
  });
});
