import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createServer } from 'node:http';
import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import { startServerProcess, loginAdmin } from '../support/process-server.ts';

function tempDir() {
  return mkdtempSync(join(tmpdir(), 'fleetgate-cli-'));
}

describe('fleetgate start: configuration errors exit with code 2 and a clear message', () => {
  for (const [name, env, expected] of [
    ['a non-numeric port', { FLEETGATE_HTTP_PORT: 'eighty' }, /httpPort \(FLEETGATE_HTTP_PORT\) must be a whole number/],
    ['a port out of range', { FLEETGATE_MQTT_PORT: '70000' }, /mqttPort \(FLEETGATE_MQTT_PORT\) must be a port number/],
    ['an unknown log level', { FLEETGATE_LOG_LEVEL: 'loud' }, /logLevel \(FLEETGATE_LOG_LEVEL\) must be one of/],
    ['an unsupported database URL', { FLEETGATE_DATABASE: 'mysql://x' }, /database \(FLEETGATE_DATABASE\) must be a file path or a postgres/],
    ['a missing config file', { FLEETGATE_CONFIG: '/nonexistent/fleetgate.json' }, /cannot read config file/],
  ] as const) {
    test(name, async () => {
      const dir = tempDir();
      try {
        const server = await startServerProcess({ FLEETGATE_DATABASE: join(dir, 'db'), ...env }, { waitReady: false });
        assert.equal(await server.exited, 2);
        assert.match(server.stderr(), expected);
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    });
  }
  test('a config file with an unknown key', async () => {
    const dir = tempDir();
    try {
      writeFileSync(join(dir, 'c.json'), JSON.stringify({ httpPortt: 1 }));
      const server = await startServerProcess({ FLEETGATE_DATABASE: join(dir, 'db'), FLEETGATE_CONFIG: join(dir, 'c.json') }, { waitReady: false });
      assert.equal(await server.exited, 2);
      assert.match(server.stderr(), /unknown keys: httpPortt/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('fleetgate start: the administrator', () => {
  test('a generated password is printed once, works, and is not printed again nor logged', async () => {
    const dir = tempDir();
    try {
      const env = { FLEETGATE_DATABASE: join(dir, 'fleetgate.db') };
      const first = await startServerProcess(env);
      const match = /generated password: (\S+)/.exec(first.stderr());
      assert.ok(match, `stderr should announce the password: ${first.stderr()}`);
      const password = match[1];
      assert.ok(!first.stdout().includes(password), 'the password must not appear in the log');
      await loginAdmin(first.httpUrl, 'admin@fleetgate.local', password);
      first.child.kill('SIGTERM');
      assert.equal(await first.exited, 0);
      const second = await startServerProcess(env);
      assert.doesNotMatch(second.stderr(), /generated password/);
      await loginAdmin(second.httpUrl, 'admin@fleetgate.local', password);
      second.child.kill('SIGTERM');
      assert.equal(await second.exited, 0);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
  test('flags override the environment, which overrides the config file', async () => {
    const { loadConfig } = await import('../../src/config.ts');
    const dir = tempDir();
    try {
      writeFileSync(join(dir, 'c.json'), JSON.stringify({ httpPort: 1000, mqttPort: 1001, coapPort: 1002 }));
      const config = loadConfig({ file: join(dir, 'c.json'), env: { FLEETGATE_MQTT_PORT: '2001', FLEETGATE_COAP_PORT: '2002' }, flags: { coapPort: '3002' } });
      assert.deepEqual([config.httpPort, config.mqttPort, config.coapPort, config.httpMaxPayload], [1000, 2001, 3002, 1048576]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('the test harness starts the right server', () => {
  test('a /healthz 200 from another process on the picked port is not taken for the child being ready', async () => {
    const dir = tempDir();
    const squatter = createServer((_req, res) => res.end('{"status":"UP"}')).listen(0, '127.0.0.1');
    await once(squatter, 'listening');
    try {
      const port = (squatter.address() as AddressInfo).port;
      await assert.rejects(startServerProcess({ FLEETGATE_DATABASE: join(dir, 'db'), FLEETGATE_HTTP_PORT: String(port) }), /server exited with 1: .*EADDRINUSE/s);
    } finally {
      squatter.closeAllConnections();
      squatter.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
