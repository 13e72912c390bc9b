/**
 * The console refreshes its token before it expires (here a 4 s lifetime), so a user who stays on a page keeps
 * working; the WebSocket subscription survives the server closing it at token expiry.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { adminCall, startConsole, skipWithoutChromium, type ConsoleFixture } from './browser.ts';

describe('console session refresh', { skip: skipWithoutChromium() }, () => {
  let fx: ConsoleFixture;
  before(async () => {
    fx = await startConsole({ jwtExpirySeconds: 4 });
    await fx.login();
  });
  after(async () => fx?.close());

  test('the token is refreshed before it expires; API calls and live telemetry keep working past the first token\'s lifetime', async () => {
    const { page } = fx;
    const created = await adminCall<{ id: { id: string } }>(fx.server, 'POST', '/api/device?accessToken=session-token', { name: 'session-device' });
    await page.goto(fx.url(`/devices/${created.body.id.id}`));
    await page.locator('.badge', { hasText: 'live' }).waitFor();
    const first = await page.evaluate(() => JSON.parse(localStorage.getItem('fleetgate.session')!).token as string);
    // Wait until the first token has certainly expired (4 s) and a refreshed one is stored.
    await page.waitForFunction((old) => JSON.parse(localStorage.getItem('fleetgate.session') ?? '{}').token !== old, first, { timeout: 30_000 });
    await new Promise((r) => setTimeout(r, 4500));
    const res = await fetch(`${fx.server.httpUrl}/api/v1/session-token/telemetry`, { method: 'POST', body: JSON.stringify({ pressure: 1013 }) });
    assert.equal(res.status, 200);
    await page.locator('td[data-key="pressure"]').filter({ hasText: '1013' }).waitFor();
    await page.getByRole('link', { name: 'Devices', exact: true }).click();
    await page.getByRole('link', { name: 'session-device' }).waitFor();
    assert.doesNotMatch(page.url(), /login/);
  });
});
