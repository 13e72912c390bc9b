/**
 * The device table in the console: a device provisioned over HTTP appears without a reload; create with each kind of
 * credentials; search, filter, sort; delete after confirmation; import 1,000 devices from CSV with a progress bar and
 * a report; a bad CSV reported row by row; export; the page at 375 px.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { adminCall, startConsole, skipWithoutChromium, type ConsoleFixture } from './browser.ts';

describe('devices page', { skip: skipWithoutChromium() }, () => {
  let fx: ConsoleFixture;
  const work = mkdtempSync(join(tmpdir(), 'fleetgate-ui-devices-'));
  before(async () => {
    fx = await startConsole();
    const profile = (name: string, type: string, key: string) =>
      adminCall(fx.server, 'POST', '/api/deviceProfile', { name, provisionType: type, provisionDeviceKey: key, profileData: { provisionConfiguration: { type, provisionDeviceSecret: `${key}-secret` } } });
    assert.equal((await profile('Open', 'ALLOW_CREATE_NEW_DEVICES', 'open-key')).status, 200);
    assert.equal((await profile('Factory', 'CHECK_PRE_PROVISIONED_DEVICES', 'factory-key')).status, 200);
    await fx.login();
  });
  after(async () => {
    await fx?.close();
    rmSync(work, { recursive: true, force: true });
  });

  const credentialsOf = async (name: string) => {
    const device = await adminCall<{ id: { id: string } }>(fx.server, 'GET', `/api/tenant/devices?deviceName=${encodeURIComponent(name)}`);
    return (await adminCall<{ credentialsType: string; credentialsId: string; credentialsValue: string | null }>(fx.server, 'GET', `/api/device/${device.body.id.id}/credentials`)).body;
  };

  test('a device provisioned over HTTP appears in the table without a reload', async () => {
    const { page } = fx;
    await page.goto(fx.url('/devices'));
    await page.getByRole('heading', { name: 'Devices' }).waitFor();
    const res = await fetch(`${fx.server.httpUrl}/api/v1/provision`, {
      method: 'POST',
      body: JSON.stringify({ deviceName: 'provisioned-1', provisionDeviceKey: 'open-key', provisionDeviceSecret: 'open-key-secret' }),
    });
    assert.equal((await res.json()).status, 'SUCCESS');
    const row = page.getByRole('row').filter({ has: page.getByRole('link', { name: 'provisioned-1' }) });
    await row.waitFor();
    assert.match(await row.innerText(), /Access token\t\d{4}-\d\d-\d\d \d\d:\d\d:\d\d over HTTP/);
  });

  test('devices are created with an access token, MQTT basic or X.509 credentials; bad input is refused before sending', async () => {
    const { page } = fx;
    const dialog = page.getByRole('dialog');
    await page.getByRole('button', { name: 'New device' }).click();
    await dialog.getByRole('button', { name: 'Create device' }).click();
    await dialog.getByRole('alert').filter({ hasText: 'Name is required.' }).waitFor();
    await dialog.getByLabel('Name').fill('token-device');
    await dialog.getByLabel('Label').fill('hall 3');
    await dialog.getByLabel('Access token').fill('token-device-token');
    await fx.shot('device-create');
    await dialog.getByRole('button', { name: 'Create device' }).click();
    await page.getByRole('link', { name: 'token-device' }).waitFor();
    assert.deepEqual(await credentialsOf('token-device'), { ...(await credentialsOf('token-device')), credentialsType: 'ACCESS_TOKEN', credentialsId: 'token-device-token' });

    await page.getByRole('button', { name: 'New device' }).click();
    await dialog.getByLabel('Name').fill('mqtt-device');
    await dialog.getByLabel('Credentials type').selectOption('MQTT_BASIC');
    await dialog.getByRole('button', { name: 'Create device' }).click();
    await dialog.getByRole('alert').filter({ hasText: 'client id or a user name' }).waitFor();
    await dialog.getByLabel('Client id').fill('mqtt-client-1');
    await dialog.getByLabel('User name').fill('mqtt-user-1');
    await dialog.getByLabel('Password').fill('mqtt-pass-1');
    await dialog.getByRole('button', { name: 'Create device' }).click();
    await page.getByRole('link', { name: 'mqtt-device' }).waitFor();
    const mqtt = await credentialsOf('mqtt-device');
    assert.equal(mqtt.credentialsType, 'MQTT_BASIC');
    assert.deepEqual(JSON.parse(mqtt.credentialsValue!), { clientId: 'mqtt-client-1', userName: 'mqtt-user-1', password: 'mqtt-pass-1' });

    execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', join(work, 'd.key'), '-out', join(work, 'd.pem'), '-days', '2', '-subj', '/CN=x509-device'], { stdio: 'ignore' });
    await page.getByRole('button', { name: 'New device' }).click();
    await dialog.getByLabel('Name').fill('x509-device');
    await dialog.getByLabel('Credentials type').selectOption('X509_CERTIFICATE');
    await dialog.getByLabel('Certificate file (PEM)').setInputFiles(join(work, 'd.pem'));
    await dialog.getByRole('button', { name: 'Create device' }).click();
    await page.getByRole('link', { name: 'x509-device' }).waitFor();
    assert.equal((await credentialsOf('x509-device')).credentialsType, 'X509_CERTIFICATE');

    // A token another device holds: the API's refusal is shown and no half-made device is left.
    await page.getByRole('button', { name: 'New device' }).click();
    await dialog.getByLabel('Name').fill('dup-token-device');
    await dialog.getByLabel('Access token').fill('token-device-token');
    await dialog.getByRole('button', { name: 'Create device' }).click();
    await dialog.getByRole('alert').waitFor();
    await page.keyboard.press('Escape');
    assert.equal((await adminCall(fx.server, 'GET', '/api/tenant/devices?deviceName=dup-token-device')).status, 404);
  });

  test('search, the profile filter and sorting are done by the server', async () => {
    const { page } = fx;
    await page.getByLabel('Search devices').fill('mqtt');
    await page.getByRole('link', { name: 'token-device' }).waitFor({ state: 'detached' });
    assert.equal(await page.getByRole('table', { name: 'Devices' }).getByRole('link').count(), 1);
    await page.getByLabel('Search devices').fill('');
    // Each filter's answer is awaited as the list it must show: the link that a filter removes may already be gone
    // while the previous filter's answer is still on its way.
    const listShows = (names: string[]) =>
      page.waitForFunction((want) => JSON.stringify([...document.querySelectorAll('table[aria-label="Devices"] tbody a')].map((a) => a.textContent).sort()) === want, JSON.stringify([...names].sort()));
    await page.getByLabel('Profile').selectOption({ label: 'Open' });
    await listShows(['provisioned-1']);
    await page.getByLabel('Profile').selectOption({ label: 'All profiles' });
    await listShows(['x509-device', 'mqtt-device', 'token-device', 'provisioned-1']);
    await page.getByLabel('Provision state').selectOption({ label: 'Provisioned by the device' });
    await listShows(['provisioned-1']);
    assert.deepEqual(await page.getByRole('table', { name: 'Devices' }).getByRole('link').allTextContents(), ['provisioned-1']);
    await page.getByLabel('Provision state').selectOption({ label: 'Not provisioned (created or imported)' });
    await page.getByRole('link', { name: 'provisioned-1' }).waitFor({ state: 'detached' });
    await page.getByLabel('Provision state').selectOption({ label: 'Any' });
    await page.getByRole('button', { name: /^Name/ }).click();
    await page.waitForFunction(() => document.querySelector('table[aria-label="Devices"] tbody tr a')?.textContent === 'mqtt-device');
    await page.getByRole('button', { name: /^Name/ }).click();
    await page.waitForFunction(() => document.querySelector('table[aria-label="Devices"] tbody tr a')?.textContent === 'x509-device');
  });

  test('a device is deleted after confirmation', async () => {
    const { page } = fx;
    await page.getByRole('button', { name: 'Delete x509-device' }).click();
    await page.getByRole('dialog').getByRole('button', { name: 'Delete device' }).click();
    await page.getByRole('link', { name: 'x509-device' }).waitFor({ state: 'detached' });
    assert.equal((await adminCall(fx.server, 'GET', '/api/tenant/devices?deviceName=x509-device')).status, 404);
  });

  test('a CSV of 1,000 devices is imported with a progress bar and a report', async () => {
    const { page } = fx;
    const lines = ['name,label,accessToken'];
    for (let i = 0; i < 1000; i++) lines.push(`meter-${String(i).padStart(4, '0')},batch 7,meter-token-${i}`);
    writeFileSync(join(work, 'meters.csv'), lines.join('\r\n') + '\r\n');
    await page.getByRole('button', { name: 'Import CSV' }).click();
    const dialog = page.getByRole('dialog');
    await dialog.getByLabel('CSV file').setInputFiles(join(work, 'meters.csv'));
    await dialog.getByRole('button', { name: 'Import', exact: true }).click();
    await dialog.getByText('Imported 1000 of 1000 rows').waitFor({ timeout: 90_000 });
    assert.match((await dialog.getByRole('status').textContent())!, /1000 created, 0 skipped, 0 rejected/);
    await fx.shot('device-import');
    const listed = await adminCall<{ totalElements: number }>(fx.server, 'GET', '/api/tenant/devices?pageSize=1&page=0&textSearch=meter-');
    assert.equal(listed.body.totalElements, 1000);
  });

  test('a CSV with broken rows is reported row by row with the file\'s line numbers; an unreadable one is refused', async () => {
    const { page } = fx;
    const dialog = page.getByRole('dialog');
    writeFileSync(
      join(work, 'bad.csv'),
      ['name,accessToken', 'fresh-1,fresh-token-1', 'meter-0001,other-token', '"quoted, name",x,too-many', '', 'steals-token,meter-token-5', 'fresh-2,fresh-token-2'].join('\n') + '\n',
    );
    await dialog.getByLabel('CSV file').setInputFiles(join(work, 'bad.csv'));
    await dialog.getByRole('button', { name: 'Import', exact: true }).click();
    await dialog.getByText('Imported 6 of 6 rows').or(dialog.getByText('Imported 5 of 5 rows')).waitFor();
    await dialog.getByRole('status').filter({ hasText: '2 created, 1 skipped, 2 rejected' }).waitFor();
    const report = await dialog.getByRole('table', { name: 'Rows not created' }).locator('tbody tr').allInnerTexts();
    assert.equal(report.length, 3);
    assert.match(report[0], /^3\tmeter-0001\tskipped/);
    assert.match(report[1], /^4\tquoted, name\trejected\texpected 2 fields, found 3/);
    assert.match(report[2], /^6\tsteals-token\trejected\t\S+/);
    await fx.shot('device-import-report');

    writeFileSync(join(work, 'unreadable.csv'), 'name,colour\na,red\n');
    await dialog.getByLabel('CSV file').setInputFiles(join(work, 'unreadable.csv'));
    await dialog.getByRole('button', { name: 'Import', exact: true }).click();
    await dialog.getByRole('alert').filter({ hasText: 'unknown column "colour"' }).waitFor();
    await page.keyboard.press('Escape');
  });

  test('export downloads the devices with their credentials as CSV', async () => {
    const { page } = fx;
    await page.getByRole('button', { name: 'Export CSV' }).click();
    await page.getByLabel('Export profile').selectOption({ label: 'Factory' });
    const [download] = await Promise.all([page.waitForEvent('download'), page.getByRole('button', { name: 'Download CSV' }).click()]);
    const path = join(work, 'export.csv');
    await download.saveAs(path);
    const csv = readFileSync(path, 'utf8').trim().split(/\r?\n/);
    assert.match(csv[0], /^name,type,label,credentialsType,accessToken/);
    assert.equal(csv.length, 1 + 1002);
  });

  test('the table is usable at 375 px and in dark mode', async () => {
    const { page } = fx;
    await page.setViewportSize({ width: 375, height: 740 });
    await page.emulateMedia({ colorScheme: 'dark' });
    await page.goto(fx.url('/devices'));
    await page.getByRole('link', { name: 'meter-0999' }).waitFor();
    const overflow = await page.evaluate(() => document.documentElement.scrollWidth - document.documentElement.clientWidth);
    assert.ok(overflow <= 0, `the page scrolls sideways by ${overflow}px`);
    const bg = await page.evaluate(() => getComputedStyle(document.body).backgroundColor);
    assert.equal(bg, 'rgb(18, 21, 26)');
    await fx.shot('devices-375-dark');
    await page.setViewportSize({ width: 1280, height: 800 });
    await page.emulateMedia({ colorScheme: 'light' });
    await page.getByLabel('Search devices').fill('');
    await fx.shot('devices');
  });
});
