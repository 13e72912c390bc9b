import assert from 'node:assert/strict';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { PROBE_TIMEOUT_MS } from '../../src/admin/health.ts';
import { DependencyUnavailableError } from '../../src/core/errors.ts';
import { registerAdminApi } from '../../src/admin/index.ts';
import { createHttpApp } from '../../src/transports/http/app.ts';
import { startTestServer, type TestServer } from '../support/harness.ts';
import { adminClient, tbError, type AdminClient } from './admin-client.ts';

describe('health, OpenAPI and request hygiene', () => {
  let server: TestServer;
  let api: AdminClient;

  before(async () => {
    server = await startTestServer();
    api = await adminClient(server);
  });
  after(() => server.close());

  it('GET /healthz answers 200 UP without a token when the server is ready and its database and bus answer', async () => {
    const res = await api.get('/healthz', { token: null });
    assert.equal(res.status, 200);
    assert.deepEqual(res.json, { status: 'UP', checks: { database: 'UP', bus: 'UP' } });
  });

  /** An admin API whose health checks are `probes` (fault injection: a failing or hanging part). */
  async function healthWith(probes: { database: () => Promise<void>; bus: () => Promise<void> }): Promise<{ status: number; body: unknown }> {
    const app = createHttpApp({ logger: server.logger, bodyLimit: 65536 });
    await registerAdminApi(app, { core: server.core, config: server.config, logger: server.logger, jwtSecret: 'x', isReady: () => true, probes });
    await app.listen({ host: '127.0.0.1', port: 0 });
    try {
      const res = await fetch(`http://127.0.0.1:${(app.server.address() as AddressInfo).port}/healthz`);
      return { status: res.status, body: await res.json() };
    } finally {
      await app.close();
    }
  }

  it('GET /healthz answers 503 naming the check that fails, and why', async () => {
    const res = await healthWith({ database: () => server.store.ping(), bus: () => Promise.reject(new Error('Redis subscriber connection is reconnecting')) });
    assert.deepEqual(res, { status: 503, body: { status: 'DOWN', checks: { database: 'UP', bus: 'DOWN' }, reasons: { bus: 'Redis subscriber connection is reconnecting' } } });
  });

  it("GET /healthz gives an outage's plain reason, not the generic message devices get", async () => {
    const full = new DependencyUnavailableError('database', 'the disk holding x.db is full (SQLITE_FULL)', 'free space');
    const res = await healthWith({ database: () => Promise.reject(full), bus: async () => {} });
    assert.deepEqual(res, { status: 503, body: { status: 'DOWN', checks: { database: 'DOWN', bus: 'UP' }, reasons: { database: 'the disk holding x.db is full (SQLITE_FULL)' } } });
  });

  it('GET /healthz counts a check that does not answer in time as down', async () => {
    const started = Date.now();
    const res = await healthWith({ database: () => new Promise(() => {}), bus: async () => {} });
    assert.deepEqual(res, { status: 503, body: { status: 'DOWN', checks: { database: 'DOWN', bus: 'UP' }, reasons: { database: 'no answer within 2 s' } } });
    assert.ok(Date.now() - started >= PROBE_TIMEOUT_MS - 50);
  });

  it('GET /healthz answers 503 while the server is not ready', async () => {
    const app = createHttpApp({ logger: server.logger, bodyLimit: 65536 });
    await registerAdminApi(app, { core: server.core, config: server.config, logger: server.logger, jwtSecret: 'x', isReady: () => false, probes: { database: async () => {}, bus: async () => {} } });
    await app.listen({ host: '127.0.0.1', port: 0 });
    try {
      const res = await fetch(`http://127.0.0.1:${(app.server.address() as AddressInfo).port}/healthz`);
      assert.equal(res.status, 503);
      assert.deepEqual(await res.json(), { status: 'DOWN' });
    } finally {
      await app.close();
    }
  });

  it('lists the device API in the same OpenAPI document, under its own tag', async () => {
    const doc = (await api.get('/api-docs/openapi.json', { token: null })).json as { paths: Record<string, Record<string, { tags?: string[] }>> };
    for (const [path, method] of [
      ['/api/v1/provision', 'post'],
      ['/api/v1/{token}/telemetry', 'post'],
      ['/api/v1/{token}/attributes', 'get'],
      ['/api/v1/{token}/rpc/{requestId}', 'post'],
    ] as const) {
      assert.deepEqual(doc.paths[path]?.[method]?.tags, ['device API'], `${method} ${path}`);
    }
  });

  it('serves an OpenAPI document that lists the admin routes and their security', async () => {
    const res = await api.get('/api-docs/openapi.json', { token: null });
    assert.equal(res.status, 200);
    const doc = res.json as { openapi: string; paths: Record<string, Record<string, { security?: unknown[] }>>; components: { securitySchemes: Record<string, unknown> } };
    assert.match(doc.openapi, /^3\./);
    const expected: [string, string][] = [
      ['/api/auth/login', 'post'],
      ['/api/auth/token', 'post'],
      ['/api/auth/user', 'get'],
      ['/api/deviceProfile', 'post'],
      ['/api/deviceProfile/{deviceProfileId}', 'get'],
      ['/api/deviceProfile/{deviceProfileId}', 'delete'],
      ['/api/deviceProfiles', 'get'],
      ['/api/deviceProfileInfo/default', 'get'],
      ['/api/device', 'post'],
      ['/api/device/{deviceId}', 'get'],
      ['/api/device/{deviceId}', 'delete'],
      ['/api/tenant/devices', 'get'],
      ['/api/device/{deviceId}/credentials', 'get'],
      ['/api/device/credentials', 'post'],
      ['/api/plugins/telemetry/DEVICE/{deviceId}/values/timeseries', 'get'],
      ['/api/plugins/telemetry/DEVICE/{deviceId}/keys/timeseries', 'get'],
      ['/api/plugins/telemetry/DEVICE/{deviceId}/values/attributes', 'get'],
      ['/api/plugins/telemetry/DEVICE/{deviceId}/values/attributes/{scope}', 'get'],
      ['/api/plugins/telemetry/DEVICE/{deviceId}/attributes/{scope}', 'post'],
      ['/api/plugins/telemetry/{deviceId}/{scope}', 'post'],
      ['/api/plugins/telemetry/DEVICE/{deviceId}/{scope}', 'delete'],
      ['/api/plugins/rpc/twoway/{deviceId}', 'post'],
      ['/api/plugins/rpc/oneway/{deviceId}', 'post'],
      ['/api/audit/logs', 'get'],
      ['/healthz', 'get'],
    ];
    for (const [path, method] of expected) assert.ok(doc.paths[path]?.[method], `${method.toUpperCase()} ${path} is documented`);
    assert.ok(doc.components.securitySchemes['X-Authorization']);
    assert.ok(doc.paths['/api/device']!.post!.security?.length, 'protected routes declare security');
    assert.equal(doc.paths['/api/auth/login']!.post!.security, undefined, 'login needs no token');
    assert.equal(doc.paths['/api-docs/openapi.json'], undefined, 'the document does not list itself');
  });

  it('serves the Swagger UI', async () => {
    const res = await fetch(`${server.httpUrl}/swagger-ui`);
    assert.equal(res.status, 200);
    assert.match(await res.text(), /swagger/i);
  });

  it('answers 415, not 500, to a body in a media type it cannot read', async () => {
    const res = await api.call('POST', '/api/device', { raw: '<device/>', contentType: 'application/xml' });
    assert.equal(res.status, 415);
    tbError(res);
  });

  it('answers 400 with ThingsBoard error JSON to an empty JSON body', async () => {
    const res = await api.call('POST', '/api/deviceProfile', { raw: '' });
    assert.equal(res.status, 400);
    assert.equal(tbError(res).errorCode, 31);
  });

  it('checks the token before it reads the body', async () => {
    const res = await api.call('POST', '/api/device', { raw: '{garbage', token: null });
    assert.equal(res.status, 401);
  });

  it('pages the audit log in ThingsBoard AuditLog form', async () => {
    await api.post('/api/device', { name: 'Audited device' });
    const res = await api.get('/api/audit/logs?pageSize=5&page=0');
    assert.equal(res.status, 200);
    assert.equal(typeof res.json.totalElements, 'number');
    assert.equal(typeof res.json.hasNext, 'boolean');
    const added = res.json.data.find((e: { actionType: string; entityName: string }) => e.actionType === 'ADDED' && e.entityName === 'Audited device');
    assert.ok(added, 'device creation is audited');
    assert.equal(added.entityId.entityType, 'DEVICE');
    assert.equal(added.userId.entityType, 'USER');
    assert.equal(added.actionStatus, 'SUCCESS');
    assert.match(added.source, /^admin:/);
    assert.equal((await api.get('/api/audit/logs?pageSize=0&page=0')).status, 400);
  });
});
