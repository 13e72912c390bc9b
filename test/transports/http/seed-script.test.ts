/**
 * The seed guide's HTTP example (spec/seed-device-provisioning.md "HTTP Example script", copied verbatim to
 * fixtures/seed_http_provision.py) run as written with Debian's /usr/bin/python3 and python3-requests. Only the
 * port is substituted (the profile uses the script's own key and secret); then the device sends telemetry with the
 * token it was given, read back through core.
 */
import { skipForMissingTool } from '../../support/tools.ts';
import assert from 'node:assert/strict';
import { execFile, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it, type TestContext } from 'node:test';
import { fileURLToPath } from 'node:url';
import { post, provisioningProfile, startTestServer, TENANT } from './http-support.ts';

const PYTHON = '/usr/bin/python3';
const SCRIPT = readFileSync(fileURLToPath(new URL('./fixtures/seed_http_provision.py', import.meta.url)), 'utf8');
const KEY = 'u7piawkboq8v32dmcmpp';
const SECRET = 'jpmwdn8ptlswmf4m29bw';

/** The script with only host, port, key and secret substituted. */
function substitute(port: number, key: string, secret: string): string {
  const script = SCRIPT.replace('http://127.0.0.1:8080/', `http://127.0.0.1:${port}/`).replace(`"${KEY}"`, `"${key}"`).replace(`"${SECRET}"`, `"${secret}"`);
  assert.notEqual(script, SCRIPT, 'the URL line is where the guide has it');
  return script;
}

/** Skips (or, with FLEETGATE_TEST_REQUIRE_ALL=1, fails) when Debian's python3 with requests is missing. */
function havePythonRequests(t: TestContext): boolean {
  const probe = spawnSync(PYTHON, ['-c', 'import requests'], { encoding: 'utf8', timeout: 10_000 });
  if (probe.error === undefined && probe.status === 0) return true;
  const message = `${PYTHON} with python3-requests is not available: ${probe.error?.message ?? probe.stderr.trim()}`;
  skipForMissingTool(t, message);
  return false;
}

describe('seed guide HTTP example (python3-requests)', () => {
  it('provisions DEVICE_NAME as written, and the token it prints sends telemetry', async (t) => {
    if (!havePythonRequests(t)) return;
    const server = await startTestServer({ logLevel: 'warn' });
    const dir = mkdtempSync(join(tmpdir(), 'fleetgate-seed-http-'));
    try {
      await provisioningProfile(server, 'ALLOW_CREATE_NEW_DEVICES', KEY, SECRET);
      const port = Number(new URL(server.httpUrl).port);
      writeFileSync(join(dir, 'provision.py'), substitute(port, KEY, SECRET));
      // Async spawn: the server runs in this process and must keep answering while the script waits.
      const run = await new Promise<{ failed: boolean; stdout: string; stderr: string }>((resolve) => {
        execFile(PYTHON, ['provision.py'], { cwd: dir, timeout: 30_000 }, (err, stdout, stderr) => resolve({ failed: err !== null, stdout, stderr }));
      });
      assert.equal(run.failed, false, run.stderr);
      // The script prints the reply as a Python dict: {'credentialsValue': '...', ..., 'status': 'SUCCESS', ...}
      assert.match(run.stdout, /'status': 'SUCCESS'/, run.stdout);
      const token = /'credentialsValue': '([^']+)'/.exec(run.stdout)?.[1];
      assert.ok(token, run.stdout);

      const device = await server.core.devices.findByName(TENANT, 'DEVICE_NAME');
      assert.equal((await server.core.devices.getCredentials(TENANT, device.id)).credentialsId, token);
      assert.equal((await post(server, token, 'telemetry', '{"temperature":42}')).status, 200);
      const series = await server.core.timeseries.get(device.id, { keys: ['temperature'], startTs: 0, endTs: Date.now() + 60_000 });
      assert.deepEqual(series.temperature?.map((p) => p.value), [{ type: 'LONG', value: 42 }]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
      await server.close();
    }
  });
});
