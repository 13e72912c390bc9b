/**
 * The console is served at / (hashed, long-cached assets; the page never cached; a CSP without inline script) beside
 * the routes that were there before, and its session works: log in, log out, and an ended session goes to the login
 * page and back to where the user was.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { startConsole, skipWithoutChromium, type ConsoleFixture } from './browser.ts';

describe('web console shell', { skip: skipWithoutChromium() }, () => {
  let fx: ConsoleFixture;
  before(async () => {
    fx = await startConsole();
  });
  after(async () => fx?.close());

  test('GET / answers the page, never cached, with a Content-Security-Policy that allows no inline script', async () => {
    const res = await fetch(`${fx.server.httpUrl}/`);
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-type') ?? '', /text\/html/);
    assert.equal(res.headers.get('cache-control'), 'no-store');
    const csp = res.headers.get('content-security-policy') ?? '';
    assert.match(csp, /script-src 'self'(;|$)/);
    assert.doesNotMatch(csp, /unsafe-inline|unsafe-eval|https?:/);
    const html = await res.text();
    assert.doesNotMatch(html, /<script(?![^>]*\bsrc=)[^>]*>/, 'no inline script element');
    const assets = [...html.matchAll(/(?:src|href)="(\/assets\/[^"]+)"/g)].map((m) => m[1]);
    assert.ok(assets.some((a) => a.endsWith('.js')) && assets.some((a) => a.endsWith('.css')), `assets in ${html}`);
    for (const asset of assets) {
      assert.match(asset, /-[\w-]{8}\.(js|css)$/, 'file names carry a content hash');
      const a = await fetch(`${fx.server.httpUrl}${asset}`, { headers: { 'accept-encoding': 'br, gzip' } });
      assert.equal(a.status, 200);
      assert.match(a.headers.get('cache-control') ?? '', /max-age=31536000.*immutable|immutable.*max-age=31536000/);
      assert.equal(a.headers.get('content-encoding'), 'br');
      await a.arrayBuffer();
    }
  });

  test('the routes that were there before still answer: /healthz, /metrics, /swagger-ui, /api and the device API', async () => {
    assert.equal((await fetch(`${fx.server.httpUrl}/healthz`)).status, 200);
    assert.equal((await fetch(`${fx.server.httpUrl}/metrics`)).status, 200);
    const swagger = await fetch(`${fx.server.httpUrl}/swagger-ui/`, { redirect: 'follow' });
    assert.equal(swagger.status, 200);
    assert.equal((await fetch(`${fx.server.httpUrl}/api/auth/user`)).status, 401);
    const device = await fetch(`${fx.server.httpUrl}/api/v1/no-such-token/attributes`);
    assert.equal(device.status, 401);
    assert.equal((await fetch(`${fx.server.httpUrl}/assets/missing-00000000.js`)).status, 404);
    assert.equal((await fetch(`${fx.server.httpUrl}/no-such-page`)).status, 404);
  });

  test('a wrong password shows the API message; the right one opens the overview; log out returns to the login page', async () => {
    const { page } = fx;
    const scriptErrors: string[] = [];
    page.on('pageerror', (err) => scriptErrors.push(String(err)));
    page.on('console', (msg) => {
      if (msg.type() === 'error' && /Content Security Policy/i.test(msg.text())) scriptErrors.push(msg.text());
    });
    await page.goto(fx.url('/'));
    await page.getByLabel('Email').waitFor();
    assert.match(page.url(), /#\/login/);
    await fx.shot('login');
    await page.getByLabel('Email').fill('admin@test.local');
    await page.getByLabel('Password').fill('wrong password');
    await page.getByRole('button', { name: 'Log in' }).click();
    await page.getByRole('alert').filter({ hasText: 'Invalid username or password' }).waitFor();
    await fx.login();
    await page.getByRole('heading', { name: 'Overview' }).waitFor();
    await page.getByRole('button', { name: 'Log out' }).click();
    await page.getByLabel('Password').waitFor();
    assert.equal(await page.evaluate(() => localStorage.getItem('fleetgate.session')), null);
    assert.deepEqual(scriptErrors, []);
  });

  test('an ended session goes to the login page and, after logging in, back to the page the user was on', async () => {
    const { page } = fx;
    await fx.login();
    await page.goto(fx.url('/devices'));
    await page.getByRole('heading', { name: 'Devices' }).waitFor();
    // Both tokens become invalid, as after expiry: the next API call gets 401 and the refresh fails too.
    await page.evaluate(() => localStorage.setItem('fleetgate.session', JSON.stringify({ token: 'expired.token.x', refreshToken: 'expired.refresh.x' })));
    await page.goto(fx.url('/'));
    await page.getByText('Your session has ended').waitFor();
    assert.match(decodeURIComponent(page.url()), /next=\/(&|$)/);
    await page.getByLabel('Email').fill('admin@test.local');
    await page.getByLabel('Password').fill('test-admin-password');
    await page.getByRole('button', { name: 'Log in' }).click();
    await page.getByRole('heading', { name: 'Overview' }).waitFor();
    assert.match(page.url(), /#\/$/);
  });
});
