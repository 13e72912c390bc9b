/** `fleetgate export ...` against a running server: create, list, show, dead letters, replay, delete. */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { ADMIN_EMAIL, ADMIN_PASSWORD, startTestServer, type TestServer } from '../support/harness.ts';
import { createTokenDevice } from '../support/telemetry-load.ts';
import { eventually, startReceiver, type Receiver } from '../export/receiver.ts';
import { runCli } from './run-cli.ts';

describe('fleetgate export', () => {
  let server: TestServer;
  let receiver: Receiver;
  let env: Record<string, string>;

  before(async () => {
    server = await startTestServer({ exportDeadLetterAgeMs: 0, exportRetryBaseMs: 50 });
    receiver = await startReceiver();
    env = { FLEETGATE_URL: server.httpUrl, FLEETGATE_ADMIN_USERNAME: ADMIN_EMAIL, FLEETGATE_ADMIN_PASSWORD: ADMIN_PASSWORD };
  });
  after(async () => {
    await server?.close();
    await receiver?.close();
  });

  it('creates a webhook rule, shows its dead letters, replays them and deletes it', async () => {
    receiver.answer = () => ({ status: 500 });
    const created = await runCli(['export', 'create', 'to-receiver', '--kinds', 'telemetry', '--webhook', receiver.url, '--secret', 'cli-secret', '--header', 'X-Api-Key: k1', '--lanes', '2'], env);
    assert.equal(created.code, 0, created.stderr);
    assert.match(created.stdout, /name\s+to-receiver/);
    assert.match(created.stdout, /lanes\s+2\n/);
    assert.ok(!created.stdout.includes('cli-secret'), 'the secret is not printed');
    const list = await runCli(['export', 'list'], env);
    assert.match(list.stdout, /to-receiver\s+telemetry\s+webhook/);
    await createTokenDevice(server.httpUrl, await server.adminToken(), 'cli-export-token', 'cli-export-dev');
    assert.equal((await fetch(`${server.httpUrl}/api/v1/cli-export-token/telemetry`, { method: 'POST', body: '{"ts":7,"values":{"x":1}}' })).status, 200);
    let letters = '';
    await eventually('a dead letter', async () => (letters = (await runCli(['export', 'dead-letters'], env)).stdout).includes('telemetry'));
    assert.match(letters, /answered 500/);
    receiver.answer = () => ({ status: 200 });
    const replay = await runCli(['export', 'replay', '--rule', 'to-receiver'], env);
    assert.equal(replay.code, 0, replay.stderr);
    assert.match(replay.stdout, /replayed 1 dead letters/);
    await eventually('delivered after the replay', () => receiver.accepted.length === 1);
    const deleted = await runCli(['export', 'delete', 'to-receiver'], env);
    assert.equal(deleted.code, 0, deleted.stderr);
    assert.equal((await runCli(['export', 'show', 'to-receiver'], env)).code, 1);
  });

  it('refuses a rule without one destination as a usage error', async () => {
    const both = await runCli(['export', 'create', 'x', '--kinds', 'telemetry', '--webhook', receiver.url, '--redis', 'redis://127.0.0.1:6379', '--stream', 's'], env);
    assert.equal(both.code, 2);
    assert.match(both.stderr, /exactly one destination/);
    const bad = await runCli(['export', 'create', 'x', '--kinds', 'nothing', '--webhook', receiver.url], env);
    assert.equal(bad.code, 1);
    assert.match(bad.stderr, /kinds must be/);
    const tooMany = await runCli(['export', 'create', 'x', '--kinds', 'telemetry', '--webhook', receiver.url, '--lanes', '17'], env);
    assert.equal(tooMany.code, 1);
    assert.match(tooMany.stderr, /lanes must be an integer from 1 to 16/);
    const none = await runCli(['export', 'create', 'x', '--kinds', 'telemetry', '--webhook', receiver.url, '--lanes', '0'], env);
    assert.equal(none.code, 2, none.stderr);
    assert.match(none.stderr, /--lanes/);
  });
});
