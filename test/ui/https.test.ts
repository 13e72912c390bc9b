/**
 * With TLS on, the console is served over HTTPS on the same port, with the same headers, and its live telemetry
 * comes over wss:// (the page picks the scheme of its own origin).
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import https from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { selfSigned, skipUnlessOpenssl, type KeyPair } from '../hardening/certificates.ts';
import { startConsole, skipWithoutChromium, type ConsoleFixture } from './browser.ts';

function request(url: string, ca: string, method = 'GET', body?: unknown, headers: Record<string, string> = {}): Promise<{ status: number; headers: Record<string, unknown>; text: string }> {
  return new Promise((resolve, reject) => {
    const req = https.request(url, { method, ca, headers: { ...(body === undefined ? {} : { 'content-type': 'application/json' }), ...headers } }, (res) => {
      let text = '';
      res.on('data', (c) => (text += c));
      res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, text }));
    });
    req.on('error', reject);
    req.end(body === undefined ? undefined : JSON.stringify(body));
  });
}

describe('console over HTTPS', { skip: skipWithoutChromium() || skipUnlessOpenssl() }, () => {
  let fx: ConsoleFixture;
  let pair: KeyPair;
  let dir: string;
  let base = '';
  before(async () => {
    pair = selfSigned('fleetgate-test', '127.0.0.1');
    dir = mkdtempSync(join(tmpdir(), 'fleetgate-ui-tls-'));
    writeFileSync(join(dir, 'cert.pem'), pair.cert);
    writeFileSync(join(dir, 'key.pem'), pair.key);
    fx = await startConsole({ tlsCert: join(dir, 'cert.pem'), tlsKey: join(dir, 'key.pem') });
    base = `https://127.0.0.1:${fx.server.ports.http}`;
  });
  after(async () => {
    await fx?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  test('the page and its assets are served over HTTPS with the CSP; live telemetry arrives over wss://', async () => {
    const index = await request(`${base}/`, pair.cert);
    assert.equal(index.status, 200);
    assert.match(String(index.headers['content-security-policy']), /script-src 'self'/);
    const { token } = JSON.parse((await request(`${base}/api/auth/login`, pair.cert, 'POST', { username: 'admin@test.local', password: 'test-admin-password' })).text);
    const created = JSON.parse((await request(`${base}/api/device?accessToken=tls-device-token`, pair.cert, 'POST', { name: 'tls-device' }, { 'x-authorization': `Bearer ${token}` })).text);
    const sockets: string[] = [];
    fx.page.on('websocket', (ws) => sockets.push(ws.url()));
    await fx.login();
    await fx.page.goto(fx.url(`/devices/${created.id.id}`));
    await fx.page.locator('.badge', { hasText: 'live' }).waitFor();
    assert.equal((await request(`${base}/api/v1/tls-device-token/telemetry`, pair.cert, 'POST', { humidity: 55 })).status, 200);
    await fx.page.locator('td[data-key="humidity"]').filter({ hasText: '55' }).waitFor();
    assert.ok(sockets.some((u) => u.startsWith(`wss://127.0.0.1:${fx.server.ports.http}/api/ws`)), sockets.join(', '));
  });
});
