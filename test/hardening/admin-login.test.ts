/**
 * Password guessing on the admin API (DESIGN 6): failed logins count per source address with the device-auth guard;
 * past the limit the login answers 429 with Retry-After without checking the password.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { DEFAULT_THROTTLE_LIMITS, parseRateLimit } from '../../src/core/throttle/index.ts';
import { ADMIN_EMAIL, ADMIN_PASSWORD, startTestServer, type TestServer } from '../support/harness.ts';

const LIMIT = parseRateLimit(DEFAULT_THROTTLE_LIMITS.authFailuresPerSource)[0];

describe('admin login brute force', () => {
  let server: TestServer;
  before(async () => {
    server = await startTestServer({ logLevel: 'error' });
    server.core.throttle.exempt.clear(); // test clients are on loopback, which is exempt by default
  });
  after(() => server.close());

  const login = (password: string) =>
    fetch(`${server.httpUrl}/api/auth/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ username: ADMIN_EMAIL, password }) });

  it('answers 401 until the limit, then 429 with Retry-After even for the right password', async () => {
    for (let i = 0; i < LIMIT.capacity; i++) assert.equal((await login(`wrong-${i}`)).status, 401);
    const blocked = await login(ADMIN_PASSWORD);
    assert.equal(blocked.status, 429);
    assert.ok(Number(blocked.headers.get('retry-after')) > 0);
    server.core.throttle.clear();
    assert.equal((await login(ADMIN_PASSWORD)).status, 200);
  });

  it('a successful login does not count against the address', async () => {
    server.core.throttle.clear();
    for (let i = 0; i < LIMIT.capacity + 2; i++) assert.equal((await login(ADMIN_PASSWORD)).status, 200);
  });
});
