/**
 * Every page of the console: each control has an accessible name, each is reached with the Tab key, and at 375 px
 * wide nothing makes the page scroll sideways (wide tables scroll inside their own box).
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { adminCall, startConsole, skipWithoutChromium, type ConsoleFixture } from './browser.ts';

describe('console accessibility and narrow screens', { skip: skipWithoutChromium() }, () => {
  let fx: ConsoleFixture;
  const pages: [string, string][] = [];
  before(async () => {
    fx = await startConsole({}, { width: 375, height: 740 });
    const profile = await adminCall<{ id: { id: string } }>(fx.server, 'POST', '/api/deviceProfile', {
      name: 'Keyboard',
      provisionType: 'ALLOW_CREATE_NEW_DEVICES',
      provisionDeviceKey: 'kb-key',
      profileData: { provisionConfiguration: { type: 'ALLOW_CREATE_NEW_DEVICES', provisionDeviceSecret: 'kb-secret' } },
    });
    const res = await fetch(`${fx.server.httpUrl}/api/v1/provision`, { method: 'POST', body: JSON.stringify({ deviceName: 'kb-device', provisionDeviceKey: 'kb-key', provisionDeviceSecret: 'kb-secret' }) });
    const device = (await res.json()) as { deviceId: string; credentialsValue: string };
    await fetch(`${fx.server.httpUrl}/api/v1/${device.credentialsValue}/telemetry`, { method: 'POST', body: JSON.stringify({ temperature: 21 }) });
    const rule = await adminCall<{ id: { id: string } }>(fx.server, 'POST', '/api/export/rule', { name: 'kb-export', kinds: ['telemetry'], destination: { type: 'webhook', url: 'http://127.0.0.1:9/hook', secret: 'kb-signing' } });
    pages.push(
      ['overview', '/'],
      ['profiles', '/profiles'],
      ['profile', `/profiles/${profile.body.id.id}`],
      ['new profile', '/profiles/new'],
      ['devices', '/devices'],
      ['device', `/devices/${device.deviceId}`],
      ['audit', '/audit'],
      ['export rules', '/export'],
      ['new export rule', '/export/new'],
      ['export rule', `/export/${rule.body.id.id}`],
    );
    await fx.login();
  });
  after(async () => fx?.close());

  test('every control is labelled and reachable with Tab; no page scrolls sideways at 375 px', async () => {
    const { page } = fx;
    for (const [name, route] of pages) {
      await page.goto(fx.url(route));
      await page.getByRole('heading', { level: 1 }).first().waitFor();
      await page.waitForLoadState('networkidle').catch(() => {});
      // A string, not a function: tsx would wrap the inner function with a helper the page does not have.
      const unlabelled = (await page.evaluate(`[...document.querySelectorAll('input, select, textarea, button, a[href]')]
        .filter((el) => el.offsetParent !== null)
        .filter((el) => !(el.getAttribute('aria-label')?.trim() || el.getAttribute('aria-labelledby') || el.labels?.length ||
          ((el.tagName === 'BUTTON' || el.tagName === 'A') && el.textContent.trim())))
        .map((el) => el.outerHTML.slice(0, 120))`)) as string[];
      assert.deepEqual(unlabelled, [], `unlabelled controls on ${name}`);
      const controls = await page.evaluate(() =>
        [...document.querySelectorAll('input, select, textarea, button:not([disabled]), a[href], [tabindex="0"]')].filter((el) => (el as HTMLElement).offsetParent !== null).length,
      );
      const reached = new Set<string>();
      await page.evaluate(() => (document.activeElement as HTMLElement | null)?.blur());
      // A date-time field takes several Tab stops (one per part), hence the margin.
      for (let i = 0; i < controls * 3 + 10; i++) {
        await page.keyboard.press('Tab');
        reached.add((await page.evaluate(`(document.activeElement && document.activeElement !== document.body)
          ? document.activeElement.tagName + '#' + [...document.querySelectorAll('*')].indexOf(document.activeElement) : ''`)) as string);
      }
      reached.delete('');
      assert.ok(reached.size >= controls, `${name}: Tab reached ${reached.size} of ${controls} controls`);
      const overflow = await page.evaluate(() => document.documentElement.scrollWidth - document.documentElement.clientWidth);
      assert.ok(overflow <= 0, `${name} scrolls sideways by ${overflow}px at 375 px`);
      if (name === 'device' || name === 'profile' || name === 'overview') await fx.shot(`${name}-375`);
    }
  });
});
