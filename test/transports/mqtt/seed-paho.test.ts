/**
 * The seed guide's MQTT example (spec/seed-device-provisioning.md, fixtures/seed_mqtt_provision.py, copied
 * verbatim) run as written with Debian's /usr/bin/python3 and python3-paho-mqtt; only host, port, key and
 * secret are substituted. It must provision, save the credentials file, and connect with them (rc 0).
 */
import { skipForMissingTool } from '../../support/tools.ts';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { haveTool, provisioningProfile, TENANT, withServer } from './e2e-support.ts';

const PYTHON = '/usr/bin/python3';
const SCRIPT = readFileSync(fileURLToPath(new URL('./fixtures/seed_mqtt_provision.py', import.meta.url)), 'utf8');

function substitute(port: number, key: string, secret: string): string {
  return SCRIPT.replace(/^THINGSBOARD_HOST = .*$/m, 'THINGSBOARD_HOST = "127.0.0.1"')
    .replace(/^THINGSBOARD_PORT = .*$/m, `THINGSBOARD_PORT = ${port}`)
    .replace(/^PROVISION_DEVICE_KEY = .*$/m, `PROVISION_DEVICE_KEY = "${key}"`)
    .replace(/^PROVISION_DEVICE_SECRET = .*$/m, `PROVISION_DEVICE_SECRET = "${secret}"`);
}

describe('seed guide MQTT example (paho)', () => {
  it('provisions DEVICE_NAME, saves the credentials file and connects with them (rc 0)', async (t) => {
    if (!haveTool(t, PYTHON, ['-c', 'import paho.mqtt.client'])) return;
    const paho = spawnSync(PYTHON, ['-c', 'import paho.mqtt.client'], { encoding: 'utf8' });
    if (paho.status !== 0) {
      const message = `python3-paho-mqtt is not importable: ${paho.stderr}`;
      skipForMissingTool(t, message);
      return;
    }
    await withServer(async (server) => {
      await provisioningProfile(server, 'ALLOW_CREATE_NEW_DEVICES', 'u7piawkboq8v32dmcmpp', 'jpmwdn8ptlswmf4m29bw');
      const dir = mkdtempSync(join(tmpdir(), 'fleetgate-paho-'));
      try {
        writeFileSync(join(dir, 'provision.py'), substitute(server.mqttPort, 'u7piawkboq8v32dmcmpp', 'jpmwdn8ptlswmf4m29bw'));
        // The script's second client loops forever once connected: stop it when it says so (bounded).
        const child = spawn(PYTHON, ['provision.py'], { cwd: dir, env: { ...process.env, PYTHONUNBUFFERED: '1' } });
        let output = '';
        const connected = new Promise<boolean>((resolve) => {
          const timer = setTimeout(() => resolve(false), 20_000);
          const onData = (d: Buffer) => {
            output += d;
            if (/\[ThingsBoard client\] (Connected|Cannot connect)/.test(output)) {
              clearTimeout(timer);
              resolve(true);
            }
          };
          child.stdout.on('data', onData);
          child.stderr.on('data', onData);
          child.on('exit', () => {
            clearTimeout(timer);
            resolve(false);
          });
        });
        const done = await connected;
        child.kill('SIGKILL');
        assert.ok(done, `script did not report its connection:\n${output}`);
        assert.match(output, /\[Provisioning client\] Connected to ThingsBoard/);
        const device = await server.core.devices.findByName(TENANT, 'DEVICE_NAME');
        const creds = await server.core.devices.getCredentials(TENANT, device.id);
        assert.equal(readFileSync(join(dir, 'credentials'), 'utf8'), creds.credentialsId);
        assert.match(output, new RegExp(`\\[ThingsBoard client\\] Connected to ThingsBoard with credentials: (b')?${creds.credentialsId}`));
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    });
  });
});
