/**
 * ThingsBoard's auth, audit and API-key calls over real HTTP (spec §5, §6; §7 items 38-42): GET /api/auth/user,
 * POST /api/auth/changePassword (outdating tokens), the per-entity and per-user audit logs, and API keys.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { ADMIN_EMAIL, ADMIN_PASSWORD, startTestServer, type TestServer } from '../support/harness.ts';
import { adminClient, tbError, type AdminClient, type ApiResponse } from './admin-client.ts';
import { readResponse } from '../support/fixtures.ts';

const UNKNOWN = '5a0d6f4e-1111-4222-8333-444455556666';

describe('auth, audit and API keys (SQLite)', () => {
  let server: TestServer;
  let api: AdminClient;
  let userId: string;

  before(async () => {
    server = await startTestServer();
    api = await adminClient(server);
    userId = (await api.get('/api/auth/user')).json.id.id;
  });
  after(() => server.close());

  const withHeader = async (method: string, path: string, header: string, body?: unknown): Promise<ApiResponse> => {
    const headers: Record<string, string> = { 'x-authorization': header };
    if (body !== undefined) headers['content-type'] = 'application/json';
    return readResponse(await fetch(`${server.httpUrl}${path}`, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) }));
  };
  const login = async (password: string) =>
    readResponse(await fetch(`${server.httpUrl}/api/auth/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ username: ADMIN_EMAIL, password }) }));

  // spec §7 item 41 testGetUser
  it('GET /api/auth/user answers the caller as a ThingsBoard User; 401 without a token', async () => {
    const me = await api.get('/api/auth/user');
    assert.equal(me.status, 200);
    assert.equal(me.json.email, ADMIN_EMAIL);
    assert.equal(me.json.authority, 'TENANT_ADMIN');
    assert.equal(me.json.id.entityType, 'USER');
    const anonymous = await api.get('/api/auth/user', { token: null });
    assert.equal(anonymous.status, 401);
    assert.equal(tbError(anonymous).errorCode, 10);
  });

  it('API keys: created with a value shown once, usable on admin routes, listed, disabled, redescribed, expired, deleted', async () => {
    const created = await api.post('/api/apiKey', { userId: { entityType: 'USER', id: userId }, description: 'CI key', enabled: true });
    assert.equal(created.status, 200, created.text);
    const value: string = created.json.value;
    assert.match(value, /^tb_[A-Za-z0-9_-]{86}$/);
    assert.equal(created.json.id.entityType, 'API_KEY');
    assert.deepEqual(created.json.userId, { entityType: 'USER', id: userId });
    assert.equal(created.json.expirationTime, 0);
    assert.equal(created.json.expired, false);
    const keyId = created.json.id.id;

    // every admin route accepts it; the request runs as the key's user
    const me = await withHeader('GET', '/api/auth/user', `ApiKey ${value}`);
    assert.equal(me.status, 200);
    assert.equal(me.json.email, ADMIN_EMAIL);
    const device = await withHeader('POST', '/api/device', `ApiKey ${value}`, { name: 'made with a key' });
    assert.equal(device.status, 200, device.text);
    const viaAuthorization = await readResponse(await fetch(`${server.httpUrl}/api/device/types`, { headers: { authorization: `ApiKey ${value}` } }));
    assert.equal(viaAuthorization.status, 200);

    // listed without values; the database holds no value
    const list = await api.get(`/api/apiKeys/${userId}?pageSize=10&page=0`);
    assert.equal(list.status, 200);
    assert.equal(list.json.totalElements, 1);
    assert.equal(list.json.data[0].value, undefined);
    assert.ok(!list.text.includes(value));
    const audit = await api.get('/api/audit/logs?pageSize=1000&page=0');
    assert.ok(!audit.text.includes(value), 'the value is never audited');
    assert.ok(audit.json.data.some((e: any) => e.actionType === 'ADDED' && e.entityId?.entityType === 'API_KEY'));
    assert.ok(audit.json.data.some((e: any) => e.actionType === 'LOGIN' && e.actionData?.method === 'API_KEY'), 'the use is audited');

    // update by POST with id: value null; userId and expirationTime cannot change
    const updated = await api.post('/api/apiKey', { ...created.json, value: undefined, description: 'CI key v2' });
    assert.equal(updated.status, 200, updated.text);
    assert.equal(updated.json.value, null);
    assert.equal(updated.json.description, 'CI key v2');
    assert.equal(tbError(await api.post('/api/apiKey', { ...updated.json, expirationTime: 5 })).message, 'Cannot update API key expiration time!');

    // raw-body description
    const described = await api.call('PUT', `/api/apiKey/${keyId}/description`, { raw: 'deploy bot', contentType: 'text/plain' });
    assert.equal(described.status, 200, described.text);
    assert.equal(described.json.description, 'deploy bot');
    const jsonish = await api.call('PUT', `/api/apiKey/${keyId}/description`, { raw: '"quoted"', contentType: 'application/json' });
    assert.equal(jsonish.json.description, '"quoted"', 'stored verbatim, as ThingsBoard does');
    assert.equal((await api.call('PUT', `/api/apiKey/${keyId}/description`, { raw: '', contentType: 'text/plain' })).status, 400);

    // disabled: refused at once; enabled again: accepted
    const disabled = await api.call('PUT', `/api/apiKey/${keyId}/enabled/false`);
    assert.equal(disabled.json.enabled, false);
    const refused = await withHeader('GET', '/api/auth/user', `ApiKey ${value}`);
    assert.equal(refused.status, 401);
    assert.equal(tbError(refused).message, 'User account is not active');
    assert.equal(tbError(refused).errorCode, 10);
    await api.call('PUT', `/api/apiKey/${keyId}/enabled/true`);
    assert.equal((await withHeader('GET', '/api/auth/user', `ApiKey ${value}`)).status, 200);

    // unknown, empty, wrong prefix case
    assert.equal(tbError(await withHeader('GET', '/api/auth/user', `ApiKey ${value}x`)).message, 'Invalid username or password');
    assert.equal((await withHeader('GET', '/api/auth/user', 'ApiKey ')).status, 401);
    assert.equal((await withHeader('GET', '/api/auth/user', `apikey ${value}`)).status, 401);

    // deleted: refused; deleting again 404
    assert.equal((await api.delete(`/api/apiKey/${keyId}`)).status, 200);
    assert.equal((await withHeader('GET', '/api/auth/user', `ApiKey ${value}`)).status, 401);
    const gone = await api.delete(`/api/apiKey/${keyId}`);
    assert.equal(gone.status, 404);
    assert.equal(tbError(gone).message, `Api key with id [${keyId}] is not found`);
    assert.equal((await api.delete(`/api/apiKey/${UNKNOWN}`)).status, 404);
  });

  it('API keys: expiry, defaults and validation', async () => {
    const expired = await api.post('/api/apiKey', { userId: { entityType: 'USER', id: userId }, description: 'old', enabled: true, expirationTime: Date.now() - 1000 });
    assert.equal(expired.status, 200, 'a past expiration time is accepted');
    assert.equal(expired.json.expired, true);
    const refused = await withHeader('GET', '/api/auth/user', `ApiKey ${expired.json.value}`);
    assert.equal(tbError(refused).message, 'API key is expired');
    const soon = await api.post('/api/apiKey', { userId: { entityType: 'USER', id: userId }, description: 'future', enabled: true, expirationTime: Date.now() + 3_600_000 });
    assert.equal((await withHeader('GET', '/api/auth/user', `ApiKey ${soon.json.value}`)).status, 200);
    const defaults = await api.post('/api/apiKey', { userId: { entityType: 'USER', id: userId }, description: 'defaults' });
    assert.equal(defaults.json.enabled, false, 'TB: an omitted enabled is false');
    assert.equal((await withHeader('GET', '/api/auth/user', `ApiKey ${defaults.json.value}`)).status, 401);
    assert.equal(tbError(await api.post('/api/apiKey', { userId: { entityType: 'USER', id: userId }, description: '  ' })).message, 'Validation error: description must not be blank');
    assert.equal(tbError(await api.post('/api/apiKey', { description: 'x' })).message, 'Invalid entity id');
    const noUser = await api.post('/api/apiKey', { userId: { entityType: 'USER', id: UNKNOWN }, description: 'x' });
    assert.equal(noUser.status, 404);
    assert.equal(tbError(noUser).message, `User with id [${UNKNOWN}] is not found`);
    const page = await api.get(`/api/apiKeys/${userId}?pageSize=2&page=0&sortProperty=description&sortOrder=DESC&textSearch=e`);
    assert.deepEqual(page.json.data.map((k: any) => k.description), ['future', 'defaults']);
    assert.equal(page.json.totalElements, 2);
    const paged = await api.get(`/api/apiKeys/${userId}?pageSize=2&page=0`);
    assert.equal(paged.json.totalElements, 3);
    assert.equal(paged.json.hasNext, true);
  });

  it('audit logs of one device and of one user, with time range, action types and sort', async () => {
    const device = (await api.post('/api/device', { name: 'audited device' })).json;
    await api.post('/api/device', { ...device, label: 'relabelled' });
    const entity = await api.get(`/api/audit/logs/entity/DEVICE/${device.id.id}?pageSize=10&page=0`);
    assert.equal(entity.status, 200, entity.text);
    assert.deepEqual(entity.json.data.map((e: any) => e.actionType), ['ADDED', 'UPDATED'], 'oldest first by default, as ThingsBoard');
    assert.ok(entity.json.data.every((e: any) => e.entityId.id === device.id.id && e.entityName === 'audited device'));
    const newest = await api.get(`/api/audit/logs/entity/DEVICE/${device.id.id}?pageSize=10&page=0&sortProperty=createdTime&sortOrder=DESC&actionTypes=updated`);
    assert.deepEqual(newest.json.data.map((e: any) => e.actionType), ['UPDATED']);
    const future = await api.get(`/api/audit/logs/entity/DEVICE/${device.id.id}?pageSize=10&page=0&startTime=${Date.now() + 60_000}`);
    assert.equal(future.json.totalElements, 0);
    const bad = await api.get(`/api/audit/logs/entity/DEVICE/${device.id.id}?pageSize=10&page=0&actionTypes=ADDED,NOPE`);
    assert.equal(tbError(bad).message, 'No enum constant org.thingsboard.server.common.data.audit.ActionType.NOPE');
    assert.equal((await api.get(`/api/audit/logs/entity/GADGET/${device.id.id}?pageSize=10&page=0`)).status, 400);
    const byUser = await api.get(`/api/audit/logs/user/${userId}?pageSize=1000&page=0`);
    assert.equal(byUser.status, 200);
    assert.ok(byUser.json.totalElements >= 3);
    assert.ok(byUser.json.data.every((e: any) => e.userId?.id === userId));
    assert.ok(byUser.json.data.some((e: any) => e.actionType === 'LOGIN'));
    const nobody = await api.get(`/api/audit/logs/user/${UNKNOWN}?pageSize=10&page=0`);
    assert.equal(nobody.json.totalElements, 0);
  });

  // spec §5.2, §7 item 41; runs last: it changes the administrator's password
  it('changePassword checks the current password and the policy, outdates old tokens, and leaves API keys working', async () => {
    const key = (await api.post('/api/apiKey', { userId: { entityType: 'USER', id: userId }, description: 'survives', enabled: true })).json.value;
    const oldPair = (await login(ADMIN_PASSWORD)).json as { token: string; refreshToken: string };
    const wrong = await api.post('/api/auth/changePassword', { currentPassword: 'nope', newPassword: 'whatever1' });
    assert.equal(tbError(wrong).message, "Current password doesn't match!");
    const tooLong = await api.post('/api/auth/changePassword', { currentPassword: ADMIN_PASSWORD, newPassword: 'x'.repeat(73) });
    assert.equal(tbError(tooLong).message, 'Password must be no more than 72 characters in length.');
    const same = await api.post('/api/auth/changePassword', { currentPassword: ADMIN_PASSWORD, newPassword: ADMIN_PASSWORD });
    assert.equal(tbError(same).message, 'New password should be different from existing!');
    const changed = await api.post('/api/auth/changePassword', { currentPassword: ADMIN_PASSWORD, newPassword: 'brand-new-password' });
    assert.equal(changed.status, 200, changed.text);
    assert.equal(typeof changed.json.token, 'string');
    assert.equal(typeof changed.json.refreshToken, 'string');
    // the old access token (and the harness's) is outdated: 401 code 11, as ThingsBoard
    const outdated = await api.get('/api/auth/user', { token: oldPair.token });
    assert.equal(outdated.status, 401);
    assert.equal(tbError(outdated).errorCode, 11);
    const oldRefresh = await readResponse(await fetch(`${server.httpUrl}/api/auth/token`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ refreshToken: oldPair.refreshToken }) }));
    assert.equal(oldRefresh.status, 401);
    assert.equal((await api.get('/api/auth/user', { token: changed.json.token })).status, 200);
    assert.equal((await login(ADMIN_PASSWORD)).status, 401);
    assert.equal((await login('brand-new-password')).status, 200);
    assert.equal((await withHeader('GET', '/api/auth/user', `ApiKey ${key}`)).status, 200, 'API keys are unaffected');
    const audit = await api.get('/api/audit/logs?pageSize=1000&page=0', { token: changed.json.token });
    assert.ok(!audit.text.includes('brand-new-password'));
  });
});
