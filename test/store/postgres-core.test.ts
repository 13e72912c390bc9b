/**
 * Core provisioning over PostgreSQL: the races the unique indexes decide, through core.provisioning.provision,
 * including two cores ("nodes") with their own connection pools on one database.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { MemoryBus } from '../../src/bus/memory-bus.ts';
import type { ProvisionRequest, ProvisionResult } from '../../src/core/api.ts';
import { createCore, type CoreInstance } from '../../src/core/core.ts';
import { DEFAULT_TENANT_ID, type ProvisionType } from '../../src/core/model.ts';
import type { KyselyStore } from '../../src/store/kysely/kysely-store.ts';
import { openPostgresStore } from '../../src/store/postgres.ts';
import { silentLogger } from '../support/core.ts';
import { TEST_ACTOR } from '../support/harness.ts';
import { skipUnlessPostgres, startPostgres, type TestPostgres } from '../support/postgres.ts';

const T = DEFAULT_TENANT_ID;
const src = { transport: 'http' as const, address: '127.0.0.1' };
const settings = { batchMaxRows: 5000, batchMaxDelayMs: 0, rpcDefaultTimeout: 2000, provisionRetryAfterMs: 3000 };

interface Node {
  core: CoreInstance;
  store: KyselyStore;
}

describe('core provisioning on PostgreSQL', { skip: skipUnlessPostgres() }, () => {
  let server: TestPostgres;
  let a: Node;
  let b: Node;
  const node = async (url: string): Promise<Node> => {
    const store = await openPostgresStore(url);
    return { store, core: await createCore({ store, bus: new MemoryBus(), logger: silentLogger, settings }) };
  };
  const profile = (type: ProvisionType, name: string) =>
    a.core.profiles.save(T, { name, provisionType: type, provisionDeviceKey: `${name}-key`, profileData: { provisionConfiguration: { type, provisionDeviceSecret: `${name}-secret` } } }, TEST_ACTOR);
  const req = (name: string, extra: Partial<ProvisionRequest> = {}): ProvisionRequest => ({ provisionDeviceKey: `${name}-key`, provisionDeviceSecret: `${name}-secret`, ...extra });
  const count = (results: ProvisionResult[], status: ProvisionResult['status']) => results.filter((r) => r.status === status).length;

  before(async () => {
    server = await startPostgres();
    const url = await server.createDatabase();
    // Both nodes migrate the same empty database at once: the migrator's lock lets one do it.
    [a, b] = await Promise.all([node(url), node(url)]);
    await profile('ALLOW_CREATE_NEW_DEVICES', 'allow');
    await profile('CHECK_PRE_PROVISIONED_DEVICES', 'check');
  });
  after(async () => {
    for (const n of [a, b]) {
      await n?.core.close();
      await n?.store.close();
    }
    await server?.stop();
  });

  test('50 concurrent requests for one new name: one SUCCESS, 49 DEVICE_EXISTS, one device', async () => {
    const results = await Promise.all(Array.from({ length: 50 }, () => a.core.provisioning.provision(req('allow', { deviceName: 'pg-race-1' }), src)));
    assert.equal(count(results, 'SUCCESS'), 1);
    assert.equal(count(results, 'FAILURE'), 49);
    for (const r of results) if (r.status === 'FAILURE') assert.equal(r.reason, 'DEVICE_EXISTS');
    assert.equal((await a.core.devices.list(T, { pageSize: 10, page: 0, textSearch: 'pg-race-1' })).totalElements, 1);
  });

  test('100 concurrent requests for one name spread over two nodes: one SUCCESS, one device', async () => {
    const results = await Promise.all(Array.from({ length: 100 }, (_, i) => (i % 2 ? a : b).core.provisioning.provision(req('allow', { deviceName: 'pg-race-2' }), src)));
    assert.equal(count(results, 'SUCCESS'), 1);
    assert.equal(count(results, 'FAILURE'), 99);
    assert.equal((await b.core.devices.list(T, { pageSize: 10, page: 0, textSearch: 'pg-race-2' })).totalElements, 1);
  });

  test('concurrent requests claiming one token for different names: one SUCCESS, the rest CREDENTIALS_IN_USE', async () => {
    const results = await Promise.all(
      Array.from({ length: 20 }, (_, i) => (i % 2 ? a : b).core.provisioning.provision(req('allow', { deviceName: `pg-token-${i}`, token: 'pg-shared-token' }), src)),
    );
    assert.equal(count(results, 'SUCCESS'), 1);
    for (const r of results) if (r.status === 'FAILURE') assert.equal(r.reason, 'CREDENTIALS_IN_USE');
  });

  test('CHECK_PRE_PROVISIONED: 40 concurrent requests for one device over two nodes: exactly one SUCCESS', async () => {
    await a.core.devices.save(T, { name: 'pg-pre-race', deviceProfileId: (await a.store.findProfileByProvisionKey('check-key'))!.id }, TEST_ACTOR, 'pg-pre-token');
    const results = await Promise.all(Array.from({ length: 40 }, (_, i) => (i % 2 ? a : b).core.provisioning.provision(req('check', { deviceName: 'pg-pre-race' }), src)));
    assert.equal(count(results, 'SUCCESS'), 1);
    const success = results.find((r) => r.status === 'SUCCESS');
    assert.ok(success?.status === 'SUCCESS' && success.credentialsValue === 'pg-pre-token');
    for (const r of results) if (r.status === 'FAILURE') assert.equal(r.reason, 'ALREADY_PROVISIONED');
  });

  test('every outcome is audited without the secret', async () => {
    const page = await a.core.audit.list(T, { pageSize: 1000, page: 0 });
    assert.ok(page.data.some((e) => e.actionType === 'PROVISION_SUCCESS'));
    assert.ok(page.data.some((e) => e.actionType === 'PROVISION_FAILURE'));
    assert.ok(!JSON.stringify(page.data).includes('allow-secret'));
  });
});
