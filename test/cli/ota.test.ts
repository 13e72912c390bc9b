/** `fleetgate ota upload|list|assign|status` against a running server. */
import assert from 'node:assert/strict';
import { randomBytes, createHash } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { ADMIN_EMAIL, ADMIN_PASSWORD, startTestServer, type TestServer } from '../support/harness.ts';
import { Command, CommanderError } from 'commander';
import { runCli, type CliResult } from './run-cli.ts';
import { registerOtaCommands } from '../../src/cli/ota.ts';
import { CliError } from '../../src/cli/errors.ts';

/**
 * `fleetgate ota ...` in this process (commander with the real command definitions, stdout captured): a process start
 * costs seconds on a busy machine. The upload runs through bin/fleetgate.js, so the wiring of the binary is tested too.
 */
async function otaCli(args: string[], env: Record<string, string>): Promise<CliResult> {
  const program = new Command('fleetgate').exitOverride();
  program.configureOutput({ writeOut: () => {}, writeErr: () => {} });
  registerOtaCommands(program);
  let stdout = '';
  const write = process.stdout.write.bind(process.stdout);
  process.stdout.write = ((chunk: string) => ((stdout += chunk), true)) as typeof process.stdout.write;
  const flags = ['--url', env.FLEETGATE_URL, '--username', env.FLEETGATE_ADMIN_USERNAME, '--password', env.FLEETGATE_ADMIN_PASSWORD];
  try {
    await program.parseAsync(['node', 'fleetgate', ...args, ...flags]);
    return { code: 0, stdout, stderr: '' };
  } catch (err) {
    if (err instanceof CliError) return { code: err.exitCode, stdout, stderr: err.message };
    if (err instanceof CommanderError) return { code: 2, stdout, stderr: err.message };
    throw err;
  } finally {
    process.stdout.write = write;
  }
}
import { createDevice, createProfile, otaApi } from '../support/ota.ts';

describe('fleetgate ota', () => {
  let server: TestServer;
  let env: Record<string, string>;
  const dir = mkdtempSync(join(tmpdir(), 'fleetgate-cli-ota-'));
  const file = join(dir, 'meter-fw-1.2.bin');
  const data = randomBytes(150_000);
  before(async () => {
    server = await startTestServer({ otaRolloutGroupSize: 50, otaRolloutIntervalMs: 100 });
    env = { FLEETGATE_URL: server.httpUrl, FLEETGATE_ADMIN_USERNAME: ADMIN_EMAIL, FLEETGATE_ADMIN_PASSWORD: ADMIN_PASSWORD };
    writeFileSync(file, data);
  });
  after(async () => {
    await server.close();
    rmSync(dir, { recursive: true, force: true });
  });

  test('upload, list, assign to a profile and to one device, status, and clear', async () => {
    // Setup through the API: every CLI run costs a process start (seconds on a busy machine).
    const api = otaApi(server.httpUrl, await server.adminToken());
    await createDevice(api, 'meter-1', await createProfile(api, 'Meters'), 'meter-1-token');
    const up = await runCli(['ota', 'upload', file, '--title', 'meter-fw', '--version', '1.2', '--profile', 'Meters', '--json'], env);
    assert.equal(up.code, 0, up.stderr);
    const pkg = JSON.parse(up.stdout);
    assert.equal(pkg.checksum, createHash('sha256').update(data).digest('hex'));
    assert.equal(pkg.fileName, 'meter-fw-1.2.bin');
    assert.equal(pkg.tag, 'meter-fw 1.2');
    const listed = await otaCli(['ota', 'list'], env);
    assert.match(listed.stdout, /^TITLE\s+VERSION\s+TYPE\s+SIZE/m);
    assert.match(listed.stdout, /meter-fw\s+1\.2\s+FIRMWARE\s+150000\s+SHA256:/);
    const assigned = await otaCli(['ota', 'assign', 'meter-fw@1.2', '--profile', 'Meters'], env);
    assert.equal(assigned.code, 0, assigned.stderr);
    assert.equal(assigned.stdout, 'profile Meters: firmware meter-fw 1.2\n');
    const dl = async () => fetch(`${server.httpUrl}/api/v1/meter-1-token/firmware?title=meter-fw&version=1.2`);
    assert.equal((await dl()).status, 200);
    const status = await otaCli(['ota', 'status', 'meter-fw@1.2', '--json'], env);
    assert.equal(JSON.parse(status.stdout).total, 1);
    assert.equal((await otaCli(['ota', 'assign', 'none', '--type', 'firmware', '--device', 'meter-1'], env)).stdout, 'device meter-1: firmware none\n');
    assert.equal((await otaCli(['ota', 'assign', 'meter-fw@1.2'], env)).code, 2, 'needs --profile or --device');
  });

  test('a failed upload deletes the package it created (as ThingsBoard\'s UI does)', async () => {
    writeFileSync(join(dir, 'empty.bin'), '');
    const res = await runCli(['ota', 'upload', join(dir, 'empty.bin'), '--title', 'x', '--version', '1', '--profile', 'Meters'], env);
    assert.equal(res.code, 1);
    assert.match(res.stderr, /OtaPackage data should be specified!/);
    const listed = await otaApi(server.httpUrl, await server.adminToken())('GET', '/api/otaPackages?pageSize=100&page=0&textSearch=x');
    assert.deepEqual(listed.json.data.filter((p: { title: string }) => p.title === 'x'), []);
  });
});
