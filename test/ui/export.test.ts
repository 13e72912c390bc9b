/**
 * The export page against a real server (SQLite) and a real local webhook receiver: a rule created in the page
 * receives telemetry sent over HTTP; a failing receiver leaves a dead letter that the page shows and replays; the form
 * checks its input before sending and shows the API's own message when the server refuses; enable, disable, delete.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { createTokenDevice } from '../support/telemetry-load.ts';
import { eventually, startReceiver, type Receiver } from '../export/receiver.ts';
import { adminCall, startConsole, skipWithoutChromium, type ConsoleFixture } from './browser.ts';

const SECRET = 'console-signing-secret';
const HEADER_VALUE = 'Bearer console-header-value';

interface RuleJson {
  id: { id: string };
  name: string;
  enabled: boolean;
  kinds: string[];
  destination: { secret: string | null; headers: Record<string, string> };
}

describe('export page', { skip: skipWithoutChromium() }, () => {
  let fx: ConsoleFixture;
  let receiver: Receiver;
  let ruleId = '';
  const rulePosts: string[] = [];
  const post = (ts: number) => fetch(`${fx.server.httpUrl}/api/v1/ui-export-token/telemetry`, { method: 'POST', body: JSON.stringify({ ts, values: { temperature: ts / 100 } }) });
  const acceptedTs = () => receiver.accepted.filter((m) => m.kind === 'telemetry').flatMap((m) => m.data.telemetry.map((p: { ts: number }) => p.ts));
  const rules = async () => (await adminCall<RuleJson[]>(fx.server, 'GET', '/api/export/rules')).body;

  before(async () => {
    receiver = await startReceiver();
    fx = await startConsole({ exportRetryBaseMs: 50, exportDeadLetterAgeMs: 500, exportLeaseMs: 4000 });
    await createTokenDevice(fx.server.httpUrl, await fx.server.adminToken(), 'ui-export-token', 'ui-export-device');
    fx.page.on('request', (req) => {
      if (req.method() === 'POST' && req.url().endsWith('/api/export/rule')) rulePosts.push(req.postData() ?? '');
    });
    await fx.login();
  });
  after(async () => {
    await fx?.close();
    await receiver?.close();
  });

  test('the form checks its input before sending and shows the API\'s message when the server refuses', async () => {
    const { page } = fx;
    await page.goto(fx.url('/export/new'));
    await page.getByRole('heading', { name: 'New export rule' }).waitFor();
    await page.getByLabel('Name', { exact: true }).fill('bad-rule');
    await page.getByLabel('Telemetry').uncheck();
    await page.getByLabel('Webhook URL').fill(receiver.url);
    await page.getByRole('button', { name: 'Create rule' }).click();
    await page.getByRole('alert').getByText('Choose at least one kind of message').waitFor();
    await page.getByLabel('Telemetry').check();
    await page.getByLabel('Batch size').fill('0');
    await page.getByRole('button', { name: 'Create rule' }).click();
    await page.getByRole('alert').getByText('Batch size must be a whole number from 1 to 10000').waitFor();
    await page.getByLabel('Batch size').fill('100');
    await page.getByLabel('Headers, one per line (Name: value)').fill('no colon here');
    await page.getByRole('button', { name: 'Create rule' }).click();
    await page.getByRole('alert').getByText('Header line 1 is not "Name: value"').waitFor();
    assert.equal(rulePosts.length, 0, 'nothing was sent while the form had errors');

    await page.getByLabel('Headers, one per line (Name: value)').fill('');
    await page.getByLabel('Webhook URL').fill('not a url');
    await page.getByRole('button', { name: 'Create rule' }).click();
    await page.getByRole('alert').getByText('destination.url is not a URL: not a url').waitFor();
    await page.getByLabel('Webhook URL').fill('ftp://example.com/in');
    await page.getByRole('button', { name: 'Create rule' }).click();
    await page.getByRole('alert').getByText('destination.url must start with http:// or https://').waitFor();
    assert.equal(rulePosts.length, 2, 'the server was asked twice and refused');
    assert.deepEqual(await rules(), []);
  });

  test('a webhook rule created in the page receives telemetry sent over HTTP; secrets are never shown', async () => {
    const { page } = fx;
    await page.goto(fx.url('/export'));
    await page.getByRole('button', { name: 'New rule' }).click();
    await page.getByLabel('Name', { exact: true }).fill('to-receiver');
    await page.getByLabel('Client attributes').check();
    await page.getByLabel('Webhook URL').fill(receiver.url);
    await page.getByLabel('Signing secret (optional)').fill(SECRET);
    await page.getByLabel('Headers, one per line (Name: value)').fill(`Authorization: ${HEADER_VALUE}`);
    await page.getByLabel('Batch size').fill('50');
    await page.getByRole('button', { name: 'Create rule' }).click();
    await page.getByRole('heading', { level: 1, name: 'to-receiver' }).waitFor();
    ruleId = decodeURIComponent(new URL(page.url()).hash.split('/')[2]);
    const [rule] = await rules();
    assert.equal(rule.id.id, ruleId);
    assert.deepEqual(rule.kinds, ['telemetry', 'attributes']);

    assert.equal((await post(1000)).status, 200);
    await eventually('the receiver got the telemetry', () => acceptedTs().includes(1000));
    const delivery = receiver.deliveries.find((d) => d.status === 200)!;
    assert.equal(delivery.headers.authorization, HEADER_VALUE);
    assert.match(String(delivery.headers['x-fleetgate-signature']), /^sha256=[0-9a-f]{64}$/);

    const body = await page.locator('body').innerText();
    assert.ok(!body.includes(SECRET) && !body.includes(HEADER_VALUE), 'the page never shows a secret');
    assert.match(body, /Signing secret\s+\*{8}/);
    await page.getByRole('link', { name: '‹ Export rules' }).click();
    const row = page.getByRole('table', { name: 'Export rules' }).locator('tbody tr');
    await row.getByText('to-receiver').waitFor();
    const text = await row.innerText();
    assert.match(text, /Telemetry, Client attributes/);
    assert.ok(text.includes(receiver.url), text);
    assert.match(text, /webhook/);
  });

  test('a failing receiver leaves a dead letter in the page; Replay delivers it once the receiver is fixed', async () => {
    const { page } = fx;
    receiver.answer = () => ({ status: 500 });
    assert.equal((await post(2000)).status, 200);
    await page.goto(fx.url(`/export/${ruleId}`));
    const letters = page.getByRole('table', { name: 'Dead letters' });
    await letters.locator('tbody tr').first().waitFor({ timeout: 60_000 });
    const row = await letters.locator('tbody tr').first().innerText();
    assert.match(row, /telemetry\s+ui-export-device/);
    assert.match(row, /answered 500/);
    assert.ok(!acceptedTs().includes(2000));
    await page.getByText(/Page 1 of 1 · 1 total/).first().waitFor();
    await fx.shot('export');

    receiver.answer = () => ({ status: 200 });
    await page.getByRole('button', { name: 'Replay all dead letters of this rule' }).click();
    await page.getByRole('status').getByText('1 dead letter back in the outbox').waitFor();
    await eventually('the replayed message is delivered', () => acceptedTs().includes(2000));
    await page.waitForFunction(() => document.querySelectorAll('table[aria-label="Dead letters"] tbody tr').length === 0);
    const left = await adminCall<{ totalElements: number }>(fx.server, 'GET', `/api/export/deadLetters?ruleId=${ruleId}&pageSize=10&page=0`);
    assert.equal(left.body.totalElements, 0);
  });

  test('the rule\'s page shows its lanes and a lane the receiver keeps refusing, with the error', async () => {
    const { page } = fx;
    receiver.answer = () => ({ status: 503, headers: { 'retry-after': '3600' } });
    try {
      assert.equal((await post(3000)).status, 200);
      await page.goto(fx.url(`/export/${ruleId}`));
      await page.getByRole('heading', { name: 'Retrying lanes' }).waitFor({ timeout: 60_000 });
      const lane = await page.getByRole('table', { name: 'Delivery lanes' }).locator('tbody tr').first().innerText();
      assert.match(lane, /answered 503/);
      assert.match(await page.locator('body').innerText(), /Lanes\s+4\s/, 'a rule created in the page has the default 4 lanes');
      assert.match(await page.locator('body').innerText(), /1 lane retrying/);
    } finally {
      receiver.answer = () => ({ status: 200 });
    }
  });

  test('disable and enable from the list; delete asks first', async () => {
    const { page } = fx;
    await page.goto(fx.url('/export'));
    await page.getByRole('button', { name: 'Disable rule to-receiver' }).click();
    await page.getByRole('button', { name: 'Enable rule to-receiver' }).waitFor();
    assert.equal((await rules())[0].enabled, false);
    await page.getByRole('button', { name: 'Enable rule to-receiver' }).click();
    await page.getByRole('button', { name: 'Disable rule to-receiver' }).waitFor();
    assert.equal((await rules())[0].enabled, true);

    await page.getByRole('link', { name: 'to-receiver' }).click();
    await page.getByRole('button', { name: 'Delete', exact: true }).click();
    const dialog = page.getByRole('dialog', { name: 'Delete export rule to-receiver?' });
    await dialog.getByRole('button', { name: 'Cancel' }).click();
    assert.equal((await rules()).length, 1, 'Cancel keeps the rule');
    await page.getByRole('button', { name: 'Delete', exact: true }).click();
    await dialog.getByRole('button', { name: 'Delete rule' }).click();
    await page.getByText('No export rules yet.').waitFor();
    assert.deepEqual(await rules(), []);
  });
});
