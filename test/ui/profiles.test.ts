/**
 * Device profiles in the console: create with generated key and secret, the secret masked until revealed, the
 * provisioning commands shown for the profile really provision devices (curl, the guide's Python script, coap-client),
 * the API's refusals shown (a taken name, deleting a profile in use), an X.509 profile from an uploaded CA file.
 */
import assert from 'node:assert/strict';
import { execFile, execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { after, before, describe, test } from 'node:test';
import { adminCall, startConsole, skipWithoutChromium, type ConsoleFixture } from './browser.ts';
import { skipForMissingTool } from '../support/tools.ts';

const run = promisify(execFile);

describe('device profiles page', { skip: skipWithoutChromium() }, () => {
  let fx: ConsoleFixture;
  let profileUrl = '';
  const work = mkdtempSync(join(tmpdir(), 'fleetgate-ui-profiles-'));
  before(async () => {
    fx = await startConsole();
    await fx.login();
  });
  after(async () => {
    await fx?.close();
    rmSync(work, { recursive: true, force: true });
  });

  test('a profile is created with a generated key and secret; the secret stays masked until revealed', async () => {
    const { page } = fx;
    await page.goto(fx.url('/profiles'));
    await page.getByRole('button', { name: 'New profile' }).click();
    await page.getByRole('button', { name: 'Create profile' }).click();
    await page.getByRole('alert').filter({ hasText: 'Name is required.' }).waitFor();
    await page.getByLabel('Name', { exact: true }).fill('Sensors');
    await page.getByLabel('Description').fill('Thermometers in hall 3');
    await fx.shot('profile-form');
    const key = await page.getByLabel('Provision key').inputValue();
    const secret = await page.getByLabel('Provision secret').inputValue();
    assert.match(key, /^[a-z0-9]{20}$/);
    assert.match(secret, /^[a-z0-9]{20}$/);
    await page.getByRole('button', { name: 'Create profile' }).click();
    await page.getByRole('heading', { name: 'Sensors' }).waitFor();
    profileUrl = page.url();
    const masked = page.getByLabel('provision secret', { exact: true });
    assert.equal(await masked.getAttribute('data-secret'), 'masked');
    assert.ok(!(await page.content()).includes(secret), 'the secret is not in the page while masked');
    await page.getByRole('button', { name: 'Reveal provision secret' }).click();
    assert.equal(await masked.textContent(), secret);
    await page.getByRole('button', { name: 'Hide provision secret' }).click();
    await fx.shot('profile');
  });

  test('the curl command shown for the profile provisions a device', async () => {
    const { page } = fx;
    await page.getByLabel('Device name for the commands').fill('curl-device-1');
    const masked = await page.getByLabel('HTTP (curl)', { exact: true }).textContent();
    assert.match(masked!, /••••••••/);
    await page.getByLabel('Show the secret in the commands').check();
    const curl = await page.getByLabel('HTTP (curl)', { exact: true }).textContent();
    assert.ok(curl?.startsWith('curl '), curl ?? '');
    const { stdout } = await run('sh', ['-c', curl!]);
    const answer = JSON.parse(stdout);
    assert.equal(answer.status, 'SUCCESS');
    assert.equal(answer.deviceName, 'curl-device-1');
  });

  test('the guide\'s Python script, filled in by the console, provisions a device over MQTT and connects with its token', async (t) => {
    if (!existsSync('/usr/lib/python3/dist-packages/paho')) return skipForMissingTool(t, 'python3-paho-mqtt is not installed');
    const { page } = fx;
    await page.getByLabel('Device name for the commands').fill('python-device-1');
    await page.getByRole('tab', { name: 'MQTT (Python script)' }).click();
    const script = (await page.getByLabel('MQTT (Python script)', { exact: true }).textContent())!;
    assert.match(script, new RegExp(`THINGSBOARD_PORT = ${fx.server.mqttPort}`));
    const child = spawn('/usr/bin/python3', ['-c', script], { cwd: work, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (out += d));
    const deadline = Date.now() + 60_000;
    while (!/Connected to ThingsBoard with credentials/.test(out) && child.exitCode === null && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
    child.kill();
    assert.match(out, /Connected to ThingsBoard with credentials: \S+/, out);
    assert.ok(readFileSync(join(work, 'credentials'), 'utf8').length > 0);
  });

  test('the coap-client command provisions a device over CoAP', async (t) => {
    if (!existsSync('/usr/bin/coap-client-notls')) return skipForMissingTool(t, 'libcoap3-bin is not installed');
    const { page } = fx;
    await page.getByLabel('Device name for the commands').fill('coap-device-1');
    await page.getByRole('tab', { name: 'CoAP (coap-client)' }).click();
    const command = (await page.getByLabel('CoAP (coap-client)', { exact: true }).textContent())!;
    assert.match(command, /^coap-client /);
    const { stdout } = await run('sh', ['-c', command.replace(/^coap-client/, 'coap-client-notls')]);
    assert.equal(JSON.parse(stdout).status, 'SUCCESS');
  });

  test('a profile is edited: description and strategy change, the key stays', async () => {
    const { page } = fx;
    await page.goto(profileUrl);
    const key = await page.locator('dd code').first().textContent();
    await page.getByRole('button', { name: 'Edit' }).click();
    await page.getByLabel('Description').fill('Thermometers, all halls');
    await page.getByLabel('Provisioning strategy').selectOption('CHECK_PRE_PROVISIONED_DEVICES');
    await page.getByRole('button', { name: 'Save' }).click();
    await page.getByText('Thermometers, all halls').waitFor();
    await page.getByText('Check pre-provisioned devices').waitFor();
    assert.equal(await page.locator('dd code').first().textContent(), key);
    await page.getByRole('button', { name: 'Edit' }).click();
    await page.getByLabel('Provisioning strategy').selectOption('ALLOW_CREATE_NEW_DEVICES');
    await page.getByRole('button', { name: 'Save' }).click();
    await page.getByText('Allow creating new devices').waitFor();
  });

  test('a second profile with the same name shows the API\'s refusal', async () => {
    const { page } = fx;
    await page.goto(fx.url('/profiles/new'));
    await page.getByLabel('Name', { exact: true }).fill('Sensors');
    await page.getByRole('button', { name: 'Create profile' }).click();
    const alert = page.getByRole('alert');
    await alert.waitFor();
    assert.match((await alert.textContent())!, /\S/);
    assert.doesNotMatch((await alert.textContent())!, /Name is required/);
  });

  test('deleting a profile that devices use shows the refusal; the list shows the profiles', async () => {
    const { page } = fx;
    await page.goto(profileUrl);
    await page.getByRole('button', { name: 'Delete', exact: true }).click();
    await page.getByRole('button', { name: 'Delete profile' }).click();
    const alert = page.getByRole('dialog').getByRole('alert');
    await alert.waitFor();
    await page.getByRole('button', { name: 'Cancel' }).click();
    await page.goto(fx.url('/profiles'));
    await page.getByRole('link', { name: 'Sensors' }).waitFor();
    await fx.shot('profiles');
  });

  test('an X.509 chain profile takes its CA from an uploaded file and is deleted when unused', async () => {
    const { page } = fx;
    execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', join(work, 'ca.key'), '-out', join(work, 'ca.pem'), '-days', '2', '-subj', '/CN=Fleet CA'], { stdio: 'ignore' });
    await page.goto(fx.url('/profiles/new'));
    await page.getByLabel('Name', { exact: true }).fill('Fleet X509');
    await page.getByLabel('Provisioning strategy').selectOption('X509_CERTIFICATE_CHAIN');
    await page.getByRole('button', { name: 'Create profile' }).click();
    await page.getByRole('alert').filter({ hasText: 'CA certificate' }).waitFor();
    await page.getByLabel('CA certificate file (PEM)').setInputFiles(join(work, 'ca.pem'));
    await page.getByLabel('CN pattern (group 1 is the device name)').fill('^(device-\\d+)$');
    await page.getByRole('button', { name: 'Create profile' }).click();
    await page.getByRole('heading', { name: 'Fleet X509' }).waitFor();
    const profiles = await adminCall<{ data: { name: string; provisionType: string; profileData: { provisionConfiguration: { provisionDeviceSecret: string; certificateRegExPattern: string } } }[] }>(fx.server, 'GET', '/api/deviceProfiles?pageSize=50&page=0');
    const x509 = profiles.body.data.find((p) => p.name === 'Fleet X509')!;
    assert.equal(x509.provisionType, 'X509_CERTIFICATE_CHAIN');
    assert.equal(x509.profileData.provisionConfiguration.provisionDeviceSecret, readFileSync(join(work, 'ca.pem'), 'utf8').trim());
    assert.equal(x509.profileData.provisionConfiguration.certificateRegExPattern, '^(device-\\d+)$');
    await page.getByRole('button', { name: 'Delete', exact: true }).click();
    await page.getByRole('button', { name: 'Delete profile' }).click();
    await page.getByRole('heading', { name: 'Device profiles' }).waitFor();
    assert.equal((await page.getByRole('link', { name: 'Fleet X509' }).count()), 0);
  });
});
