/** The audit log page: filters by action, text and time range reach the server; a device page lists its own events. */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { adminCall, startConsole, skipWithoutChromium, type ConsoleFixture } from './browser.ts';

describe('audit log page', { skip: skipWithoutChromium() }, () => {
  let fx: ConsoleFixture;
  let deviceId = '';
  before(async () => {
    fx = await startConsole();
    const device = await adminCall<{ id: { id: string } }>(fx.server, 'POST', '/api/device', { name: 'audited-1' });
    deviceId = device.body.id.id;
    await adminCall(fx.server, 'POST', '/api/device', { name: 'audited-2' });
    await fetch(`${fx.server.httpUrl}/api/auth/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ username: 'nobody@x', password: 'bad' }) });
    await fx.login();
  });
  after(async () => fx?.close());

  test('the API filters by action types, text, time range and entity', async () => {
    const failures = await adminCall<{ data: { actionType: string; actionStatus: string }[] }>(fx.server, 'GET', '/api/audit/logs?pageSize=50&page=0&actionTypes=login&textSearch=failure');
    assert.ok(failures.body.data.length >= 1);
    assert.ok(failures.body.data.every((e) => e.actionType === 'LOGIN' && e.actionStatus === 'FAILURE'));
    const future = await adminCall<{ totalElements: number }>(fx.server, 'GET', `/api/audit/logs?pageSize=5&page=0&startTime=${Date.now() + 3_600_000}`);
    assert.equal(future.body.totalElements, 0);
    const entity = await adminCall<{ data: { entityName: string }[] }>(fx.server, 'GET', `/api/audit/logs/entity/DEVICE/${deviceId}?pageSize=50&page=0`);
    assert.deepEqual([...new Set(entity.body.data.map((e) => e.entityName))], ['audited-1']);
    assert.equal((await adminCall(fx.server, 'GET', '/api/audit/logs?pageSize=5&page=0&actionTypes=NOT-A-TYPE')).status, 400);
  });

  test('the page shows the log and narrows it by action and text', async () => {
    const { page } = fx;
    await page.goto(fx.url('/audit'));
    const table = page.getByRole('table', { name: 'Audit events' });
    await table.getByText('audited-2').first().waitFor();
    await page.getByLabel('Action').selectOption('ADDED');
    await page.getByLabel('Entity, user or status contains').fill('audited-1');
    await page.waitForFunction(() => [...document.querySelectorAll('table[aria-label="Audit events"] tbody tr')].length === 1);
    assert.match((await table.locator('tbody tr').innerText())!, /ADDED\taudited-1/);
    await page.getByLabel('Entity, user or status contains').fill('');
    await page.getByLabel('Action').selectOption('');
    await table.getByText('LOGIN').first().waitFor();
    await fx.shot('audit');
  });

  test('a device page lists the device\'s own audit events', async () => {
    const { page } = fx;
    await page.goto(fx.url(`/devices/${deviceId}`));
    const events = page.getByRole('region', { name: 'Audit events of this device' });
    await events.getByText('ADDED').waitFor();
    assert.equal(await events.getByText('audited-2').count(), 0);
  });
});
