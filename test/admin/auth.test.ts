import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { ADMIN_EMAIL, ADMIN_PASSWORD, startTestServer, type TestServer } from '../support/harness.ts';
import { adminClient, tbError, type AdminClient } from './admin-client.ts';

const SECRET = 'admin-auth-test-secret';

/** An HS256 JWT signed by hand, to present tokens the server would never issue (expired, foreign). */
function handmadeJwt(claims: Record<string, unknown>, secret: string): string {
  const part = (value: object) => Buffer.from(JSON.stringify(value)).toString('base64url');
  const unsigned = `${part({ alg: 'HS256', typ: 'JWT' })}.${part(claims)}`;
  return `${unsigned}.${createHmac('sha256', secret).update(unsigned).digest('base64url')}`;
}

function decodeClaims(token: string): Record<string, unknown> {
  return JSON.parse(Buffer.from(token.split('.')[1], 'base64url').toString('utf8'));
}

describe('admin authentication', () => {
  let server: TestServer;
  let api: AdminClient;

  before(async () => {
    server = await startTestServer({ jwtSecret: SECRET, jwtExpirySeconds: 900 });
    api = await adminClient(server);
  });
  after(() => server.close());

  async function login(username: string, password: string) {
    return api.post('/api/auth/login', { username, password }, { token: null });
  }

  it('logs in with the right password and returns a token pair with ThingsBoard claims', async () => {
    const res = await login(ADMIN_EMAIL, ADMIN_PASSWORD);
    assert.equal(res.status, 200);
    assert.equal(typeof res.json.token, 'string');
    assert.equal(typeof res.json.refreshToken, 'string');
    const claims = decodeClaims(res.json.token);
    assert.equal(claims.sub, ADMIN_EMAIL);
    assert.ok(Array.isArray(claims.scopes) && claims.scopes.length === 1);
    assert.equal(typeof claims.userId, 'string');
    assert.equal(typeof claims.tenantId, 'string');
    assert.equal((claims.exp as number) - (claims.iat as number), 900);
  });

  it('rejects a wrong password with 401 and ThingsBoard error JSON', async () => {
    const res = await login(ADMIN_EMAIL, 'not-the-password');
    assert.equal(res.status, 401);
    const body = tbError(res);
    assert.equal(body.message, 'Invalid username or password');
    assert.equal(body.errorCode, 10);
  });

  it('rejects an unknown user with 401', async () => {
    assert.equal((await login('nobody@test.local', ADMIN_PASSWORD)).status, 401);
  });

  it('answers 400, not 500, to a login body that is not JSON or lacks fields', async () => {
    assert.equal((await api.call('POST', '/api/auth/login', { raw: '{"username":', token: null })).status, 400);
    assert.equal((await api.post('/api/auth/login', { username: ADMIN_EMAIL }, { token: null })).status, 400);
    assert.equal((await api.post('/api/auth/login', [1, 2], { token: null })).status, 400);
  });

  it('answers 401 to a protected route without a token', async () => {
    const res = await api.get('/api/auth/user', { token: null });
    assert.equal(res.status, 401);
    assert.equal(tbError(res).errorCode, 10);
  });

  it('accepts the token in X-Authorization and in Authorization', async () => {
    const token = await server.adminToken();
    for (const header of ['X-Authorization', 'Authorization'] as const) {
      const res = await api.get('/api/auth/user', { token, header });
      assert.equal(res.status, 200, header);
      assert.equal(res.json.email, ADMIN_EMAIL);
      assert.equal(res.json.id.entityType, 'USER');
      assert.equal(res.json.tenantId.entityType, 'TENANT');
      assert.equal(res.json.passwordHash, undefined);
    }
  });

  it('rejects a garbage token with 401', async () => {
    assert.equal((await api.get('/api/auth/user', { token: 'garbage' })).status, 401);
    assert.equal((await api.call('GET', '/api/auth/user', { token: null, header: 'Authorization' })).status, 401);
  });

  it('rejects an expired token with 401 "Token has expired" and ThingsBoard\'s errorCode 11 (JWT_TOKEN_EXPIRED)', async () => {
    const claims = decodeClaims(await server.adminToken());
    const now = Math.floor(Date.now() / 1000);
    const expired = handmadeJwt({ ...claims, iat: now - 7200, exp: now - 3600 }, SECRET);
    const res = await api.get('/api/auth/user', { token: expired });
    assert.equal(res.status, 401);
    assert.equal(tbError(res).message, 'Token has expired');
    assert.equal(tbError(res).errorCode, 11, 'clients refresh their token on 11');
    const garbage = await api.get('/api/auth/user', { token: 'garbage' });
    assert.equal(tbError(garbage).errorCode, 10, 'an invalid token stays 10');
  });

  it('rejects a token signed with another secret', async () => {
    const claims = decodeClaims(await server.adminToken());
    const forged = handmadeJwt(claims, 'some-other-secret');
    assert.equal((await api.get('/api/auth/user', { token: forged })).status, 401);
  });

  it('trades a refresh token for a new working pair, and refuses it as an access token', async () => {
    const first = await login(ADMIN_EMAIL, ADMIN_PASSWORD);
    assert.equal((await api.get('/api/auth/user', { token: first.json.refreshToken })).status, 401);
    const refreshed = await api.post('/api/auth/token', { refreshToken: first.json.refreshToken }, { token: null });
    assert.equal(refreshed.status, 200);
    assert.notEqual(refreshed.json.token, first.json.token);
    assert.equal((await api.get('/api/auth/user', { token: refreshed.json.token })).status, 200);
  });

  it('refuses an access token or garbage at the refresh endpoint', async () => {
    const token = await server.adminToken();
    assert.equal((await api.post('/api/auth/token', { refreshToken: token }, { token: null })).status, 401);
    assert.equal((await api.post('/api/auth/token', { refreshToken: 'x.y.z' }, { token: null })).status, 401);
    assert.equal((await api.post('/api/auth/token', {}, { token: null })).status, 400);
  });

  it('records logins in the audit log', async () => {
    await login(ADMIN_EMAIL, 'wrong');
    const res = await api.get('/api/audit/logs?pageSize=50&page=0');
    assert.equal(res.status, 200);
    const logins = res.json.data.filter((entry: { actionType: string }) => entry.actionType === 'LOGIN');
    assert.ok(logins.some((entry: { actionStatus: string }) => entry.actionStatus === 'SUCCESS'));
    assert.ok(logins.some((entry: { actionStatus: string; actionFailureDetails: string }) => entry.actionStatus === 'FAILURE' && entry.actionFailureDetails === 'Invalid username or password'));
    assert.ok(!res.text.includes('wrong'), 'the attempted password is never in the audit log');
  });
});
