/**
 * Starts a whole fleetgate server for a test: loopback only, random free ports, a fresh SQLite file in a temp dir.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { loadConfig, type Config } from '../../src/config.ts';
import { createLogger } from '../../src/log.ts';
import { startServer, type RunningServer } from '../../src/server.ts';

export const ADMIN_EMAIL = 'admin@test.local';
export const ADMIN_PASSWORD = 'test-admin-password';

export interface TestServer extends RunningServer {
  httpUrl: string;
  mqttPort: number;
  coapPort: number;
  dataDir: string;
  /** Everything the server logged, one JSON line per entry. */
  logLines: string[];
  /** Logs in as the administrator and returns the JWT. */
  adminToken(): Promise<string>;
}

/** A config for tests: 127.0.0.1, port 0 everywhere, a temp database. */
export function testConfig(dataDir: string, overrides: Partial<Config> = {}): Config {
  return {
    ...loadConfig({ env: {} }),
    host: '127.0.0.1',
    httpPort: 0,
    mqttPort: 0,
    coapPort: 0,
    mqttTlsPort: 0,
    database: join(dataDir, 'fleetgate.db'),
    adminUsername: ADMIN_EMAIL,
    adminPassword: ADMIN_PASSWORD,
    logLevel: 'info',
    ...overrides,
  };
}

export async function startTestServer(overrides: Partial<Config> = {}): Promise<TestServer> {
  const dataDir = mkdtempSync(join(tmpdir(), 'fleetgate-test-'));
  const logLines: string[] = [];
  const sink = new Writable({
    write(chunk, _enc, cb) {
      logLines.push(...String(chunk).split('\n').filter(Boolean));
      cb();
    },
  });
  const config = testConfig(dataDir, overrides);
  const server = await startServer(config, { logger: createLogger(config.logLevel, sink), announce: (l) => logLines.push(l) });
  const httpUrl = `http://127.0.0.1:${server.ports.http}`;
  let token: string | undefined;
  return {
    ...server,
    httpUrl,
    mqttPort: server.ports.mqtt,
    coapPort: server.ports.coap,
    dataDir,
    logLines,
    async adminToken() {
      if (token) return token;
      const res = await fetch(`${httpUrl}/api/auth/login`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ username: ADMIN_EMAIL, password: ADMIN_PASSWORD }),
      });
      if (res.status !== 200) throw new Error(`admin login failed: ${res.status} ${await res.text()}`);
      token = ((await res.json()) as { token: string }).token;
      return token;
    },
    async close() {
      await server.close();
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

/** Admin actor for calling core directly in tests. */
export const TEST_ACTOR = { userId: null, userName: 'test', source: { transport: 'admin' as const } };
